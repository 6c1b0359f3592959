package manpage

import (
	"fmt"
	"strconv"
	"strings"
)

// Page is one man page.
type Page struct {
	Name    string // program name, e.g. "varta-watch"
	Section int    // manual section, 1 or 8
	Summary string // the NAME line after the dash

	// Synopsis lines, each an argument pattern after the program name,
	// e.g. "exec [options] -- CMD [ARGS...]". Empty: derived from
	// Commands (one line per command) or "[options]".
	Synopsis []string

	Description string   // paragraphs separated by a blank line
	Options     []Option // the program's own options
	Commands    []Command
	Sections    []Section // hand-written sections, in order, after COMMANDS
}

// Command is one subcommand.
type Command struct {
	Name        string
	ArgsUsage   string // e.g. "PATH" or "-- CMD [ARGS...]"
	Usage       string // one line
	Description string // paragraphs separated by a blank line
	Options     []Option
}

// Option is one command-line flag.
type Option struct {
	Names      []string // long name first; "-" prefixes are added
	Arg        string   // value placeholder; empty for a boolean switch
	Usage      string
	Default    string // shown as "Default: X" when not empty
	Env        []string
	Required   bool
	Repeatable bool
	Group      string // options with a group are listed under a subsection
}

// Section is a hand-written section of the page.
type Section struct {
	Title  string // e.g. "EXIT STATUS"
	Blocks []Block
}

type blockKind int

const (
	paragraph blockKind = iota
	example
	item
)

// Block is a paragraph, a verbatim example or a tagged item of a Section.
type Block struct {
	kind blockKind
	term string
	text string
}

// P is a filled paragraph.
func P(text string) Block { return Block{kind: paragraph, text: text} }

// Example is verbatim text (commands, file contents), one line per line.
func Example(text string) Block { return Block{kind: example, text: text} }

// Item is a tagged paragraph: term in bold, text indented below it.
func Item(term, text string) Block { return Block{kind: item, term: term, text: text} }

// Render writes the page as roff (man macros).
func (p Page) Render() string {
	var w strings.Builder
	fmt.Fprintf(&w, ".TH %s %d\n.nh\n.ad l\n", strings.ToUpper(p.Name), p.Section)
	w.WriteString(".SH NAME\n")
	w.WriteString(text(p.Name) + " \\- " + text(p.Summary) + "\n")

	w.WriteString(".SH SYNOPSIS\n")
	for i, s := range p.synopsis() {
		if i > 0 {
			w.WriteString(".br\n")
		}
		w.WriteString(bold(p.Name) + " " + args(s) + "\n")
	}

	if p.Description != "" {
		w.WriteString(".SH DESCRIPTION\n")
		paragraphs(&w, p.Description)
	}
	if len(p.Options) > 0 {
		w.WriteString(".SH OPTIONS\n")
		options(&w, p.Options, ".SS")
	}
	if len(p.Commands) > 0 {
		w.WriteString(".SH COMMANDS\n")
		for _, c := range p.Commands {
			fmt.Fprintf(&w, ".SS %s\n", quoteArg(strings.TrimSpace(c.Name+" "+c.ArgsUsage)))
			if c.Usage != "" {
				w.WriteString(sentence(text(c.Usage)) + "\n")
			}
			if c.Description != "" {
				w.WriteString(".PP\n")
				paragraphs(&w, c.Description)
			}
			if len(c.Options) > 0 {
				w.WriteString(".PP\nOptions:\n")
				options(&w, c.Options, "")
			}
		}
	}
	for _, s := range p.Sections {
		fmt.Fprintf(&w, ".SH %s\n", quoteArg(strings.ToUpper(s.Title)))
		for i, b := range s.Blocks {
			switch b.kind {
			case paragraph:
				if i > 0 {
					w.WriteString(".PP\n")
				}
				paragraphs(&w, b.text)
			case example:
				w.WriteString(".PP\n.RS 4\n.nf\n")
				for _, l := range strings.Split(strings.TrimRight(b.text, "\n"), "\n") {
					w.WriteString(code(l) + "\n")
				}
				w.WriteString(".fi\n.RE\n")
			case item:
				w.WriteString(".TP\n" + bold(b.term) + "\n")
				paragraphs(&w, b.text)
			}
		}
	}
	return w.String()
}

