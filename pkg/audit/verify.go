package audit

import (
	"errors"
	"fmt"
	"io"
)

// VerifyOptions configure Verify.
type VerifyOptions struct {
	// AllowUnchained accepts records whose chain column is "-" (a writer
	// without chain support): structure and seq are still checked, and the
	// report says that their integrity was not verified.
	AllowUnchained bool
	// Strict turns warnings (losses, torn tails, legacy lines, empty or
	// missing current file) into failures.
	Strict bool
	// Anchor, if set, must appear as a chain value in the log: the head
	// sealed earlier in external storage.
	Anchor *Hash
	// Progress, if set, is called with the number of bytes read since its
	// previous call (about every MiB).
	Progress func(n int64)
	// OnRecord, if set, is called for every record that parses, in file
	// order; r is reused after the call returns.
	OnRecord func(pos Position, r *Record)
}

// Verdict is the outcome of a verification.
type Verdict string

// Verdicts.
const (
	VerdictIntact Verdict = "intact"
	VerdictFailed Verdict = "failed"
)

// BreakKind classifies a verification failure.
type BreakKind string

// Break kinds.
const (
	// BreakTamper: a chain value does not match its record.
	BreakTamper BreakKind = "tamper"
	// BreakReorder: seq did not increase.
	BreakReorder BreakKind = "reorder"
	// BreakMalformed: a line in a v2 region is not a valid record.
	BreakMalformed BreakKind = "malformed"
	// BreakGeneration: a rotated generation does not continue the previous
	// one (missing, substituted or truncated).
	BreakGeneration BreakKind = "generation"
	// BreakDowngrade: "-" and hash chains mixed in one region, or a v2
	// record outside a v2 region.
	BreakDowngrade BreakKind = "downgrade"
	// BreakBoot: a boot record where its reason cannot occur, or a resume
	// boot that does not continue the previous record.
	BreakBoot BreakKind = "boot"
	// BreakStructure: the file's layout is wrong (missing header, region
	// not opened by a boot record).
	BreakStructure BreakKind = "structure"
)

// Position locates a line.
type Position struct {
	File string `json:"file"`
	Line int    `json:"line,omitempty"` // 1-based; 0 when not counted
}

// Break is one independent verification failure.
type Break struct {
	Position
	Seq  uint64    `json:"seq"` // 0 when the line has no readable seq
	Kind BreakKind `json:"kind"`
	What string    `json:"what"`
}

// Loss is a seq gap with an intact chain: records dropped by a full queue
// or lost to a power cut. Not tamper.
type Loss struct {
	Position
	After   uint64 `json:"after_seq"`
	Next    uint64 `json:"next_seq"`
	Missing uint64 `json:"missing"`
}

// Torn is a final line without LF (reported, not tamper).
type Torn struct {
	Position
	Bytes int `json:"bytes"`
}

// Head is the last record of the log: the value to seal externally.
type Head struct {
	Position
	Seq       uint64 `json:"seq"`
	Chain     Hash   `json:"chain"`
	Unchained bool   `json:"unchained,omitempty"`
}

// ChainStart says where the verified chain begins.
type ChainStart struct {
	Position
	Seq    uint64     `json:"seq"`
	Reason BootReason `json:"reason"`
	// Continued is true when the oldest present file opens with a rotation
	// boot: older generations are no longer present, and the chain is
	// anchored on that boot's prev_chain.
	Continued bool `json:"continued"`
}

// AnchorResult reports the --anchor check.
type AnchorResult struct {
	Hash  Hash      `json:"hash"`
	Found bool      `json:"found"`
	At    *Position `json:"at,omitempty"`
	Seq   uint64    `json:"seq,omitempty"`
}

// FileReport summarizes one generation.
type FileReport struct {
	GenerationFile
	Lines       int    `json:"lines"`
	Records     uint64 `json:"records"`
	FirstSeq    uint64 `json:"first_seq,omitempty"`
	LastSeq     uint64 `json:"last_seq,omitempty"`
	LegacyLines uint64 `json:"legacy_lines,omitempty"`
	Torn        bool   `json:"torn_tail,omitempty"`
}

