// Command varta-watch: see man/varta-watch.8.
package main

import (
	"os"

	"github.com/varta-go/varta/cmd/varta-watch/internal/app"
)

func main() { os.Exit(app.Run(os.Args)) }
