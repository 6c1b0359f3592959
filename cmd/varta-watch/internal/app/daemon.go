package app

import (
	"context"
	"os/signal"
	"syscall"

	"github.com/varta-go/varta/cmd/varta-watch/internal/observer"
)

// runDaemon starts the observer and runs it until SIGINT/SIGTERM.
func runDaemon(parent context.Context, o observer.Options) error {
	ctx, stop := signal.NotifyContext(parent, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	obs, err := observer.Start(o)
	if err != nil {
		return err
	}
	return obs.Run(ctx)
}
