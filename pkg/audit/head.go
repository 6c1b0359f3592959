package audit

import (
	"errors"
	"fmt"
	"os"
)

// ReadHead returns the current chain head of the log at path: the last
// record of PATH, or of the newest generation that holds one. It reads only
// the tail of the file (a torn final line is skipped) and does not verify;
// Head.Line is not counted (0). An unchained last record is returned with
// Unchained set.
func ReadHead(path string) (Head, error) {
	for n := 0; n <= Generations; n++ {
		p := GenerationPath(path, n)
		r, err := lastRecordOf(p)
		switch {
		case err == nil:
			return Head{Position: Position{File: p}, Seq: r.Seq, Chain: r.Chain, Unchained: r.Unchained}, nil
		case errors.Is(err, os.ErrNotExist), errors.Is(err, ErrNoRecords):
			continue
		default:
			return Head{}, err
		}
	}
	return Head{}, fmt.Errorf("audit log %q: %w", path, ErrNoRecords)
}
