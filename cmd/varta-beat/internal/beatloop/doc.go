// Package beatloop owns varta-beat's periodic beating: the "run" loop
// (beat every interval until a count or a stop signal, then the terminal
// frame) and the rate-limited report of beats that were not sent.
//
// It does not parse flags, connect or choose exit codes; the CLI layer does.
package beatloop