// Report is the structured result of Verify.
type Report struct {
	Path    string       `json:"path"`
	Files   []FileReport `json:"files"`
	Bytes   int64        `json:"bytes"`
	Records uint64       `json:"records"`
	Chained uint64       `json:"chained"`
	// Unchained records carry "-" in their chain column: unverifiable.
	Unchained uint64 `json:"unchained"`
	// LegacyLines are lines of v1 or pre-v2 regions: kept, not verifiable.
	LegacyLines    uint64        `json:"legacy_lines"`
	Losses         []Loss        `json:"losses"`
	LostRecords    uint64        `json:"lost_records"`
	Torn           []Torn        `json:"torn"`
	Breaks         []Break       `json:"breaks"`
	ChainStarts    []ChainStart  `json:"chain_starts"`
	Head           *Head         `json:"head,omitempty"`
	Anchor         *AnchorResult `json:"anchor,omitempty"`
	AllowUnchained bool          `json:"allow_unchained"`
	Strict         bool          `json:"strict"`
	Verdict        Verdict       `json:"verdict"`
	Failures       []string      `json:"failures"`
	Warnings       []string      `json:"warnings"`
}

// Intact reports whether the verdict is VerdictIntact.
func (r *Report) Intact() bool { return r.Verdict == VerdictIntact }

// Verify verifies the log at path together with its rotated generations
// (PATH.5 … PATH.1, oldest first; missing ones are fine) by every rule of
// docs/audit.md ("verify"), streaming in constant memory. Verification problems are in
// the Report; the error is for I/O failures only (including a log that does
// not exist at all).
func Verify(path string, opts VerifyOptions) (*Report, error) {
	gens, err := ListGenerations(path)
	if err != nil {
		return nil, err
	}
	v := newVerifier(path, opts)
	for i, g := range gens {
		if err := v.verifyFile(g, i > 0); err != nil {
			return nil, err
		}
	}
	if gens[len(gens)-1].Generation != 0 {
		v.warn("%s is missing (only rotated generations exist)", path)
	}
	v.finish()
	return v.rep, nil
}

type regionKind int

const (
	regionNone    regionKind = iota // before the first line of a file
	regionV2                        // after a v2 header
	regionLegacy                    // after a v1 header, or a file without header
	regionMissing                   // records without any header (a removed header)
)

type chainMode int

const (
	modeUnknown chainMode = iota
	modeChained
	modeUnchained
)

type verifier struct {
	opts VerifyOptions
	rep  *Report
	ch   chainer
	p    parser
	in   interner
	rec  Record

	// Chain state, continuing across files.
	prev        Hash // link for the next record
	havePrev    bool
	mode        chainMode
	alt         Hash // computed chain of the last broken record
	altBreak    int  // its index in rep.Breaks, -1 when none
	lastSeq     uint64
	haveSeq     bool
	lastChain   Hash // stored chain of the previous record
	lastChained bool

	// Generation state.
	prevGen *Head // last record of the previous file

	// File state.
	file        *FileReport
	region      regionKind
	regionStart bool // the next record opens a v2 region
	regionAtTop bool // that region starts at the file's first line
	rotatedInto bool // the file is not the oldest present
}

func newVerifier(path string, opts VerifyOptions) *verifier {
	v := &verifier{opts: opts, altBreak: -1, in: interner{m: map[string]string{}}}
	v.p.intern = v.in.get
	v.rep = &Report{Path: path, AllowUnchained: opts.AllowUnchained, Strict: opts.Strict,
		Losses: []Loss{}, Torn: []Torn{}, Breaks: []Break{}, ChainStarts: []ChainStart{},
		Failures: []string{}, Warnings: []string{}}
	if opts.Anchor != nil {
		v.rep.Anchor = &AnchorResult{Hash: *opts.Anchor}
	}
	return v
}

func (v *verifier) warn(format string, args ...any) {
	v.rep.Warnings = append(v.rep.Warnings, fmt.Sprintf(format, args...))
}

func (v *verifier) addBreak(pos Position, seq uint64, kind BreakKind, format string, args ...any) int {
	v.rep.Breaks = append(v.rep.Breaks, Break{Position: pos, Seq: seq, Kind: kind, What: fmt.Sprintf(format, args...)})
	return len(v.rep.Breaks) - 1
}

