package observer

import (
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/clock"
	"github.com/varta-go/varta/cmd/varta-watch/internal/events"
	"github.com/varta-go/varta/cmd/varta-watch/internal/listener"
	"github.com/varta-go/varta/cmd/varta-watch/internal/metrics"
	"github.com/varta-go/varta/cmd/varta-watch/internal/policy"
	"github.com/varta-go/varta/cmd/varta-watch/internal/recovery"
	"github.com/varta-go/varta/cmd/varta-watch/internal/tracker"
	"github.com/varta-go/varta/pkg/audit"
)

// Options is the whole daemon configuration, filled by the CLI layer.
// Optional features are nil pointers or zero values when off.
type Options struct {
	Unix listener.UnixOptions
	// Activated are the descriptors passed by the service manager
	// (LISTEN_FDS, systemd socket activation). When set, the beat socket is
	// taken from them instead of bound (listener.OpenUnix), and its file
	// is never removed.
	Activated []*os.File
	AllowUIDs []uint32
	AllowGIDs []uint32

	Threshold       time.Duration
	TrackerCapacity int
	EvictionPolicy  tracker.Policy
	ClockSource     clock.Source
	MaxBeatRate     int
	// GlobalBeatRate and GlobalBeatBurst: frames per second and bucket
	// size; 0 = off.
	GlobalBeatRate  float64
	GlobalBeatBurst float64

	AllowCrossNamespace bool
	StrictNamespace     bool

	// Prom configures the metrics endpoint; nil = none. PromPerPid exports
	// per-pid series.
	Prom       *metrics.ServerOptions
	PromPerPid bool

	// UDP configures the plain or secure UDP listener; nil = none.
	UDP *UDPOptions

	// Export configures the events file; nil = none.
	Export *events.Options

	// Recovery configures the recovery runner, its defaults filled by the
	// CLI layer (the outstanding capacity is --tracker-capacity) or by
	// recovery.New; nil = no recovery unless RecoveryExecFile names the
	// command file (read at start, secret-file rules; its failures are
	// runtime errors).
	Recovery         *recovery.Options
	RecoveryExecFile string
	// PolicyFile is --policy-file ("" = none) and Policy its contents,
	// read by the CLI layer (a bad file is a configuration error); SIGHUP
	// reads PolicyFile again.
	PolicyFile string
	Policy     *policy.Policy
	// RecoveryRetry is --recovery-retry-ms (0 = no retries for agents
	// without a restart budget).
	RecoveryRetry time.Duration
	// PromMaxServices caps the service label values (0 = the default).
	PromMaxServices int

	// Audit configures the audit log; nil = none.
	Audit *audit.Options

	// Control configures the control socket; nil = none.
	Control *ControlOptions
	// StateDir keeps the tracked agents and the secure replay marks across
	// restarts ("" = off); they are rewritten every StateSaveInterval
	// (default DefaultStateSaveInterval) and at shutdown.
	StateDir          string
	StateSaveInterval time.Duration

	HeartbeatFile string
	// SelfWatchdog aborts the daemon when the control loop makes no
	// progress for this long; 0 = off.
	SelfWatchdog time.Duration
	HWWatchdog   string
	// ShutdownAfter stops the daemon cleanly after this long; 0 = never.
	ShutdownAfter time.Duration
	ShutdownGrace time.Duration

	// NotifySocket is $NOTIFY_SOCKET; WatchdogInterval is the WATCHDOG=1
	// period, lifecycle.PingInterval($WATCHDOG_USEC) (a third of it).
	NotifySocket     string
	WatchdogInterval time.Duration

	// TickInterval is the control loop's idle housekeeping period (default
	// DefaultTickInterval); while recovery is busy it ticks at
	// BusyTickInterval or TickInterval, whichever is shorter.
	TickInterval time.Duration

	// ClockJumpThreshold is the forward step of the stall clock between
	// two passes of the control loop, beyond TickInterval, that counts as
	// a clock jump (default clock.JumpThreshold). Only tests change it,
	// through the hidden --test-clock-jump-ms flag, so that a jump does
	// not take seconds to stage.
	ClockJumpThreshold time.Duration

	// DrainInterval is --drain-interval-ms: at low rates the sockets are
	// read at most this often (and always right before a stall is
	// decided) instead of once per datagram; beats keep their kernel
	// arrival times. 0 = read on every readiness (docs/observer.md, "Drain
	// interval").
	DrainInterval time.Duration

	Logger *slog.Logger
	// Stdout receives the bound metrics address.
	Stdout io.Writer
}

// DefaultTickInterval is the control loop's housekeeping period while
// nothing is in flight: heartbeat file, hardware watchdog, liveness sweep,
// replay-table expiry. Stalls do not wait for it; they have their own
// timer. A slow idle tick keeps the daemon's CPU use negligible.
const DefaultTickInterval = time.Second

// DefaultStateSaveInterval is how often the state files are rewritten.
const DefaultStateSaveInterval = 5 * time.Second

// BusyTickInterval is the housekeeping period while recovery children are
// running or stalls wait for a spawn slot: reaping and the per-tick spawn
// budget need a faster beat.
const BusyTickInterval = 100 * time.Millisecond

// ControlOptions configure the control socket (docs/control.md).
type ControlOptions struct {
	Path      string
	Mode      os.FileMode
	AllowUIDs []uint32
	// StateDir holds the snooze state file; "" keeps snoozes in memory.
	StateDir string
}

// LateBound is how long a datagram may wait in a socket queue before the
// daemon concludes it was not reading (stopped or starved) and gives
// every agent one threshold of grace: a quarter of the threshold, at least
// 100 ms, plus the drain interval (a datagram may wait that long by
// design). Beats sent meanwhile may have been refused by a full queue (a
// Unix socket queues about ten datagrams by default), so silence during
// that time is no evidence of a stall.
func LateBound(threshold, drain time.Duration) time.Duration {
	return max(threshold/4, 100*time.Millisecond) + drain
}

// MaxDrainInterval is the largest --drain-interval-ms for a threshold: a
// quarter of the threshold, at most listener.MaxDrainInterval (1 s), so
// that a beat is always read well before the stall it would prevent is
// due, and is in the events file within a quarter of the threshold.
func MaxDrainInterval(threshold time.Duration) time.Duration {
	return min(threshold/4, listener.MaxDrainInterval)
}
