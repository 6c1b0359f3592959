package metrics_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind
// (servers, connections, Prometheus child watchers).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
