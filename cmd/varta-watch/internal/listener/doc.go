// Package listener owns the observer's sockets: binding the Unix datagram
// socket safely (directory checks, stale-socket takeover, mode, receive
// buffer, SO_PASSCRED), receiving datagrams in batches together with the
// kernel's sender credentials, and removing the socket file on close only
// when it is still the one we bound. UDP sockets live here too, and so do
// the timers the receivers pause on between drains (Pacer) and the one
// the control loop sleeps on (Alarm): both are a timerfd in the runtime's
// poller on Linux.
//
// A listener reads bytes and credentials; it never decodes a frame, never
// decides whether a sender is trusted and never touches the tracker.
package listener
