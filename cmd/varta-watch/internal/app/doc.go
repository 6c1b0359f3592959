// Package app owns varta-watch's command line: the cli.App (built by New,
// shared by main, the tests and the man-page generator), the flag table
// with its VARTA_WATCH_* environment variables, the translation of flags
// and of the service manager's environment into observer.Options, and the
// exit codes. It validates configuration (exit 2) and leaves every
// runtime failure (exit 1) to the observer; it never touches sockets or
// files itself.
package app
