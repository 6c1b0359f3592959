package audit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// tailPlan is what Open learned from an existing file: how to repair it and
// which boot record to write.
type tailPlan struct {
	reason     BootReason
	nextSeq    uint64 // seq of the boot record
	prev       Hash   // link the boot hashes from
	showPrev   bool   // the boot shows prev in its prev_chain column
	truncateTo int64  // >= 0: cut a torn tail back to this size first
	needLF     bool   // old non-v2 bytes lack a final LF: write one first
	needHeader bool   // write a v2 header before the boot
}

// tailWindow is the first read size when looking for the last lines.
const tailWindow = 64 << 10

// fileTail is the end of a file as readTail finds it.
type fileTail struct {
	lastLine      []byte // last complete line, without LF
	lastLineStart int64
	lastLF        int64 // offset of the final LF
	torn          []byte
}

// readTail finds the last LF of the first size bytes of f and the line
// before it; t.torn is whatever follows the last LF. ok is false when the
// file holds no LF at all.
func readTail(f io.ReaderAt, size int64) (t fileTail, ok bool, err error) {
	window := int64(tailWindow)
	for {
		start := size - window
		if start < 0 {
			start = 0
		}
		buf := make([]byte, size-start)
		if _, err := f.ReadAt(buf, start); err != nil && !errors.Is(err, io.EOF) {
			return t, false, err
		}
		last := bytes.LastIndexByte(buf, '\n')
		if last < 0 {
			if start == 0 {
				return t, false, nil
			}
			window *= 4
			continue
		}
		prev := bytes.LastIndexByte(buf[:last], '\n')
		if prev < 0 && start > 0 {
			window *= 4
			continue
		}
		t.torn = buf[last+1:]
		t.lastLF = start + int64(last)
		t.lastLine = buf[prev+1 : last]
		t.lastLineStart = start + int64(prev+1)
		return t, true, nil
	}
}

// headerAt reports which header, if any, the file starts with.
func headerAt(f io.ReaderAt, size int64) (v2, v1 bool, err error) {
	n := int64(len(HeaderV2) + 1)
	if size < n {
		return false, false, nil
	}
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		return false, false, err
	}
	return string(buf) == HeaderV2+"\n", string(buf) == HeaderV1+"\n", nil
}

