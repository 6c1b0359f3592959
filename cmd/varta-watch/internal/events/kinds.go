package events

import (
	"fmt"
	"strings"
)

// KindSet is a set of event kinds (--export-kinds); the zero value means
// every kind.
type KindSet uint16

// Has reports whether k is in the set (every kind for the zero set).
func (s KindSet) Has(k Kind) bool { return s == 0 || s&(1<<k) != 0 }

// AllKinds is the set of every kind.
const AllKinds = KindSet(1<<numKinds - 1)

// ParseKinds parses --export-kinds: kind names separated by commas
// ("stall,mismatch,eviction"), or exclusions each starting with "-"
// ("-beat": every kind but beat). Names and exclusions cannot be mixed.
// An empty list means every kind.
func ParseKinds(list string) (KindSet, error) {
	var include, exclude KindSet
	for _, f := range strings.Split(list, ",") {
		name := strings.TrimSpace(f)
		if name == "" {
			continue
		}
		neg := strings.HasPrefix(name, "-")
		k, ok := kindByName(strings.TrimPrefix(name, "-"))
		if !ok {
			return 0, fmt.Errorf("--export-kinds %q: unknown kind %q (want %s, or -KIND to leave one out)", list, name, strings.Join(kindNames[:], ", "))
		}
		if neg {
			exclude |= 1 << k
		} else {
			include |= 1 << k
		}
	}
	switch {
	case include != 0 && exclude != 0:
		return 0, fmt.Errorf("--export-kinds %q: either list the kinds to write or the kinds to leave out (-KIND), not both", list)
	case exclude == AllKinds:
		return 0, fmt.Errorf("--export-kinds %q: leaves no kind to write (omit --export-file instead)", list)
	case exclude != 0:
		return AllKinds &^ exclude, nil
	}
	return include, nil
}

func kindByName(name string) (Kind, bool) {
	for k, n := range kindNames {
		if n == name {
			return Kind(k), true
		}
	}
	return 0, false
}

// String lists the kinds of the set, comma-separated.
func (s KindSet) String() string {
	var names []string
	for k := Kind(0); k < numKinds; k++ {
		if s.Has(k) {
			names = append(names, kindNames[k])
		}
	}
	return strings.Join(names, ",")
}
