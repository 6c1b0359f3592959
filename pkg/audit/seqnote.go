package audit

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/pkg/safefile"
)

// The seq note (docs/audit.md, "Records lost at shutdown") is a small fixed-size
// file beside the audit file, PATH.seq. Open creates it, fills it and syncs
// it while the disk has room; at Close, when records whose seq was already
// assigned could not be written (the disk is full), the Writer overwrites
// it in place — no new block is needed, so this works on a full file
// system — with the first seq not written and the chain of the last record
// that was. The next Open that finds the file's last record still carrying
// that chain starts at that seq, so the lost seqs are a gap that verify
// reports as loss, and writes a '#' line naming them (readers skip '#'
// lines, so the file stays plain schema v2). The note is then cleared.

// SeqNoteSuffix is appended to the audit file's path to name its seq note.
const SeqNoteSuffix = ".seq"

// SeqNotePath returns the seq note's path for the audit file path.
func SeqNotePath(path string) string { return path + SeqNoteSuffix }

const seqNoteMagic = "varta-audit-seq v1\n"

// seqNote is the decoded content of PATH.seq. next == 0 means no loss is
// recorded.
type seqNote struct {
	next  uint64 // first seq assigned but not written
	lost  uint64 // how many seqs before next were lost at the tail
	pid   uint32 // the daemon that lost them
	after Hash   // chain of the last record written before the loss
}

// seqNoteSize is the fixed size of an encoded note.
var seqNoteSize = len(seqNote{}.encode())

// encode renders n with fixed-width fields.
func (n seqNote) encode() []byte {
	return fmt.Appendf(nil, "%snext %020d\nlost %020d\npid %010d\nafter %s\n",
		seqNoteMagic, n.next, n.lost, n.pid, hex.EncodeToString(n.after[:]))
}

// decodeSeqNote parses a note; errors name the rule broken.
func decodeSeqNote(b []byte) (seqNote, error) {
	var n seqNote
	if len(b) != seqNoteSize || !bytes.HasPrefix(b, []byte(seqNoteMagic)) {
		return n, fmt.Errorf("not a seq note (%d bytes)", len(b))
	}
	lines := bytes.Split(bytes.TrimSuffix(b[len(seqNoteMagic):], []byte("\n")), []byte("\n"))
	if len(lines) != 4 {
		return n, errors.New("seq note: want 4 fields")
	}
	field := func(i int, name string) (string, error) {
		k, v, ok := bytes.Cut(lines[i], []byte(" "))
		if !ok || string(k) != name {
			return "", fmt.Errorf("seq note: line %d is not %q", i+2, name)
		}
		return string(v), nil
	}
	var err error
	num := func(i int, name string, bits int) uint64 {
		v, ferr := field(i, name)
		if ferr == nil {
			var x uint64
			if x, ferr = strconv.ParseUint(v, 10, bits); ferr == nil {
				return x
			}
		}
		err = errors.Join(err, ferr)
		return 0
	}
	n.next = num(0, "next", 64)
	n.lost = num(1, "lost", 64)
	n.pid = uint32(num(2, "pid", 32))
	if v, ferr := field(3, "after"); ferr != nil {
		err = errors.Join(err, ferr)
	} else if h, herr := hex.DecodeString(v); herr != nil || len(h) != len(n.after) {
		err = errors.Join(err, errors.New("seq note: after is not 64 hex digits"))
	} else {
		copy(n.after[:], h)
	}
	if err == nil && !bytes.Equal(n.encode(), b) {
		err = errors.New("seq note: not in canonical form (fixed-width decimal, lowercase hex)")
	}
	return n, err
}

// openSeqNote opens (creating it 0600 if needed) PATH.seq under the audit
// file rules: no symlink, regular file, our uid, one link. The caller holds
// the audit file's lock, so no other writer uses the note.
func openSeqNote(path string) (*os.File, error) {
	p := SeqNotePath(path)
	o := writerRules(p)
	o.Access = unix.O_RDWR
	o.Create = safefile.CreateIfMissing
	f, _, err := safefile.Open(p, o)
	if err != nil {
		return nil, fileError(p, err)
	}
	return f, nil
}

// readSeqNote returns the note in f; ok is false for an empty, short or
// malformed note (a note is only advice: a bad one is ignored).
func readSeqNote(f *os.File) (seqNote, bool) {
	buf := make([]byte, seqNoteSize+1)
	n, _ := f.ReadAt(buf, 0)
	note, err := decodeSeqNote(buf[:n])
	return note, err == nil && note.next > 0
}

// writeSeqNote overwrites f with n in place and syncs it.
func writeSeqNote(f *os.File, n seqNote) error {
	b := n.encode()
	if _, err := f.WriteAt(b, 0); err != nil {
		return fmt.Errorf("write seq note %q: %w", f.Name(), err)
	}
	if err := safefile.Datasync(f); err != nil {
		return fmt.Errorf("sync seq note %q: %w", f.Name(), err)
	}
	return nil
}

// lossComment is the '#' line the next boot writes before its boot record.
func lossComment(n seqNote, from uint64) []byte {
	return fmt.Appendf(nil, "# %d record(s) lost: seq %d..%d were assigned but could not be written before varta-watch pid %d stopped\n",
		n.next-from, from, n.next-1, n.pid)
}
