package app

import (
	"errors"

	"github.com/varta-go/varta/pkg/agent"
)

// loadKeys reads the secure UDP key files into o.
func loadKeys(o *agent.Options, keyFile, masterFile string) error {
	if keyFile == "" && masterFile == "" {
		return nil
	}
	return errors.New("secure UDP is not available in this build yet")
}
