package exitcode

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

type coded struct {
	msg  string
	code int
}

func (c coded) Error() string { return c.msg }
func (c coded) ExitCode() int { return c.code }

func TestReport(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		code int
		out  string
	}{
		{"success", nil, OK, ""},
		{"runtime failure", coded{"bind /run/x: permission denied", Failure}, Failure, "prog: bind /run/x: permission denied\n"},
		{"wrapped coder", fmt.Errorf("ctx: %w", coded{"dropped", Dropped}), Dropped, "prog: ctx: dropped\n"},
		{"silent coder", coded{"", Failure}, Failure, ""},
		{"plain error is usage", errors.New(`flag provided but not defined: -x`), Usage,
			"prog: flag provided but not defined: -x\nRun 'prog --help' for usage.\n"},
		{"coded usage gets the hint", coded{"--a and --b require each other", Usage}, Usage,
			"prog: --a and --b require each other\nRun 'prog --help' for usage.\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if got := Report("prog", tc.err, &buf); got != tc.code || buf.String() != tc.out {
				t.Fatalf("code %d output %q; want %d %q", got, buf.String(), tc.code, tc.out)
			}
		})
	}
}
