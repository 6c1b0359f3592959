package progress

import (
	"io"
	"os"

	"github.com/mattn/go-isatty"
	"github.com/schollz/progressbar/v3"
)

// MinBytes is the input size from which varta-audit shows a bar.
const MinBytes = 64 << 20

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}

// Bar counts bytes read; a nil *Bar does nothing.
type Bar struct{ bar *progressbar.ProgressBar }

// Start returns a bar on w for total bytes when show is true, and nil
// otherwise.
func Start(w io.Writer, show bool, total int64, description string) *Bar {
	if !show {
		return nil
	}
	return &Bar{bar: progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(description),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100_000_000),
		progressbar.OptionClearOnFinish(),
	)}
}

// Add reports n more bytes read.
func (b *Bar) Add(n int64) {
	if b != nil {
		b.bar.Add64(n)
	}
}

// Finish removes the bar.
func (b *Bar) Finish() {
	if b != nil {
		b.bar.Finish()
	}
}
