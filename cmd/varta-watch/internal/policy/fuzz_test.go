package policy

import (
	"errors"
	"testing"

	"github.com/varta-go/varta/cmd/varta-watch/internal/identity"
)

// FuzzParse: a policy file is operator input, but a reload parses whatever
// the file holds. Parse must never panic, must fail only with a policy
// *Error, and what it accepts must keep its promises.
func FuzzParse(f *testing.F) {
	f.Add([]byte(example))
	f.Add([]byte("rules: []\n"))
	f.Add([]byte("rules:\n  - {name: a, match: {comm: a}, recovery: none}\n"))
	f.Add([]byte("x: &a [*a]\nrules: []\n"))
	f.Add([]byte("rules:\n  - &r {name: a, match: {comm: a}}\n  - *r\n"))
	f.Add([]byte("rules:\n  - {name: a, match: {uid: 0}, give_up: {after: 1, within: 1s, retry_after: never}}\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := Parse("fuzz.yml", in)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a policy *Error", err)
			}
			return
		}
		if len(p.Thresholds()) >= MaxThresholds {
			t.Fatalf("%d thresholds accepted", len(p.Thresholds()))
		}
		names := map[string]bool{}
		for _, r := range p.Rules {
			if names[r.Name] || !validName(r.Name) {
				t.Fatalf("rule name %q accepted", r.Name)
			}
			names[r.Name] = true
			if err := r.Budget.Validate(); err != nil {
				t.Fatalf("rule %q budget: %v", r.Name, err)
			}
			if r.Threshold != 0 && r.Threshold < MinThreshold {
				t.Fatalf("threshold %v", r.Threshold)
			}
			if r.Recovery.Set && !r.Recovery.None {
				argv, err := Expand(r.Recovery.Argv, 1, &identity.Info{Unit: "a.service", Comm: "a", Container: "0123456789ab", HasUID: true, Service: r.Name})
				if err != nil || len(argv) == 0 || argv[0] == "" {
					t.Fatalf("rule %q argv %q: %q %v", r.Name, r.Recovery.Argv, argv, err)
				}
			}
			p.Match(identity.None)
		}
	})
}
