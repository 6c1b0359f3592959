// Command genman writes the varta-audit man page from the same cli.App the
// binary runs. Usage: go run ./cmd/varta-audit/internal/genman > man/varta-audit.1
package main

import (
	"fmt"
	"os"

	"github.com/varta-go/varta/cmd/varta-audit/internal/app"
)

func main() {
	page, err := app.ManPage()
	if err != nil {
		fmt.Fprintln(os.Stderr, "genman:", err)
		os.Exit(1)
	}
	fmt.Print(page)
}
