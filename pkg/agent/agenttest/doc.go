// Package agenttest provides minimal observer stand-ins for tests of code
// that sends VLP beats: a Unix datagram receiver (with kernel-reported sender
// credentials on Linux) and a UDP receiver, both on real sockets.
//
// It owns only the receiving end of a test. It does not track, judge or
// rate-limit beats (that is varta-watch's job) and must not be used in
// production code.
package agenttest
