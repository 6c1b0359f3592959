package main

import (
	"github.com/varta-go/varta/cmd/varta-audit/internal/app"
	"github.com/varta-go/varta/pkg/manpage"
)

func main() { manpage.Main(app.ManPage) }
