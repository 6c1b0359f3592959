package manpage

import (
	"fmt"
	"io"
	"os"
	"reflect"
)

// AppPage is the hand-written part of a program's page; FromApp adds what
// the CLI defines.
type AppPage struct {
	Section  int       // manual section, 1 or 8
	Sections []Section // EXIT STATUS, SIGNALS, FILES, EXAMPLES, ...
	// OmitCommands leaves the App's commands out of the page (its synopsis
	// is then "[options]").
	OmitCommands bool
	// Synopsis replaces the synopsis derived from the commands (see
	// Page.Synopsis), e.g. for a program that is a daemon without a
	// command and a client with one.
	Synopsis []string
}

// FromApp returns the Page of a urfave/cli/v2 program from its *cli.App:
// the name, the NAME line (Usage), the description, the options (help and
// version first, then the App's flags by FromFlags) and, unless
// OmitCommands, the commands that are not Hidden with their flags.
//
// The App and its Commands are read by their exported field names (Name,
// Usage, Description, Flags, Commands; ArgsUsage and Hidden of a command),
// so that this module does not import the CLI library; a value without
// those fields is an error naming the field.
func FromApp(app any, o AppPage) (Page, error) {
	a, err := structOf(app, "app")
	if err != nil {
		return Page{}, err
	}
	var f fields
	p := Page{
		Name:        f.str(a, "Name"),
		Section:     o.Section,
		Summary:     f.str(a, "Usage"),
		Description: f.str(a, "Description"),
		Synopsis:    o.Synopsis,
		Sections:    o.Sections,
	}
	if !o.OmitCommands {
		for _, cv := range f.slice(a, "Commands") {
			c, err := structOf(cv, "command")
			if err != nil {
				return Page{}, err
			}
			if f.bool(c, "Hidden") {
				continue
			}
			p.Commands = append(p.Commands, Command{Name: f.str(c, "Name"), ArgsUsage: f.str(c, "ArgsUsage"),
				Usage: f.str(c, "Usage"), Description: f.str(c, "Description"), Options: FromFlags(f.slice(c, "Flags"))})
		}
	}
	help := "show the options and exit"
	if len(p.Commands) > 0 {
		help = "show the commands (or, after a command, its options) and exit"
	}
	p.Options = append([]Option{
		{Names: []string{"help", "h"}, Usage: help},
		{Names: []string{"version", "v"}, Usage: "print the version and exit"},
	}, FromFlags(f.slice(a, "Flags"))...)
	if f.err != nil {
		return Page{}, f.err
	}
	return p, nil
}

// RenderApp is FromApp, then Render.
func RenderApp(app any, o AppPage) (string, error) {
	p, err := FromApp(app, o)
	if err != nil {
		return "", err
	}
	return p.Render(), nil
}

// Main is the body of each program's genman command: it writes the page
// to standard output, or the error to standard error and exits 1.
func Main(page func() (string, error)) {
	if err := write(os.Stdout, page); err != nil {
		fmt.Fprintln(os.Stderr, "genman:", err)
		os.Exit(1)
	}
}

func write(w io.Writer, page func() (string, error)) error {
	s, err := page()
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, s)
	return err
}

// structOf dereferences pointers to the struct behind v.
func structOf(v any, what string) (reflect.Value, error) {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		return reflect.Value{}, fmt.Errorf("manpage: the %s is a %T, not a (pointer to a) struct", what, v)
	}
	return rv, nil
}

// fields reads named fields of a struct value and keeps the first error.
type fields struct{ err error }

func (f *fields) field(s reflect.Value, name string, kind reflect.Kind) (reflect.Value, bool) {
	v := s.FieldByName(name)
	if !v.IsValid() || v.Kind() != kind {
		if f.err == nil {
			f.err = fmt.Errorf("manpage: %s has no %s field %s", s.Type(), kind, name)
		}
		return reflect.Value{}, false
	}
	return v, true
}

func (f *fields) str(s reflect.Value, name string) string {
	v, ok := f.field(s, name, reflect.String)
	if !ok {
		return ""
	}
	return v.String()
}

func (f *fields) bool(s reflect.Value, name string) bool {
	v, ok := f.field(s, name, reflect.Bool)
	return ok && v.Bool()
}

// slice returns the elements of a slice field, in order.
func (f *fields) slice(s reflect.Value, name string) []any {
	v, ok := f.field(s, name, reflect.Slice)
	if !ok {
		return nil
	}
	out := make([]any, v.Len())
	for i := range out {
		out[i] = v.Index(i).Interface()
	}
	return out
}
