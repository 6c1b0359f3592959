package audit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
)

// GenerationFile is one existing file of a log: PATH.5 … PATH.1 or PATH.
type GenerationFile struct {
	Path       string `json:"path"`
	Generation int    `json:"generation"` // 5 … 1, 0 for PATH
	Size       int64  `json:"size"`
}

// ListGenerations returns the existing files of the log at path, oldest
// first (PATH.5 … PATH.1, then PATH). Missing generations are skipped. It
// fails with an error wrapping os.ErrNotExist when none exists.
func ListGenerations(path string) ([]GenerationFile, error) {
	var out []GenerationFile
	for n := Generations; n >= 0; n-- {
		p := GenerationPath(path, n)
		fi, err := os.Lstat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("stat audit file %q: %w", p, err)
		}
		out = append(out, GenerationFile{Path: p, Generation: n, Size: fi.Size()})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("audit log %q: %w", path, os.ErrNotExist)
	}
	return out, nil
}

// lineReader streams the lines of one file in constant memory.
type lineReader struct {
	br       *bufio.Reader
	line     int
	long     []byte
	read     int64 // bytes consumed
	reported int64
	progress func(n int64) // bytes consumed since the last call
}

const (
	readBufferSize = 256 << 10
	progressEvery  = 1 << 20
)

func newLineReader(r io.Reader, progress func(int64)) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, readBufferSize), progress: progress}
}

// lineStatus qualifies a line returned by next.
type lineStatus int

const (
	lineComplete lineStatus = iota
	lineTorn                // the file ended without a final LF
	lineTooLong             // longer than maxLineBytes; its bytes are not kept
)

// next returns the next line without its LF. The slice is valid until the
// following call. It returns io.EOF after the last line.
func (lr *lineReader) next() ([]byte, lineStatus, error) {
	lr.long = lr.long[:0]
	tooLong := false
	for {
		b, err := lr.br.ReadSlice('\n')
		lr.read += int64(len(b))
		if lr.progress != nil && lr.read-lr.reported >= progressEvery {
			lr.progress(lr.read - lr.reported)
			lr.reported = lr.read
		}
		switch {
		case err == nil:
			lr.line++
			if tooLong {
				return nil, lineTooLong, nil
			}
			if len(lr.long) > 0 {
				lr.long = append(lr.long, b[:len(b)-1]...)
				return lr.long, lineComplete, nil
			}
			return b[:len(b)-1], lineComplete, nil
		case errors.Is(err, bufio.ErrBufferFull):
			if !tooLong {
				if len(lr.long)+len(b) > maxLineBytes {
					tooLong, lr.long = true, lr.long[:0]
				} else {
					lr.long = append(lr.long, b...)
				}
			}
		case errors.Is(err, io.EOF):
			if len(b) == 0 && len(lr.long) == 0 && !tooLong {
				lr.flushProgress()
				return nil, 0, io.EOF
			}
			lr.line++
			lr.flushProgress()
			if tooLong {
				return nil, lineTooLong, nil
			}
			if len(lr.long) > 0 {
				lr.long = append(lr.long, b...)
				return lr.long, lineTorn, nil
			}
			return b, lineTorn, nil
		default:
			return nil, 0, err
		}
	}
}

func (lr *lineReader) flushProgress() {
	if lr.progress != nil && lr.read > lr.reported {
		lr.progress(lr.read - lr.reported)
		lr.reported = lr.read
	}
}

// interner returns shared strings for repeated byte values (program,
// source, reason), bounded so that memory stays constant.
type interner struct{ m map[string]string }

const internMax = 4096

func (in *interner) get(b []byte) string {
	if s, ok := in.m[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(in.m) < internMax {
		in.m[s] = s
	}
	return s
}
