package observer

import "github.com/varta-go/varta/cmd/varta-watch/internal/listener"

func unixOpts(path string) listener.UnixOptions {
	return listener.UnixOptions{Path: path, Mode: 0o600}
}
