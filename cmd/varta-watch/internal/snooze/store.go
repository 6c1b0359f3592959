package snooze

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/varta-go/varta/pkg/secretfile"
	"golang.org/x/sys/unix"
)

// FileName is the state file's name under --state-dir.
const FileName = "snoozes.json"

// fileVersion is the "version" of the state file this package writes.
const fileVersion = 1

// Entry is one snooze.
type Entry struct {
	// Target is the canonical target: a service name, pid:N or all.
	Target string `json:"target"`
	// Until is when the snooze ends (wall clock); zero when Forever.
	Until   time.Time `json:"until,omitzero"`
	Forever bool      `json:"forever,omitempty"`
	Reason  string    `json:"reason"`
	// UID is the operator's uid (SO_PEERCRED of the request).
	UID uint32 `json:"uid"`
	// Since is when the snooze was set.
	Since time.Time `json:"since"`
}

// Active reports whether e is in force at now.
func (e Entry) Active(now time.Time) bool { return e.Forever || now.Before(e.Until) }

// Store holds the snoozes. All methods are safe for concurrent use; Match
// takes only a read lock and never touches the file.
type Store struct {
	path string
	now  func() time.Time

	mu      sync.RWMutex
	entries map[string]Entry
	// wmu serializes changes (and their file writes) so that the file
	// always holds the last published state.
	wmu sync.Mutex
}

// LoadInfo says what Open found in the state file.
type LoadInfo struct {
	Loaded  int // snoozes still in force
	Expired int // snoozes dropped because they ended while the daemon was down
}

// Open returns a Store backed by the state file at path ("" keeps the
// snoozes in memory only) and loads it: a missing file is an empty store;
// a file that breaks the secret-file rules, is not valid JSON, has an
// unknown field or version, or holds an invalid entry is an error naming
// the file and the problem (nothing is dropped silently). Expired snoozes
// are dropped and the file rewritten without them. now is the wall clock
// (nil: time.Now).
func Open(path string, now func() time.Time) (*Store, LoadInfo, error) {
	if now == nil {
		now = time.Now
	}
	s := &Store{path: path, now: now, entries: map[string]Entry{}}
	var info LoadInfo
	if path == "" {
		return s, info, nil
	}
	b, err := secretfile.Read(path)
	if errors.Is(err, unix.ENOENT) {
		return s, info, nil
	}
	if err != nil {
		return nil, info, fmt.Errorf("snooze state file: %w", err)
	}
	entries, err := Decode(b)
	if err != nil {
		return nil, info, fmt.Errorf("snooze state file %q: %w (fix or remove it)", path, err)
	}
	t := now()
	for _, e := range entries {
		if !e.Active(t) {
			info.Expired++
			continue
		}
		s.entries[e.Target] = e
	}
	info.Loaded = len(s.entries)
	if info.Expired > 0 {
		if err := s.persist(s.entries); err != nil {
			return nil, info, err
		}
	}
	return s, info, nil
}

// Path returns the state file's path ("" when in memory only).
func (s *Store) Path() string { return s.path }

// stateFile is the JSON form of the state file.
type stateFile struct {
	Version int     `json:"version"`
	Snoozes []Entry `json:"snoozes"`
}

// Decode parses a state file strictly: version 1, no unknown field, at
// most MaxEntries entries, each with a valid target (in canonical
// spelling, no duplicates), a valid reason, and an end time or forever
// (not both).
func Decode(b []byte) ([]Entry, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f stateFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("not a snooze state file: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("not a snooze state file: data after the JSON object")
	}
	if f.Version != fileVersion {
		return nil, fmt.Errorf("version %d: this daemon reads version %d", f.Version, fileVersion)
	}
	if len(f.Snoozes) > MaxEntries {
		return nil, fmt.Errorf("%w: %d entries, at most %d", ErrTooMany, len(f.Snoozes), MaxEntries)
	}
	seen := make(map[string]bool, len(f.Snoozes))
	for i, e := range f.Snoozes {
		if err := e.validate(); err != nil {
			return nil, fmt.Errorf("snoozes[%d]: %w", i, err)
		}
		if seen[e.Target] {
			return nil, fmt.Errorf("snoozes[%d]: target %q appears twice", i, e.Target)
		}
		seen[e.Target] = true
	}
	return f.Snoozes, nil
}

func (e Entry) validate() error {
	t, err := ParseTarget(e.Target)
	if err != nil {
		return err
	}
	if t.String() != e.Target {
		return fmt.Errorf("%w %q: not in canonical spelling (%q)", ErrBadTarget, e.Target, t.String())
	}
	if err := CheckReason(e.Reason, false); err != nil {
		return err
	}
	switch {
	case e.Forever && !e.Until.IsZero():
		return fmt.Errorf("%w: target %q has both an end time and forever", ErrBadDuration, e.Target)
	case !e.Forever && e.Until.IsZero():
		return fmt.Errorf("%w: target %q has neither an end time nor forever", ErrBadDuration, e.Target)
	}
	return nil
}

