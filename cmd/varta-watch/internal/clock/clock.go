package clock

import (
	"fmt"
	"time"
)

// Source selects the kernel clock behind the stall clock.
type Source uint8

// Clock sources.
const (
	Monotonic Source = iota
	Boottime
)

// ParseSource parses the --clock-source value.
func ParseSource(s string) (Source, error) {
	switch s {
	case "monotonic":
		return Monotonic, nil
	case "boottime":
		return Boottime, nil
	}
	return 0, fmt.Errorf("clock source %q: must be monotonic or boottime", s)
}

func (s Source) String() string {
	if s == Boottime {
		return "boottime"
	}
	return "monotonic"
}

// JumpThreshold is the size of a forward step between two readings that
// counts as a clock jump.
const JumpThreshold = 5 * time.Second

// Clock reads the stall clock. Now never allocates. With Monotonic it uses
// the runtime's vDSO clock (no syscall).
type Clock struct {
	src   Source
	start time.Time
	base  int64 // boottime reading at start
}

// New starts a stall clock at zero.
func New(src Source) *Clock {
	c := &Clock{src: src, start: time.Now()}
	if src == Boottime {
		c.base = boottimeNanos()
	}
	return c
}

// Source returns the configured source.
func (c *Clock) Source() Source { return c.src }

// Now returns nanoseconds since the clock started.
func (c *Clock) Now() int64 {
	if c.src == Boottime {
		return boottimeNanos() - c.base
	}
	return int64(time.Since(c.start))
}

// Start returns the wall-clock time at which the stall clock read zero.
func (c *Clock) Start() time.Time { return c.start }
