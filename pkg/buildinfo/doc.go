// Package buildinfo holds the version string of the suite, set at link time
// with -ldflags "-X github.com/varta-go/varta/pkg/buildinfo.Version=...".
package buildinfo
