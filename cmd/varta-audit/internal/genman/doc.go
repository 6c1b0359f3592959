// Command genman writes the varta-audit man page from the same cli.App the
// binary runs. Usage: go run ./cmd/varta-audit/internal/genman > man/varta-audit.1
package main
