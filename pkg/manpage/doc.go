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
// GetUsage, GetValue, GetDefaultText, GetEnvVars), so the library module
// does not import the CLI library.
package manpage