// verifyFile verifies one generation.
func (v *verifier) verifyFile(g GenerationFile, rotatedInto bool) error {
	f, err := openReadOnly(g.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	v.rep.Files = append(v.rep.Files, FileReport{GenerationFile: g})
	v.file = &v.rep.Files[len(v.rep.Files)-1]
	v.region, v.regionStart, v.regionAtTop, v.rotatedInto = regionNone, false, false, rotatedInto
	var last Head
	haveLast := false
	lr := newLineReader(f, v.opts.Progress)
	for {
		line, status, err := lr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read audit file %q: %w", g.Path, err)
		}
		pos := Position{File: g.Path, Line: lr.line}
		switch status {
		case lineTorn:
			v.rep.Torn = append(v.rep.Torn, Torn{Position: pos, Bytes: len(line)})
			v.file.Torn = true
			continue
		case lineTooLong:
			v.addBreak(pos, 0, BreakMalformed, "line longer than %d bytes", maxLineBytes)
			v.havePrev = false
			continue
		}
		if v.line(pos, line) {
			last = Head{Position: pos, Seq: v.rec.Seq, Chain: v.lastChain, Unchained: !v.lastChained}
			haveLast = true
		}
	}
	v.file.Lines = lr.line
	v.rep.Bytes += lr.read
	if haveLast {
		h := last
		v.prevGen, v.rep.Head = &h, &h
	} else {
		v.warn("%s holds no record", g.Path)
	}
	return nil
}

// line handles one complete line; it reports whether it was a record.
func (v *verifier) line(pos Position, line []byte) bool {
	if len(line) > 0 && line[0] == '#' {
		switch string(line) {
		case HeaderV2:
			v.region, v.regionStart, v.regionAtTop = regionV2, true, pos.Line == 1
		case HeaderV1:
			v.region = regionLegacy
		default:
			if v.region == regionNone {
				v.region = regionLegacy // an unknown header: pre-v2 bytes
			}
		}
		return false
	}
	err := v.p.parse(line, &v.rec)
	if v.region == regionNone {
		if err == nil {
			v.addBreak(pos, v.rec.Seq, BreakStructure, "file does not start with the v2 header %q", HeaderV2)
			v.region, v.regionStart, v.regionAtTop = regionMissing, true, true
		} else {
			v.region = regionLegacy
		}
	}
	if v.region == regionLegacy {
		if err == nil {
			v.addBreak(pos, v.rec.Seq, BreakDowngrade, "v2 record inside a v1 or non-v2 region (header removed or replaced?)")
		} else {
			v.rep.LegacyLines++
			v.file.LegacyLines++
		}
		return false
	}
	if err != nil {
		v.malformed(pos, line, err)
		return false
	}
	v.record(pos, line)
	return true
}

// malformed reports a bad line of a v2 region and keeps the chain going
// from its raw bytes when the kind and the chain column can be read.
func (v *verifier) malformed(pos Position, line []byte, err error) {
	seq, _ := leadingSeq(line)
	v.addBreak(pos, seq, BreakMalformed, "%v", err)
	v.altBreak = -1
	// A record whose kind and chain column still read continues the chain
	// from its stored value; anything else makes the next record re-anchor.
	n := splitLine(line, &v.p.cols)
	var stored Hash
	if _, ok := lineKind(&v.p.cols, n); ok && n <= maxColumns && decodeLowerHex(v.p.cols[n-1], &stored) {
		v.prev, v.havePrev = stored, true
		v.lastChain, v.lastChained = stored, true
	} else {
		v.havePrev = false
	}
	if seq > 0 {
		v.lastSeq, v.haveSeq = seq, true
	}
	v.regionStart = false
}