func (p Page) synopsis() []string {
	if len(p.Synopsis) > 0 {
		return p.Synopsis
	}
	if len(p.Commands) == 0 {
		var s []string
		for _, o := range p.Options {
			if o.Required {
				s = append(s, "--"+o.Names[0]+" "+o.Arg)
			}
		}
		return []string{strings.Join(append(s, "[options]"), " ")}
	}
	out := make([]string, 0, len(p.Commands))
	for _, c := range p.Commands {
		line := c.Name
		if len(c.Options) > 0 {
			line += " [options]"
		}
		if c.ArgsUsage != "" {
			line += " " + c.ArgsUsage
		}
		out = append(out, line)
	}
	return out
}

// options writes a tagged list of options; sub is the macro for group
// headings (empty: groups are not shown).
func options(w *strings.Builder, opts []Option, sub string) {
	group := ""
	for _, o := range opts {
		if sub != "" && o.Group != "" && o.Group != group {
			group = o.Group
			fmt.Fprintf(w, "%s %s\n", sub, quoteArg(group))
		}
		w.WriteString(".TP\n")
		var names []string
		for _, n := range o.Names {
			dash := "--"
			if len(n) == 1 {
				dash = "-"
			}
			names = append(names, bold(dash+n))
		}
		head := strings.Join(names, ", ")
		if o.Arg != "" {
			head += " " + italic(o.Arg)
		}
		w.WriteString(head + "\n")
		if o.Usage != "" {
			w.WriteString(sentence(text(o.Usage)) + "\n")
		}
		var facts []string
		switch {
		case o.Required:
			facts = append(facts, "Required.")
		case o.Default != "":
			facts = append(facts, "Default: "+code(o.Default)+".")
		}
		if o.Repeatable && !strings.Contains(o.Usage, "repeatable") {
			facts = append(facts, "May be repeated.")
		}
		if len(o.Env) > 0 {
			var env []string
			for _, e := range o.Env {
				env = append(env, breakable(e))
			}
			facts = append(facts, "Environment: "+strings.Join(env, ", ")+".")
		}
		if len(facts) > 0 {
			w.WriteString(".br\n" + strings.Join(facts, " ") + "\n")
		}
	}
}

// paragraphs writes text whose paragraphs are separated by blank lines;
// single newlines inside a paragraph are filled like spaces.
func paragraphs(w *strings.Builder, s string) {
	for i, para := range strings.Split(strings.TrimSpace(s), "\n\n") {
		if i > 0 {
			w.WriteString(".PP\n")
		}
		lines := strings.Fields(strings.ReplaceAll(para, "\n", " "))
		w.WriteString(text(strings.Join(lines, " ")) + "\n")
	}
}

// sentence ends s with a full stop unless it already ends with punctuation.
func sentence(s string) string {
	if s == "" || strings.ContainsAny(s[len(s)-1:], ".:!?") {
		return s
	}
	return s + "."
}

