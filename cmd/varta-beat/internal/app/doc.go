// Package app owns varta-beat's command-line surface: the urfave/cli App
// (commands, flags, help and man page), the mapping of flags to the typed
// Options of pkg/agent and of the internal packages, and the mapping of
// outcomes to exit codes.
//
// Actions stay thin: beating, supervising, load generation and key
// generation live in their own packages. Library packages never see flags
// or the environment; only this package reads them.
package app