// record verifies one parsed record of a v2 region, in steps: count it,
// decide what its chain links from (opening a region or continuing one),
// check its seq and its chain mode, then its chain value and the anchor.
func (v *verifier) record(pos Position, line []byte) {
	r := &v.rec
	v.count(r)
	body := recordBody(line, v.p.cols[r.Kind.Columns()-1])
	first := v.regionStart
	v.regionStart = false
	var lp linkPlan
	if first {
		lp = v.openRegion(pos, r)
	} else {
		lp = linkPlan{link: v.prev, known: v.havePrev}
		if r.Kind == KindBoot {
			v.bootInChain(pos, r, &lp, body)
		}
	}
	v.checkSeq(pos, r, lp.newRegion && lp.seqMayRestart)
	downgraded := v.checkMode(pos, r, lp.newRegion)
	v.advanceChain(pos, r, lp, downgraded, body)
	v.noteAnchor(pos, r)
	if v.opts.OnRecord != nil {
		v.opts.OnRecord(pos, r)
	}
}

// columnSeparator separates the columns of a record line.
const columnSeparator = "\t"

// recordBody returns the bytes a record's chain value hashes: the line up
// to, not including, the separator before its chain column (the last
// column, chainCol; docs/audit.md, "The file").
func recordBody(line, chainCol []byte) []byte {
	return line[:len(line)-len(chainCol)-len(columnSeparator)]
}

// count adds r to the report's and the file's tallies.
func (v *verifier) count(r *Record) {
	v.rep.Records++
	v.file.Records++
	if v.file.FirstSeq == 0 {
		v.file.FirstSeq = r.Seq
	}
	v.file.LastSeq = r.Seq
	if r.Unchained {
		v.rep.Unchained++
	} else {
		v.rep.Chained++
	}
}

// linkPlan says what a record's chain value links from and whether the
// record opens a new region.
type linkPlan struct {
	link          Hash // the previous link
	known         bool // link is known; false makes the record re-anchor
	newRegion     bool // the record opens a new chain region
	seqMayRestart bool // its seq need not follow the previous record's
}

// opensChainAfresh reports whether a boot of this reason starts a chain
// from ZeroHash.
func opensChainAfresh(reason BootReason) bool {
	switch reason {
	case BootFresh, BootCorruptTail, BootSchemaDrift, BootLegacyV1:
		return true
	}
	return false
}

// openRegion checks the first record after a v2 header (or of a file
// missing its header) and decides what it links from.
func (v *verifier) openRegion(pos Position, r *Record) linkPlan {
	isBoot := r.Kind == KindBoot
	reason := r.Boot.Reason
	switch {
	case v.rotatedInto && v.regionAtTop:
		return v.openRotatedGeneration(pos, r)
	case isBoot && reason == BootRotation && v.regionAtTop:
		v.rep.ChainStarts = append(v.rep.ChainStarts, ChainStart{Position: pos, Seq: r.Seq, Reason: reason, Continued: true})
		return linkPlan{link: r.Boot.PrevChain, known: r.Boot.HasPrevChain, newRegion: true}
	case isBoot && opensChainAfresh(reason):
		v.rep.ChainStarts = append(v.rep.ChainStarts, ChainStart{Position: pos, Seq: r.Seq, Reason: reason})
		return linkPlan{link: ZeroHash, known: true, newRegion: true, seqMayRestart: !v.regionAtTop}
	case isBoot:
		v.addBreak(pos, r.Seq, BreakBoot, "%s boot opens a v2 region: the records before it are missing", reason)
		return linkPlan{link: r.Boot.PrevChain, known: r.Boot.HasPrevChain, newRegion: true}
	default:
		v.addBreak(pos, r.Seq, BreakStructure, "v2 region opens with a %s record, not a boot record", r.Kind)
		return linkPlan{link: v.prev, newRegion: true}
	}
}

// openRotatedGeneration checks the first record of a generation that is
// not the oldest present: a rotation boot whose prev_chain is the last
// chain value of the previous generation.
func (v *verifier) openRotatedGeneration(pos Position, r *Record) linkPlan {
	if r.Kind != KindBoot || r.Boot.Reason != BootRotation {
		v.addBreak(pos, r.Seq, BreakGeneration, "first record of a rotated generation is %s, not a rotation boot (generation replaced or its head cut)", describe(r))
		return linkPlan{link: ZeroHash, known: r.Kind == KindBoot, newRegion: true}
	}
	if pg := v.prevGen; pg != nil && (!r.Boot.HasPrevChain || r.Boot.PrevChain != pg.Chain) && !(pg.Unchained && !r.Boot.HasPrevChain) {
		v.addBreak(pos, r.Seq, BreakGeneration, "rotation boot's prev_chain %s does not match the last chain of %s (seq %d): a generation is missing, substituted or truncated",
			shortPrev(r), pg.File, pg.Seq)
	}
	return linkPlan{link: r.Boot.PrevChain, known: r.Boot.HasPrevChain}
}

