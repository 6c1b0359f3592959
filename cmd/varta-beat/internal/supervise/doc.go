// Package supervise owns "varta-beat exec": it runs a command as a child,
// beats on its behalf while it lives (optionally only while it keeps writing
// output), forwards stop signals to it, sends the terminal frame when it
// fails, and computes the exit code to pass on.
//
// It does not parse flags and does not exit the process; the CLI layer does.
package supervise
