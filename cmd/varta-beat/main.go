package main

import (
	"os"

	"github.com/varta-go/varta/cmd/varta-beat/internal/app"
)

func main() { os.Exit(app.Run(os.Args)) }