// bootInChain checks a boot record in the middle of a region. A fresh,
// schema_drift or legacy_v1 boot there is a break; when its chain value
// is what a writer starting afresh would have written, lp links it from
// ZeroHash so that it does not also report a chain mismatch.
func (v *verifier) bootInChain(pos Position, r *Record, lp *linkPlan, body []byte) {
	reason := r.Boot.Reason
	switch reason {
	case BootRotation:
		v.addBreak(pos, r.Seq, BreakBoot, "rotation boot in the middle of a file (a rotation boot only opens a generation)")
	case BootFresh, BootSchemaDrift, BootLegacyV1:
		v.addBreak(pos, r.Seq, BreakBoot, "%s boot in the middle of a chain (records before it replaced?)", reason)
		if lp.known && !r.Unchained && v.ch.link(lp.link, KindBoot.bytes(), body) != r.Chain {
			lp.link = ZeroHash // as a writer starting afresh would have linked it
		}
	case BootResume, BootCorruptTail:
		if r.Boot.HasPrevChain && v.lastChained && r.Boot.PrevChain != v.lastChain {
			v.addBreak(pos, r.Seq, BreakBoot, "%s boot's prev_chain %s does not match the previous record's chain (seq %d): records are missing before the restart",
				reason, shortPrev(r), v.lastSeq)
		} else if reason == BootResume && !r.Boot.HasPrevChain && v.lastChained {
			v.addBreak(pos, r.Seq, BreakBoot, "resume boot without prev_chain after a chained record")
		}
	}
}

// checkSeq reports a seq that does not increase and records a gap as a
// loss, unless the record may restart seq.
func (v *verifier) checkSeq(pos Position, r *Record, mayRestart bool) {
	if v.haveSeq && !mayRestart {
		switch {
		case r.Seq <= v.lastSeq:
			v.addBreak(pos, r.Seq, BreakReorder, "seq %d after seq %d: not increasing (records reordered, replayed or rewritten)", r.Seq, v.lastSeq)
		case r.Seq > v.lastSeq+1:
			missing := r.Seq - v.lastSeq - 1
			v.rep.Losses = append(v.rep.Losses, Loss{Position: pos, After: v.lastSeq, Next: r.Seq, Missing: missing})
			v.rep.LostRecords += missing
		}
	}
	v.lastSeq, v.haveSeq = r.Seq, true
}

// checkMode enforces that "-" and hashes never mix in one region; it
// reports whether r is a downgrade (or upgrade) within its region.
func (v *verifier) checkMode(pos Position, r *Record, newRegion bool) (downgraded bool) {
	if newRegion && !(v.rotatedInto && v.regionAtTop) {
		v.mode = modeUnknown
	}
	recMode := modeChained
	if r.Unchained {
		recMode = modeUnchained
	}
	switch {
	case v.mode == modeUnknown:
		v.mode = recMode
		return false
	case v.mode == recMode:
		return false
	case r.Unchained:
		v.addBreak(pos, r.Seq, BreakDowngrade, "chain column \"-\" inside a hashed region (downgrade)")
	default:
		v.addBreak(pos, r.Seq, BreakDowngrade, "hashed record inside an unchained region")
	}
	return true
}

// advanceChain checks r's chain value (when it has one) and moves the
// chain state past r.
func (v *verifier) advanceChain(pos Position, r *Record, lp linkPlan, downgraded bool, body []byte) {
	kind := r.Kind.bytes()
	switch {
	case r.Unchained && downgraded && lp.known:
		// Keep linking with what the chain would have been, so that
		// later records still verify independently.
		c := v.ch.link(lp.link, kind, body)
		v.prev, v.havePrev = c, true
		v.lastChain, v.lastChained = c, false
		v.altBreak = -1
	case r.Unchained:
		v.havePrev = false
		v.lastChained = false
		v.altBreak = -1
	default:
		v.checkChain(pos, r, lp.link, lp.known, kind, body)
	}
}

