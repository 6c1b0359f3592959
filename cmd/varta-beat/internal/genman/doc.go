// Command genman writes the varta-beat man page from the same cli.App the
// binary runs. Usage: go run ./cmd/varta-beat/internal/genman > man/varta-beat.1
package main
