// Package manpage renders the roff man pages of the three varta programs.
//
// A Page is plain data: the program's name and one-line summary, a
// description, its options and commands (converted from the CLI
// definitions with FromFlags, so the page cannot drift from --help) and
// hand-written sections such as EXAMPLES, FILES, SIGNALS and EXIT STATUS.
// Render writes the page with every text escaped for roff: backslashes,
// a leading dot or apostrophe, and dashes in option names and examples, so
// VARTA_WATCH_<NAME>, quoted strings and "--flag" read as written.
//
// The package depends on the standard library only; FromFlags accepts any
// flag with the documentation method set of urfave/cli (Names, TakesValue,
// GetUsage, GetValue, GetDefaultText, GetEnvVars), and FromApp reads a
// *cli.App and its commands by their exported field names, so the library
// module does not import the CLI library. Each program's ManPage is
// RenderApp of its App plus its hand-written sections, each genman command
// is Main(app.ManPage), and one table-driven test (pages_test.go) fails
// when a committed page in man/ is stale.
package manpage
