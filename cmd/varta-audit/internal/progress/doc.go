// Package progress shows a progress bar for long varta-audit runs on a
// terminal. It owns the decision (terminal and size) and the bar; it must
// not write anywhere but the writer it is given (stderr).
package progress
