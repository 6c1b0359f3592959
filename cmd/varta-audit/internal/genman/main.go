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
