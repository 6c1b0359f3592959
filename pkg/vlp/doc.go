// Package vlp owns the VLP v0.2 heartbeat frame: the 32-byte wire layout,
// its CRC-32C, the normative decode order and the typed decode errors.
//
// Encoding and decoding are pure functions on fixed-size arrays. They never
// allocate and the decoder never panics on any input. The package does no I/O;
// transports live in the observer and in pkg/agent.
package vlp
