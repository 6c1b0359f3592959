package app

import (
	"github.com/urfave/cli/v2"

	"github.com/varta-go/varta/cmd/varta-watch/internal/observer"
)

// featureOptions fills the options of the optional subsystems (metrics,
// UDP, recovery, audit).
func featureOptions(c *cli.Context, o *observer.Options) error {
	return nil
}
