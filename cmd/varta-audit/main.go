// Command varta-audit: see man/varta-audit.1.
package main

import (
	"os"

	"github.com/varta-go/varta/cmd/varta-audit/internal/app"
)

func main() { os.Exit(app.Run(os.Args)) }