// encode renders the state file with the entries sorted by target.
func encode(entries map[string]Entry) []byte {
	f := stateFile{Version: fileVersion, Snoozes: sorted(entries)}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil { // cannot happen: only strings, bools, ints and times
		panic(err)
	}
	return append(b, '\n')
}

func sorted(entries map[string]Entry) []Entry {
	out := make([]Entry, 0, len(entries))
	for _, e := range entries {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Target, b.Target) })
	return out
}

func (s *Store) persist(entries map[string]Entry) error {
	if s.path == "" {
		return nil
	}
	if err := secretfile.WriteAtomic(s.path, encode(entries)); err != nil {
		return fmt.Errorf("snooze state file: %w", err)
	}
	return nil
}

// change applies fn to a copy of the entries, writes the file and only
// then publishes the copy: a failed write leaves both unchanged.
func (s *Store) change(fn func(m map[string]Entry) error) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.RLock()
	next := make(map[string]Entry, len(s.entries)+1)
	for k, v := range s.entries {
		next[k] = v
	}
	s.mu.RUnlock()
	if err := fn(next); err != nil {
		return err
	}
	if err := s.persist(next); err != nil {
		return err
	}
	s.mu.Lock()
	s.entries = next
	s.mu.Unlock()
	return nil
}

// Put sets (or replaces) the snooze of e.Target. e must be valid and
// active; Since is stamped when zero.
func (s *Store) Put(e Entry) (Entry, error) {
	now := s.now()
	if e.Since.IsZero() {
		e.Since = now
	}
	if err := e.validate(); err != nil {
		return Entry{}, err
	}
	if !e.Active(now) {
		return Entry{}, fmt.Errorf("%w: snooze of %q ends before it starts", ErrBadDuration, e.Target)
	}
	err := s.change(func(m map[string]Entry) error {
		dropExpired(m, now)
		if _, ok := m[e.Target]; !ok && len(m) >= MaxEntries {
			return fmt.Errorf("%w: %d snoozes are in force (resume some first)", ErrTooMany, len(m))
		}
		m[e.Target] = e
		return nil
	})
	return e, err
}

// Remove ends the snooze of target early. ok is false when there was none
// in force (nothing is written then).
func (s *Store) Remove(target string) (e Entry, ok bool, err error) {
	now := s.now()
	s.mu.RLock()
	cur, found := s.entries[target]
	s.mu.RUnlock()
	if !found || !cur.Active(now) {
		return Entry{}, false, nil
	}
	err = s.change(func(m map[string]Entry) error {
		e, ok = m[target]
		delete(m, target)
		return nil
	})
	if err != nil {
		return Entry{}, false, err
	}
	return e, ok, nil
}

func dropExpired(m map[string]Entry, now time.Time) int {
	n := 0
	for k, e := range m {
		if !e.Active(now) {
			delete(m, k)
			n++
		}
	}
	return n
}

// Expire drops the snoozes that ended by now and rewrites the file; it
// returns the dropped ones (sorted by target). It does nothing, and
// writes nothing, when none ended.
func (s *Store) Expire() ([]Entry, error) {
	now := s.now()
	s.mu.RLock()
	due := 0
	for _, e := range s.entries {
		if !e.Active(now) {
			due++
		}
	}
	s.mu.RUnlock()
	if due == 0 {
		return nil, nil
	}
	var gone map[string]Entry
	err := s.change(func(m map[string]Entry) error {
		gone = map[string]Entry{}
		for k, e := range m {
			if !e.Active(now) {
				gone[k] = e
				delete(m, k)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sorted(gone), nil
}

// List returns the snoozes in force, sorted by target.
func (s *Store) List() []Entry {
	now := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Entry, 0, len(s.entries))
	for _, e := range s.entries {
		if e.Active(now) {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Target, b.Target) })
	return out
}

// Len returns the number of entries held (expired ones not yet dropped by
// Expire included).
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.entries)
}

// Match returns the snooze in force for an agent of service (may be "" or
// "-" when unknown) with pid: pid:N first, then the service, then all.
func (s *Store) Match(service string, pid uint32) (Entry, bool) {
	now := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.entries) == 0 {
		return Entry{}, false
	}
	if pid != 0 {
		if e, ok := s.entries[Target{Pid: pid}.String()]; ok && e.Active(now) {
			return e, true
		}
	}
	if service != "" && service != "-" && service != All && !strings.HasPrefix(service, pidPrefix) {
		if e, ok := s.entries[service]; ok && e.Active(now) {
			return e, true
		}
	}
	if e, ok := s.entries[All]; ok && e.Active(now) {
		return e, true
	}
	return Entry{}, false
}
