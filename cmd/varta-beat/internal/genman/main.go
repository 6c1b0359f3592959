package main

import (
	"github.com/varta-go/varta/cmd/varta-beat/internal/app"
	"github.com/varta-go/varta/pkg/manpage"
)

func main() { manpage.Main(app.ManPage) }