// escape makes s safe as roff text: backslashes are printed, not
// interpreted.
func escape(s string) string { return strings.ReplaceAll(s, `\`, `\e`) }

// guard protects a text line that would otherwise start a request.
func guard(s string) string {
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		return `\&` + s
	}
	return s
}

// text is prose: escaped, and dashes that start an option (--flag, -h)
// are printed as ASCII hyphen-minus so they can be copied.
func text(s string) string {
	words := strings.Split(escape(s), " ")
	for i, wd := range words {
		if j := strings.IndexByte(wd, '-'); j >= 0 && optionLike(wd[j:]) && (j == 0 || strings.ContainsAny(wd[:j], "(\"'`[{=")) {
			words[i] = wd[:j] + dashes(wd[j:])
		} else if j > 0 && j+1 < len(wd) && isLetter(wd[j-1]) && isLetter(wd[j+1]) {
			words[i] = `\%` + wd // a hyphenated name (varta-audit(1)) stays on one line
		}
	}
	return guard(strings.Join(words, " "))
}

func optionLike(s string) bool {
	t := strings.TrimLeft(s, "-")
	return len(s)-len(t) >= 1 && len(s)-len(t) <= 2 && t != "" && isLetter(t[0])
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// code is literal text (examples, values): every dash is hyphen-minus.
func code(s string) string { return guard(dashes(escape(s))) }

func dashes(s string) string { return strings.ReplaceAll(s, "-", `\-`) }

// breakable is an environment variable name in bold; a name too long for
// a line of the indented option text may break after an underscore (no
// hyphen is printed) instead of overflowing it, a shorter one stays whole
// so that it can be copied.
func breakable(name string) string {
	if len(name) < 40 {
		return bold(name)
	}
	return strings.ReplaceAll(bold(name), "_", `_\:`)
}

func bold(s string) string   { return `\fB` + dashes(escape(s)) + `\fR` }
func italic(s string) string { return `\fI` + dashes(escape(s)) + `\fR` }

// args formats an argument pattern: upper-case words (placeholders) in
// italics, options and literal words in bold, brackets and "..." plain.
func args(s string) string {
	words := strings.Fields(s)
	for i, wd := range words {
		core := strings.Trim(wd, "[]")
		core = strings.TrimSuffix(core, "...")
		core = strings.TrimSuffix(core, "…")
		core = strings.Trim(core, "[]")
		if core == "" {
			words[i] = escape(wd)
			continue
		}
		var f string
		switch {
		case core == "options":
			f = italic(core)
		case strings.ToUpper(core) == core && strings.ContainsAny(core, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"):
			f = italic(core)
		default:
			f = bold(core)
		}
		words[i] = strings.Replace(escape(wd), escape(core), f, 1)
	}
	return guard(strings.Join(words, " "))
}

// quoteArg makes s one macro argument.
func quoteArg(s string) string {
	s = dashes(escape(s))
	if !strings.ContainsAny(s, " \t\"") {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `\(dq`) + `"`
}

// Flag is the documentation method set of a urfave/cli flag.
type Flag interface {
	Names() []string
	TakesValue() bool
	GetUsage() string
	GetValue() string
	GetDefaultText() string
	GetEnvVars() []string
}

// FromFlags converts CLI flags to Options, in order. Hidden flags
// (IsVisible() == false) are left out; a back-quoted word in the usage
// names the value (as in --help), else "VALUE"; the category becomes the
// group; slice flags are repeatable; booleans show their default.
func FromFlags[F any](flags []F) []Option {
	var out []Option
	for _, f := range flags {
		df, ok := any(f).(Flag)
		if !ok {
			continue
		}
		if v, ok := df.(interface{ IsVisible() bool }); ok && !v.IsVisible() {
			continue
		}
		o := Option{Names: df.Names(), Env: df.GetEnvVars()}
		arg, usage := unquoteUsage(df.GetUsage())
		o.Usage = usage
		if df.TakesValue() {
			if arg == "" {
				arg = "VALUE"
			}
			o.Arg = arg
		}
		o.Default = df.GetDefaultText()
		if u, err := strconv.Unquote(o.Default); err == nil {
			o.Default = u
		}
		if r, ok := df.(interface{ IsRequired() bool }); ok {
			o.Required = r.IsRequired()
		}
		if s, ok := df.(interface{ IsSliceFlag() bool }); ok && s.IsSliceFlag() {
			o.Repeatable = true
			o.Default = ""
		}
		if c, ok := df.(interface{ GetCategory() string }); ok {
			o.Group = c.GetCategory()
		}
		out = append(out, o)
	}
	return out
}

// unquoteUsage returns the first back-quoted word of usage and usage
// without the quotes, like urfave/cli's help.
func unquoteUsage(usage string) (string, string) {
	i := strings.IndexByte(usage, '`')
	if i < 0 {
		return "", usage
	}
	j := strings.IndexByte(usage[i+1:], '`')
	if j < 0 {
		return "", usage
	}
	name := usage[i+1 : i+1+j]
	return name, usage[:i] + name + usage[i+2+j:]
}
