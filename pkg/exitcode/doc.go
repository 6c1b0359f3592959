// Package exitcode holds the process exit codes shared by varta-watch,
// varta-beat and varta-audit, and the one function that turns a command's
// error into its exit code and stderr message. It has no dependencies
// beyond the standard library.
package exitcode
