package report

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/varta-go/varta/pkg/audit"
)

// Verify writes the verdict and a short report.
func Verify(w io.Writer, rep *audit.Report, f Format) error {
	if f == JSON {
		return writeJSON(w, rep)
	}
	var b strings.Builder
	var size int64
	for _, fr := range rep.Files {
		size += fr.Size
	}
	fmt.Fprintf(&b, "log:      %s (%s, %s)\n", safe(rep.Path), plural(uint64(len(rep.Files)), "file", "files"), bytesText(uint64(size)))
	for _, fr := range rep.Files {
		seq := "no records"
		if fr.Records > 0 {
			seq = fmt.Sprintf("seq %d-%d", fr.FirstSeq, fr.LastSeq)
		}
		extra := ""
		if fr.LegacyLines > 0 {
			extra += fmt.Sprintf(", %d legacy lines", fr.LegacyLines)
		}
		if fr.Torn {
			extra += ", torn tail"
		}
		fmt.Fprintf(&b, "  %s: %s, %s, %s%s\n", safe(fr.Path), plural(uint64(fr.Lines), "line", "lines"), plural(fr.Records, "record", "records"), seq, extra)
	}
	fmt.Fprintf(&b, "records:  %d (%d chained, %d unchained)\n", rep.Records, rep.Chained, rep.Unchained)
	for _, cs := range rep.ChainStarts {
		how := fmt.Sprintf("%s boot", cs.Reason)
		if cs.Continued {
			how += "; older generations not present, anchored on its prev_chain"
		}
		fmt.Fprintf(&b, "chain:    starts at seq %d (%s, %s)\n", cs.Seq, how, where(cs.Position))
	}
	if h := rep.Head; h != nil {
		chain := h.Chain.String()
		if h.Unchained {
			chain = "- (unchained)"
		}
		fmt.Fprintf(&b, "head:     seq %d %s\n", h.Seq, chain)
	}
	if a := rep.Anchor; a != nil {
		if a.Found {
			fmt.Fprintf(&b, "anchor:   %s found at seq %d (%s)\n", a.Hash, a.Seq, where(*a.At))
		} else {
			fmt.Fprintf(&b, "anchor:   %s NOT FOUND\n", a.Hash)
		}
	}
	if len(rep.Losses) > 0 {
		fmt.Fprintf(&b, "losses:   %s, %s\n", plural(uint64(len(rep.Losses)), "seq gap", "seq gaps"), plural(rep.LostRecords, "record lost", "records lost"))
		for _, l := range rep.Losses {
			fmt.Fprintf(&b, "  %s: %d missing after seq %d (next seq %d)\n", where(l.Position), l.Missing, l.After, l.Next)
		}
	}
	for _, t := range rep.Torn {
		fmt.Fprintf(&b, "torn:     %s: %d bytes without a final LF\n", where(t.Position), t.Bytes)
	}
	if len(rep.Breaks) > 0 {
		fmt.Fprintf(&b, "breaks:   %d\n", len(rep.Breaks))
		for _, x := range rep.Breaks {
			seq := ""
			if x.Seq > 0 {
				seq = fmt.Sprintf(" seq %d", x.Seq)
			}
			fmt.Fprintf(&b, "  %s%s %s: %s\n", where(x.Position), seq, strings.ToUpper(string(x.Kind)), safe(x.What))
		}
	}
	for _, m := range rep.Warnings {
		fmt.Fprintf(&b, "warning:  %s\n", safe(m))
	}
	switch {
	case rep.Verdict == audit.VerdictFailed:
		fmt.Fprintf(&b, "verdict:  FAILED: %s\n", safe(join(rep.Failures)))
	case len(rep.Warnings) > 0:
		fmt.Fprintf(&b, "verdict:  INTACT, with warnings\n")
	default:
		fmt.Fprintf(&b, "verdict:  INTACT\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// where prints file:line with the file's base name (the files are listed
// in full above).
func where(p audit.Position) string {
	if p.Line == 0 {
		return safe(filepath.Base(p.File))
	}
	return fmt.Sprintf("%s:%d", safe(filepath.Base(p.File)), p.Line)
}

// Head writes the chain head: "SEQ HASH" (the line to seal; --anchor-file
// accepts it).
func Head(w io.Writer, h audit.Head, f Format) error {
	if f == JSON {
		return writeJSON(w, struct {
			File      string `json:"file"`
			Seq       uint64 `json:"seq"`
			Chain     string `json:"chain"`
			Unchained bool   `json:"unchained"`
		}{h.File, h.Seq, chainText(h.Chain, h.Unchained), h.Unchained})
	}
	_, err := fmt.Fprintf(w, "%d %s\n", h.Seq, chainText(h.Chain, h.Unchained))
	return err
}

func chainText(h audit.Hash, unchained bool) string {
	if unchained {
		return "-"
	}
	return h.String()
}

// Rotate writes what a rotation did.
func Rotate(w io.Writer, res audit.RotateResult, f Format) error {
	if f == JSON {
		return writeJSON(w, struct {
			Path      string `json:"path"`
			Rotated   string `json:"rotated"`
			Seq       uint64 `json:"seq"`
			PrevChain string `json:"prev_chain"`
			Chain     string `json:"chain"`
		}{res.Path, res.Rotated, res.Boot.Seq, res.Boot.Boot.PrevChain.String(), res.Boot.Chain.String()})
	}
	_, err := fmt.Fprintf(w, "rotated %s to %s\nnew %s opens with rotation boot seq %d (prev_chain %s)\nhead: %d %s\n",
		safe(res.Path), safe(res.Rotated), safe(res.Path), res.Boot.Seq, res.Boot.Boot.PrevChain, res.Boot.Seq, res.Boot.Chain)
	return err
}
