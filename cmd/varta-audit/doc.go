// Command varta-audit verifies, summarizes, shows and rotates varta
// recovery audit logs (schema v2, written by varta-watch or the Rust
// daemon). main only runs the App that internal/app builds; see
// man/varta-audit.1 and docs/audit.md.
package main
