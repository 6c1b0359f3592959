// Package logthrottle is the one rate limit of the varta programs' log
// lines (varta-watch's warnings and stall story, the audit writer's
// warnings, varta-beat's drop reports) and of varta-watch's events-file
// lines about refused traffic: a Limiter lets a burst of
// lines through, then one per interval, and counts the ones it holds back
// so that the next line written (or a summary line) can say how many were
// left out. Nothing is dropped silently.
//
// A Limiter is a value without a lock or a clock of its own: the caller
// passes the time of each event (Allow takes nanoseconds on any monotonic
// clock, AllowAt a time.Time) and serialises the calls, so it is unit-tested
// with an injected clock and costs no allocation.
package logthrottle
