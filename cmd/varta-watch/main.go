package main

import (
	"os"

	"github.com/varta-go/varta/cmd/varta-watch/internal/app"
)

func main() { os.Exit(app.Run(os.Args)) }
