package audit

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/varta-go/varta/pkg/safefile"
)

// fileOps are the few file-system calls rotation makes, replaceable in
// tests to simulate EXDEV and failures.
type fileOps struct {
	rename func(oldpath, newpath string) error
}

func defaultFileOps() fileOps { return fileOps{rename: os.Rename} }

// shiftGenerations removes PATH.5 and renames PATH.4 → PATH.5 … PATH.1 →
// PATH.2 (missing ones are skipped), then moves PATH to PATH.1. cur is the
// open, locked current file. The returned file holds PATH.1's content and
// keeps the lock: cur itself after a rename, or — across file systems, where
// rename fails with EXDEV — a synced copy (cur is then closed and PATH
// unlinked).
func shiftGenerations(path string, cur *os.File, ops fileOps) (*os.File, error) {
	oldest := GenerationPath(path, Generations)
	if err := os.Remove(oldest); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("rotate audit file: remove %q: %w", oldest, err)
	}
	for n := Generations - 1; n >= 1; n-- {
		src, dst := GenerationPath(path, n), GenerationPath(path, n+1)
		if err := moveByPath(src, dst, ops); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, err
		}
	}
	first := GenerationPath(path, 1)
	err := ops.rename(path, first)
	if err == nil {
		return cur, nil
	}
	if !errors.Is(err, syscall.EXDEV) {
		return nil, fmt.Errorf("rotate audit file: rename %q to %q: %w", path, first, err)
	}
	// Read from our own descriptor, not the path name, so that a file put
	// in PATH's place cannot be copied instead.
	out, err := copyFile(cur, first)
	if err != nil {
		return nil, fmt.Errorf("rotate audit file across file systems: %w", err)
	}
	if err := os.Remove(path); err != nil {
		out.Close()
		os.Remove(first)
		return nil, fmt.Errorf("rotate audit file: unlink %q after copy: %w", path, err)
	}
	cur.Close()
	return out, nil
}

// moveByPath renames src to dst, falling back to copy+sync+unlink on EXDEV.
func moveByPath(src, dst string, ops fileOps) error {
	err := ops.rename(src, dst)
	if err == nil || !errors.Is(err, syscall.EXDEV) {
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("rotate audit file: rename %q to %q: %w", src, dst, err)
		}
		return err
	}
	in, err := openReadOnly(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.Remove(dst); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("rotate audit file: remove %q: %w", dst, err)
	}
	out, err := copyFile(in, dst)
	if err != nil {
		return fmt.Errorf("rotate audit file across file systems: %w", err)
	}
	out.Close()
	if err := os.Remove(src); err != nil {
		return fmt.Errorf("rotate audit file: unlink %q after copy: %w", src, err)
	}
	return nil
}

// headerAndBoot encodes an optional LF, an optional v2 header and a linked
// boot record; it returns the bytes and the boot's chain.
func headerAndBoot(dst []byte, lf, header bool, boot *Record, prev Hash) ([]byte, Hash) {
	if lf {
		dst = append(dst, '\n')
	}
	if header {
		dst = append(dst, HeaderV2+"\n"...)
	}
	dst = boot.appendLinked(dst, prev)
	return dst, boot.Chain
}

// RotateOptions configure Rotate. The zero value is ready to use.
type RotateOptions struct {
	// DaemonPid is written in the rotation boot's daemon_pid column;
	// 0 means the calling process.
	DaemonPid uint32
	// Now stamps the rotation boot; nil means time.Now.
	Now func() time.Time

	ops *fileOps // tests only
}

// RotateResult describes a completed rotation.
type RotateResult struct {
	Path    string // the new, current file
	Rotated string // PATH.1, the file that was PATH
	Boot    Record // the rotation boot written at the top of the new file
}

// Rotate rotates the log at path exactly as the Writer does (docs/audit.md, "How varta-watch writes it"):
// PATH.5 is removed, PATH.4 … PATH.1 shift up, PATH becomes PATH.1, a new
// PATH is created exclusively (0600) with the v2 header and a rotation boot
// continuing the chain and the seq of PATH.1, then the new file and the
// directory are synced. It refuses with ErrLocked while another process
// (varta-watch) holds the file's lock, and with ErrTailNotClean when PATH
// does not end with a complete, chained record.
func Rotate(path string, opts RotateOptions) (RotateResult, error) {
	var res RotateResult
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.DaemonPid == 0 {
		opts.DaemonPid = uint32(os.Getpid())
	}
	ops := defaultFileOps()
	if opts.ops != nil {
		ops = *opts.ops
	}
	cur, _, err := openAuditFile(path, openExisting, false)
	if err != nil {
		return res, err
	}
	defer func() { cur.Close() }()
	fi, err := cur.Stat()
	if err != nil {
		return res, fmt.Errorf("stat audit file %q: %w", path, err)
	}
	plan, err := planTail(cur, fi.Size(), nil)
	if err != nil {
		return res, fmt.Errorf("read audit file %q: %w", path, err)
	}
	if plan.reason != BootResume {
		return res, fmt.Errorf("rotate %q: the file does not end with a complete chained record (verify it, or let varta-watch open it once): %w", path, ErrTailNotClean)
	}
	if err := safefile.Datasync(cur); err != nil {
		return res, fmt.Errorf("rotate %q: %w", path, err)
	}
	moved, err := shiftGenerations(path, cur, ops)
	if err != nil {
		return res, err
	}
	cur = moved
	next, _, err := openAuditFile(path, openExclusive, groupReadable(cur))
	if err != nil {
		return res, fmt.Errorf("rotate: create new audit file: %w", err)
	}
	defer next.Close()
	// Records the last daemon lost at shutdown stay a gap across the
	// rotation (see the seq note in writer.go).
	var note *os.File
	var lossLine []byte
	if nf, err := openReadOnly(SeqNotePath(path)); err == nil {
		n, ok := readSeqNote(nf)
		nf.Close()
		if ok && n.after == plan.prev && n.next > plan.nextSeq {
			lossLine = lossComment(n, plan.nextSeq)
			plan.nextSeq = n.next
			if note, err = openSeqNote(path); err != nil {
				return res, fmt.Errorf("rotate %q: %w", path, err)
			}
			defer note.Close()
		}
	}
	boot := Record{Seq: plan.nextSeq, Kind: KindBoot, Boot: BootRecord{
		WallclockMs: opts.Now().UnixMilli(), DaemonPid: opts.DaemonPid,
		PrevChain: plan.prev, HasPrevChain: true, Reason: BootRotation,
	}}
	buf := append([]byte(HeaderV2+"\n"), lossLine...)
	buf = boot.appendLinked(buf, plan.prev)
	if _, err := next.Write(buf); err != nil {
		return res, fmt.Errorf("rotate: write rotation boot to %q: %w", path, err)
	}
	if err := safefile.Datasync(next); err != nil {
		return res, fmt.Errorf("rotate: %w", err)
	}
	if err := syncDir(path); err != nil {
		return res, fmt.Errorf("rotate: %w", err)
	}
	if note != nil {
		if err := writeSeqNote(note, seqNote{}); err != nil {
			return res, fmt.Errorf("rotate: clear the seq note (the gap is recorded): %w", err)
		}
	}
	return RotateResult{Path: path, Rotated: GenerationPath(path, 1), Boot: boot}, nil
}
