// Package secure owns the secure UDP transport of VLP v0.2 (docs/vlp.md §5 to §8): the
// 60-byte shared-key and 64-byte master-key ChaCha20-Poly1305 frames, the
// HKDF-SHA256 derivations, the key-file formats, the sender's nonce
// discipline (Sealer), the observer's constant-work opening (Opener) and the
// observer's replay rules (ReplayGuard).
//
// The plaintext of every secure frame is a 32-byte VLP frame; this package
// seals and opens it but does not decode it (pkg/vlp does). It does no
// network I/O, reads no clock (callers pass the time in) and reads files
// only through pkg/secretfile. Sealer, Opener and ReplayGuard are not safe
// for concurrent use: each sender or receive loop owns its own.
package secure