// noteAnchor records where the --anchor value first appears.
func (v *verifier) noteAnchor(pos Position, r *Record) {
	if a := v.rep.Anchor; a != nil && !a.Found && !r.Unchained && r.Chain == a.Hash {
		p := pos
		a.Found, a.At, a.Seq = true, &p, r.Seq
	}
}

// checkChain compares the stored chain with the recomputed one and
// re-anchors on the stored value after a break, so that every independent
// break is reported once. When the next record links to the recomputed
// value instead, the break is refined to "chain value altered".
func (v *verifier) checkChain(pos Position, r *Record, link Hash, linkKnown bool, kind, body []byte) {
	stored := r.Chain
	defer func() {
		v.prev, v.havePrev = stored, true
		v.lastChain, v.lastChained = stored, true
	}()
	if !linkKnown {
		v.altBreak = -1
		return
	}
	computed := v.ch.link(link, kind, body)
	if ab := v.altBreak; ab >= 0 {
		v.altBreak = -1
		// The previous record broke. If this one links to the value that
		// record's content hashes to, only its chain column was changed.
		if computed != stored && v.ch.link(v.alt, kind, body) == stored {
			v.rep.Breaks[ab].What = "chain value altered: the record's content is intact (the next record links to the recomputed chain)"
			return
		}
	}
	if computed == stored {
		return
	}
	v.altBreak = v.addBreak(pos, r.Seq, BreakTamper, "chain mismatch: record altered, or records inserted, deleted or reordered before it")
	v.alt = computed
}

func describe(r *Record) string {
	if r.Kind == KindBoot {
		return "a " + string(r.Boot.Reason) + " boot"
	}
	return "a " + r.Kind.String() + " record"
}

func shortPrev(r *Record) string {
	if !r.Boot.HasPrevChain {
		return "-"
	}
	return r.Boot.PrevChain.String()[:16] + "…"
}

// finish computes the verdict.
func (v *verifier) finish() {
	rep := v.rep
	if rep.Records == 0 {
		v.warn("the log holds no record")
	}
	var failures, warnings []string
	if n := len(rep.Breaks); n > 0 {
		failures = append(failures, fmt.Sprintf("%d break(s) in the chain or structure", n))
	}
	if rep.Unchained > 0 {
		if v.opts.AllowUnchained {
			warnings = append(warnings, fmt.Sprintf("%d record(s) carry no chain: structure and seq checked, integrity NOT verified", rep.Unchained))
		} else {
			failures = append(failures, fmt.Sprintf("%d record(s) carry no chain (unverifiable; --allow-unchained checks structure and seq only)", rep.Unchained))
		}
	}
	if a := rep.Anchor; a != nil && !a.Found {
		failures = append(failures, fmt.Sprintf("anchor %s not found in the chain (log rewritten, or the anchor's generation rotated away)", a.Hash))
	}
	soft := []string{}
	if n := len(rep.Losses); n > 0 {
		soft = append(soft, fmt.Sprintf("%d seq gap(s), %d record(s) lost (queue drop or power cut; chain intact)", n, rep.LostRecords))
	}
	if n := len(rep.Torn); n > 0 {
		soft = append(soft, fmt.Sprintf("%d torn final line(s) without LF", n))
	}
	if rep.LegacyLines > 0 {
		soft = append(soft, fmt.Sprintf("%d legacy line(s) outside a v2 region, not verifiable", rep.LegacyLines))
	}
	soft = append(soft, rep.Warnings...)
	if v.opts.Strict {
		failures = append(failures, soft...)
	} else {
		warnings = append(warnings, soft...)
	}
	rep.Failures = append([]string{}, failures...)
	rep.Warnings = append([]string{}, warnings...)
	rep.Verdict = VerdictIntact
	if len(failures) > 0 {
		rep.Verdict = VerdictFailed
	}
}
