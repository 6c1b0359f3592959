package manpage

import (
	"strings"
	"testing"
)

func TestText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"VARTA_WATCH_<NAME>", "VARTA_WATCH_<NAME>"},
		{`rewrite PATH with "<ticks> <ns>"`, `rewrite PATH with "<ticks> <ns>"`},
		{`a \ b`, `a \e b`},
		{".starts with a dot", `\&.starts with a dot`},
		{"'quoted", `\&'quoted`},
		{"use --threshold-ms and -h", `use \-\-threshold\-ms and \-h`},
		{"(--udp with --key-file)", `(\-\-udp with \-\-key\-file)`},
		{"see varta-audit(1)", `see \%varta-audit(1)`},
		{`"-" = standard output`, `"-" = standard output`},
		{"0 = off; -1", "0 = off; -1"},
	}
	for _, tc := range tests {
		if got := text(tc.in); got != tc.want {
			t.Errorf("text(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestArgs(t *testing.T) {
	tests := []struct{ in, want string }{
		{"exec [options] -- CMD [ARGS...]", `\fBexec\fR [\fIoptions\fR] \fB\-\-\fR \fICMD\fR [\fIARGS\fR...]`},
		{"keygen PATH", `\fBkeygen\fR \fIPATH\fR`},
		{"--socket PATH", `\fB\-\-socket\fR \fIPATH\fR`},
	}
	for _, tc := range tests {
		if got := args(tc.in); got != tc.want {
			t.Errorf("args(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// docFlag has the documentation method set of a urfave/cli flag.
type docFlag struct {
	names      []string
	takes      bool
	usage, def string
	env        []string
	hidden     bool
	slice      bool
	required   bool
	category   string
}

func (f docFlag) Names() []string        { return f.names }
func (f docFlag) TakesValue() bool       { return f.takes }
func (f docFlag) GetUsage() string       { return f.usage }
func (f docFlag) GetValue() string       { return "" }
func (f docFlag) GetDefaultText() string { return f.def }
func (f docFlag) GetEnvVars() []string   { return f.env }
func (f docFlag) IsVisible() bool        { return !f.hidden }
func (f docFlag) IsSliceFlag() bool      { return f.slice }
func (f docFlag) IsRequired() bool       { return f.required }
func (f docFlag) GetCategory() string    { return f.category }

func TestFromFlags(t *testing.T) {
	flags := []any{
		docFlag{names: []string{"socket"}, takes: true, usage: "bind at `PATH`", def: `"/run/x.sock"`, env: []string{"VARTA_WATCH_SOCKET"}, required: true, category: "Unix socket"},
		docFlag{names: []string{"verbose"}, usage: "print more", def: "false"},
		docFlag{names: []string{"gone"}, hidden: true},
		docFlag{names: []string{"allow-uid"}, takes: true, usage: "accept `UID`", def: "", slice: true},
		docFlag{names: []string{"payload"}, takes: true, usage: "carried value", def: "0"},
		"not a flag",
	}
	got := FromFlags(flags)
	want := []Option{
		{Names: []string{"socket"}, Arg: "PATH", Usage: "bind at PATH", Default: "/run/x.sock", Env: []string{"VARTA_WATCH_SOCKET"}, Required: true, Group: "Unix socket"},
		{Names: []string{"verbose"}, Usage: "print more", Default: "false"},
		{Names: []string{"allow-uid"}, Arg: "UID", Usage: "accept UID", Repeatable: true},
		{Names: []string{"payload"}, Arg: "VALUE", Usage: "carried value", Default: "0"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d options, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if strings.Join(g.Names, ",") != strings.Join(w.Names, ",") || g.Arg != w.Arg || g.Usage != w.Usage ||
			g.Default != w.Default || strings.Join(g.Env, ",") != strings.Join(w.Env, ",") ||
			g.Required != w.Required || g.Repeatable != w.Repeatable || g.Group != w.Group {
			t.Errorf("option %d = %+v, want %+v", i, g, w)
		}
	}
}

func TestRender(t *testing.T) {
	p := Page{
		Name: "demo", Section: 1, Summary: "a demo",
		Options: []Option{
			{Names: []string{"threshold-ms"}, Arg: "MS", Usage: "stall after MS", Required: true, Env: []string{"DEMO_THRESHOLD_MS"}},
			{Names: []string{"quiet", "q"}, Usage: "say less", Default: "false"},
		},
		Sections: []Section{{Title: "Exit status", Blocks: []Block{Item("0", "fine"), P("more"), Example("demo --quiet\n.hidden")}}},
	}
	got := p.Render()
	for _, want := range []string{
		".TH DEMO 1\n",
		"\\fBdemo\\fR \\fB\\-\\-threshold\\-ms\\fR \\fIMS\\fR [\\fIoptions\\fR]\n",
		"\\fB\\-\\-quiet\\fR, \\fB\\-q\\fR\nsay less.\n.br\nDefault: false.\n",
		"Required. Environment: \\fBDEMO_THRESHOLD_MS\\fR.\n",
		".SH \"EXIT STATUS\"\n.TP\n\\fB0\\fR\nfine\n.PP\nmore\n",
		".nf\ndemo \\-\\-quiet\n\\&.hidden\n.fi\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("page lacks %q:\n%s", want, got)
		}
	}
}

// TestOptionFacts: an environment variable name that fits a line stays
// whole (it can be copied), only a longer one may break after an
// underscore; "May be repeated." is not added to a usage that already
// says "repeatable".
func TestOptionFacts(t *testing.T) {
	var w strings.Builder
	options(&w, []Option{
		{Names: []string{"tracker-eviction-policy"}, Arg: "POLICY", Env: []string{"VARTA_WATCH_TRACKER_EVICTION_POLICY"}},
		{Names: []string{"long"}, Env: []string{"VARTA_WATCH_SECURE_UDP_I_ACCEPT_RECOVERY_ON_UNAUTHENTICATED_TRANSPORT"}},
		{Names: []string{"allow-uid"}, Arg: "UID", Usage: "also accept this UID (repeatable)", Repeatable: true},
		{Names: []string{"env"}, Arg: "KEY=VALUE", Usage: "add KEY=VALUE", Repeatable: true},
	}, "")
	got := w.String()
	for _, want := range []string{
		`Environment: \fBVARTA_WATCH_TRACKER_EVICTION_POLICY\fR.`,
		`\fBVARTA_\:WATCH_\:SECURE_\:UDP_\:I_\:ACCEPT_\:RECOVERY_\:ON_\:UNAUTHENTICATED_\:TRANSPORT\fR`,
		"also accept this UID (repeatable).\n.TP",
		"add KEY=VALUE.\n.br\nMay be repeated.\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("options page lacks %q:\n%s", want, got)
		}
	}
}
