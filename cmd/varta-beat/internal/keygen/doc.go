// Package keygen owns varta-beat's key-file generation: 32 random bytes from
// crypto/rand written as 64 lower-case hex digits and a newline, in a new
// file of mode 0600. It never overwrites or follows an existing path and does
// not read keys.
package keygen