// hasV2HeaderBefore scans [0, end) line by line for a v2 header line. It
// only runs for files that do not start with one (migrated or legacy).
func hasV2HeaderBefore(f io.ReaderAt, end int64) (bool, error) {
	sc := bufio.NewScanner(io.NewSectionReader(f, 0, end))
	sc.Buffer(make([]byte, 64<<10), maxLineBytes)
	for sc.Scan() {
		if string(sc.Bytes()) == HeaderV2 {
			return true, nil
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, bufio.ErrTooLong) {
		return false, err
	}
	return false, nil
}

// leadingSeq parses the first column of a line as a seq, if it is one.
func leadingSeq(line []byte) (uint64, bool) {
	if i := bytes.IndexByte(line, '\t'); i >= 0 {
		line = line[:i]
	}
	return canonicalUint(line, 64)
}

// planTail inspects an existing audit file of the given size and decides
// the boot reason (docs/audit.md). prevGen is consulted only when the file
// holds no record yet: a crash between "PATH → PATH.1" and the rotation
// boot leaves an empty or header-only PATH whose chain must continue PATH.1.
func planTail(f io.ReaderAt, size int64, prevGen func() (Record, bool)) (tailPlan, error) {
	p := tailPlan{reason: BootFresh, nextSeq: 1, truncateTo: -1}
	if size == 0 {
		p.needHeader = true
		p.continueRotation(prevGen)
		return p, nil
	}
	v2, v1, err := headerAt(f, size)
	if err != nil {
		return p, err
	}
	t, ok, err := readTail(f, size)
	if err != nil {
		return p, err
	}
	if !ok {
		err := p.noCompleteLine(f, size, prevGen)
		return p, err
	}
	lastIsHeader := string(t.lastLine) == HeaderV2
	inV2 := v2 || lastIsHeader
	if !inV2 {
		if inV2, err = hasV2HeaderBefore(f, t.lastLineStart); err != nil {
			return p, err
		}
	}
	torn := len(t.torn) > 0
	if torn {
		if inV2 {
			p.truncateTo = t.lastLF + 1
		} else {
			p.needLF = true
		}
	}
	switch {
	case !inV2:
		p.afterLegacy(v1, t.lastLine)
	case lastIsHeader:
		p.afterBareHeader(t.lastLineStart == 0, torn, v1, prevGen)
	default:
		p.afterLastLine(t.lastLine, torn)
	}
	return p, nil
}

// continueRotation plans a rotation boot continuing the previous
// generation's last record, if prevGen has one.
func (p *tailPlan) continueRotation(prevGen func() (Record, bool)) bool {
	if prevGen == nil {
		return false
	}
	last, ok := prevGen()
	if !ok {
		return false
	}
	p.reason, p.nextSeq, p.prev, p.showPrev = BootRotation, last.Seq+1, last.Chain, true
	return true
}

// noCompleteLine plans for a file without a single complete line. A torn
// v2 header (a crash while creating the file) is cut away; anything else is
// kept as old bytes.
func (p *tailPlan) noCompleteLine(f io.ReaderAt, size int64, prevGen func() (Record, bool)) error {
	head := make([]byte, size)
	if _, err := f.ReadAt(head, 0); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if bytes.HasPrefix([]byte(HeaderV2), head) {
		p.truncateTo, p.needHeader = 0, true
		p.continueRotation(prevGen)
		return nil
	}
	p.reason, p.needLF, p.needHeader = BootSchemaDrift, true, true
	if s, ok := leadingSeq(head); ok {
		p.nextSeq = s + 1
	}
	return nil
}

// afterLegacy plans a new v2 region after a file without one (v1 or
// pre-v2 bytes whose last line is lastLine).
func (p *tailPlan) afterLegacy(v1 bool, lastLine []byte) {
	p.needHeader = true
	p.reason = BootSchemaDrift
	if v1 {
		p.reason = BootLegacyV1
	} else if s, ok := leadingSeq(lastLine); ok {
		p.nextSeq = s + 1
	}
}

// afterBareHeader plans for a file whose last line is a v2 header with no
// record after it: the previous writer died between the header and its
// boot record. atTop says the header is the file's first line.
func (p *tailPlan) afterBareHeader(atTop, torn, v1 bool, prevGen func() (Record, bool)) {
	switch {
	case atTop && p.continueRotation(prevGen):
	case atTop && torn:
		p.reason = BootCorruptTail
	case atTop:
		p.reason = BootFresh
	case v1:
		p.reason = BootLegacyV1
	default:
		p.reason = BootSchemaDrift
	}
}

// afterLastLine plans for a v2 region whose last complete line is
// lastLine: resume its chain when it is a chained record, else open a new
// region.
func (p *tailPlan) afterLastLine(lastLine []byte, torn bool) {
	r, err := ParseLine(lastLine)
	switch {
	case err == nil && !r.Unchained:
		p.nextSeq, p.prev = r.Seq+1, r.Chain
		if torn {
			p.reason = BootCorruptTail
		} else {
			p.reason, p.showPrev = BootResume, true
		}
	case err == nil:
		// A log written without chain support: start a new, chained v2
		// region rather than mix "-" and hashes in one region.
		p.reason, p.needHeader, p.nextSeq = BootSchemaDrift, true, r.Seq+1
	default:
		p.reason, p.needHeader = BootSchemaDrift, true
		if s, ok := leadingSeq(lastLine); ok {
			p.nextSeq = s + 1
		}
	}
}

// lastRecordOf returns the last complete, parseable record line of a file
// (skipping a torn tail and '#' lines). It fails with ErrNoRecords when the
// file holds none, and with the parse error when the last record line does
// not parse.
func lastRecordOf(path string) (Record, error) {
	f, err := openReadOnly(path)
	if err != nil {
		return Record{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Record{}, fmt.Errorf("stat audit file %q: %w", path, err)
	}
	return lastRecordAt(f, fi.Size(), path)
}

func lastRecordAt(f io.ReaderAt, size int64, path string) (Record, error) {
	end := size
	for end > 0 {
		t, ok, err := readTail(f, end)
		if err != nil {
			return Record{}, fmt.Errorf("read audit file %q: %w", path, err)
		}
		if !ok {
			break
		}
		if len(t.lastLine) > 0 && t.lastLine[0] == '#' {
			end = t.lastLineStart
			continue
		}
		r, err := ParseLine(t.lastLine)
		if err != nil {
			return Record{}, fmt.Errorf("audit file %q: last record line at byte %d: %w", path, t.lastLineStart, err)
		}
		return r, nil
	}
	return Record{}, fmt.Errorf("audit file %q: %w", path, ErrNoRecords)
}

// prevGenerationTail returns PATH.1's last record when it is chained and
// the file ends cleanly.
func prevGenerationTail(path string) func() (Record, bool) {
	return func() (Record, bool) {
		f, err := openReadOnly(GenerationPath(path, 1))
		if err != nil {
			return Record{}, false
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil || fi.Size() == 0 {
			return Record{}, false
		}
		t, ok, err := readTail(f, fi.Size())
		if err != nil || !ok || len(t.torn) > 0 {
			return Record{}, false
		}
		r, err := ParseLine(t.lastLine)
		if err != nil || r.Unchained {
			return Record{}, false
		}
		return r, true
	}
}
