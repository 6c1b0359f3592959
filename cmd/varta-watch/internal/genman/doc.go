// Command genman writes the varta-watch man page from the same cli.App the
// binary runs. Usage: go run ./cmd/varta-watch/internal/genman > man/varta-watch.8
package main
