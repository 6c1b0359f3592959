package manpage

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// fakeFlag has the documentation method set of a urfave/cli flag.
type fakeFlag struct {
	name, usage, def string
	value            bool
}

func (f *fakeFlag) Names() []string        { return []string{f.name} }
func (f *fakeFlag) TakesValue() bool       { return f.value }
func (f *fakeFlag) GetUsage() string       { return f.usage }
func (f *fakeFlag) GetValue() string       { return f.def }
func (f *fakeFlag) GetDefaultText() string { return f.def }
func (f *fakeFlag) GetEnvVars() []string   { return nil }

// flagIface stands for cli.Flag: the App's Flags are a slice of an
// interface type.
type flagIface interface{ Names() []string }

// fakeCommand and fakeApp have the fields FromApp reads of *cli.Command
// and *cli.App, and others it ignores.
type fakeCommand struct {
	Name, ArgsUsage, Usage, Description string
	Hidden                              bool
	Flags                               []flagIface
	Action                              func() error
}

type fakeApp struct {
	Name, Usage, Description string
	Flags                    []flagIface
	Commands                 []*fakeCommand
	HideHelpCommand          bool
}

func TestFromApp(t *testing.T) {
	verbose := &fakeFlag{name: "verbose", usage: "print every beat"}
	socket := &fakeFlag{name: "socket", usage: "the observer's `PATH`", def: "/run/x.sock", value: true}
	app := &fakeApp{Name: "prog", Usage: "does things", Description: "Long text.",
		Flags: []flagIface{socket},
		Commands: []*fakeCommand{
			{Name: "run", ArgsUsage: "[options]", Usage: "run it", Description: "Runs.", Flags: []flagIface{verbose}},
			{Name: "secret", Usage: "hidden", Hidden: true},
			{Name: "once", Usage: "one beat"},
		}}
	help := func(usage string) Option { return Option{Names: []string{"help", "h"}, Usage: usage} }
	version := Option{Names: []string{"version", "v"}, Usage: "print the version and exit"}
	socketOpt := Option{Names: []string{"socket"}, Arg: "PATH", Usage: "the observer's PATH", Default: "/run/x.sock"}
	sections := []Section{{Title: "Files", Blocks: []Block{P("none")}}}
	tests := []struct {
		name string
		app  any
		o    AppPage
		want Page
	}{
		{"commands", app, AppPage{Section: 1, Sections: sections}, Page{
			Name: "prog", Section: 1, Summary: "does things", Description: "Long text.", Sections: sections,
			Options: []Option{help("show the commands (or, after a command, its options) and exit"), version, socketOpt},
			Commands: []Command{
				{Name: "run", ArgsUsage: "[options]", Usage: "run it", Description: "Runs.", Options: []Option{{Names: []string{"verbose"}, Usage: "print every beat"}}},
				{Name: "once", Usage: "one beat"},
			}}},
		{"commands omitted", app, AppPage{Section: 8, OmitCommands: true}, Page{
			Name: "prog", Section: 8, Summary: "does things", Description: "Long text.",
			Options: []Option{help("show the options and exit"), version, socketOpt}}},
		{"a struct, not a pointer", fakeApp{Name: "p"}, AppPage{Section: 1}, Page{
			Name: "p", Section: 1, Options: []Option{help("show the options and exit"), version}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromApp(tt.app, tt.o)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("FromApp =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestFromAppRefusesOtherShapes(t *testing.T) {
	type noUsage struct {
		Name, Description string
		Flags             []flagIface
		Commands          []*fakeCommand
	}
	type badCommand struct{ Name string }
	type appWithBadCommands struct {
		Name, Usage, Description string
		Flags                    []flagIface
		Commands                 []badCommand
	}
	type usageNotString struct {
		Name, Description string
		Usage             int
		Flags             []flagIface
		Commands          []*fakeCommand
	}
	tests := []struct {
		name string
		app  any
		want string
	}{
		{"not a struct", "varta", "not a (pointer to a) struct"},
		{"nil pointer", (*fakeApp)(nil), "not a (pointer to a) struct"},
		{"missing field", &noUsage{Name: "x"}, "no string field Usage"},
		{"wrong field type", usageNotString{Name: "x"}, "no string field Usage"},
		{"command without Hidden", appWithBadCommands{Commands: []badCommand{{Name: "c"}}}, "no bool field Hidden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FromApp(tt.app, AppPage{Section: 1})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("FromApp = %v, want an error saying %q", err, tt.want)
			}
			if _, err := RenderApp(tt.app, AppPage{Section: 1}); err == nil {
				t.Fatal("RenderApp succeeded")
			}
		})
	}
}

func TestWrite(t *testing.T) {
	var buf bytes.Buffer
	if err := write(&buf, func() (string, error) { return "page\n", nil }); err != nil || buf.String() != "page\n" {
		t.Fatalf("write = %v, %q", err, buf.String())
	}
	boom := errors.New("boom")
	buf.Reset()
	if err := write(&buf, func() (string, error) { return "", boom }); !errors.Is(err, boom) || buf.Len() != 0 {
		t.Fatalf("write = %v, %q; want boom and nothing written", err, buf.String())
	}
}
