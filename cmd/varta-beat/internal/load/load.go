package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"time"

	"github.com/varta-go/varta/pkg/agent"
)

// ErrOptions is wrapped by every validation error.
var ErrOptions = errors.New("invalid load options")

// Options configure Run.
type Options struct {
	// Agents is the number of simulated agents.
	Agents int
	// Rate is the beat rate of each agent, in beats per second.
	Rate float64
	// Duration of the run.
	Duration time.Duration
	// Target is the observer (SocketPath or UDPAddr, and keys for secure
	// UDP).
	Target agent.Options

	// ChildCommand is the argv prefix that runs RunChild in a new process
	// (this binary and its hidden subcommand); Unix socket only. Run
	// appends the child's flags (see ChildArgs).
	ChildCommand []string
	// ChildEnv is the children's environment (nil inherits).
	ChildEnv []string
	// ChildStderr receives the children's error output (nil discards).
	ChildStderr io.Writer

	// PidMax bounds the synthetic pids over UDP: they are drawn from
	// [2, PidMax).
	PidMax int
	// Seed for the synthetic pid draw (0 = time-based).
	Seed uint64
}

func (o *Options) validate() error {
	switch {
	case o.Agents <= 0:
		return fmt.Errorf("%w: --agents must be at least 1", ErrOptions)
	case !(o.Rate > 0) || math.IsInf(o.Rate, 0):
		return fmt.Errorf("%w: --rate must be a positive number of beats per second per agent", ErrOptions)
	case o.Duration <= 0:
		return fmt.Errorf("%w: --duration must be positive", ErrOptions)
	case o.Target.SocketPath != "" && len(o.ChildCommand) == 0:
		return fmt.Errorf("%w: no child command for Unix socket agents", ErrOptions)
	case o.Target.UDPAddr != "" && o.Agents > o.PidMax-2:
		return fmt.Errorf("%w: %d agents need %d distinct pids but [2, pid_max=%d) has only %d", ErrOptions, o.Agents, o.Agents, o.PidMax, o.PidMax-2)
	}
	return nil
}

// Report is the outcome of a run.
type Report struct {
	Transport string
	Agents    int
	Rate      float64
	Duration  time.Duration
	// Elapsed is the wall time of the whole run (including starting the
	// children).
	Elapsed time.Duration
	Sent    uint64
	Dropped [agent.NumDropReasons]uint64
	Failed  uint64
	// Rate achieved: beats the kernel accepted per second, summed over the
	// agents, each measured over its own sending time (never shorter than
	// Duration, so catching up after a stall does not inflate it).
	AchievedRate float64
	// MaxLag is how late the latest beat left compared with its schedule
	// (UDP only; each child process keeps its own schedule).
	MaxLag time.Duration
	// PidRange describes the synthetic pids (UDP only).
	PidRange string
	// ChildRSS holds each child's peak resident set in bytes (Unix socket
	// only), as reported by the kernel at wait.
	ChildRSS []int64
	// ChildErrors counts children that exited unsuccessfully or did not
	// report.
	ChildErrors int
}

// TotalDropped sums the drops over all reasons.
func (r Report) TotalDropped() uint64 {
	var n uint64
	for _, d := range r.Dropped {
		n += d
	}
	return n
}

// TargetRate is the aggregate beat rate asked for.
func (r Report) TargetRate() float64 { return float64(r.Agents) * r.Rate }

// rateOver is n beats per second over the longer of d and min.
func rateOver(n uint64, d, min time.Duration) float64 {
	d = max(d, min)
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// WriteText writes the report as aligned "key value" lines.
func (r Report) WriteText(w io.Writer) error {
	var drops string
	for i := agent.DropReason(1); i < agent.NumDropReasons; i++ {
		if i > 1 {
			drops += ", "
		}
		drops += fmt.Sprintf("%v %d", i, r.Dropped[i])
	}
	pct := 0.0
	if r.TargetRate() > 0 {
		pct = 100 * r.AchievedRate / r.TargetRate()
	}
	lines := [][2]string{
		{"transport", r.Transport},
		{"agents", fmt.Sprint(r.Agents)},
		{"target rate", fmt.Sprintf("%.1f beats/s (%g per agent)", r.TargetRate(), r.Rate)},
		{"duration", r.Duration.String()},
		{"elapsed", r.Elapsed.Round(time.Millisecond).String()},
		{"sent", fmt.Sprint(r.Sent)},
		{"dropped", fmt.Sprintf("%d (%s)", r.TotalDropped(), drops)},
		{"failed", fmt.Sprint(r.Failed)},
		{"achieved rate", fmt.Sprintf("%.1f beats/s (%.1f%% of target)", r.AchievedRate, pct)},
	}
	if r.MaxLag > 0 {
		lines = append(lines, [2]string{"max lag", r.MaxLag.Round(time.Microsecond).String()})
	}
	if r.PidRange != "" {
		lines = append(lines, [2]string{"pids", r.PidRange})
	}
	if len(r.ChildRSS) > 0 {
		var sum, max int64
		for _, v := range r.ChildRSS {
			sum += v
			if v > max {
				max = v
			}
		}
		avg := float64(sum) / float64(len(r.ChildRSS))
		lines = append(lines, [2]string{"child peak rss",
			fmt.Sprintf("avg %.1f MiB, max %.1f MiB, total %.1f MiB over %d children", mib(avg), mib(float64(max)), mib(float64(sum)), len(r.ChildRSS))})
	}
	if r.ChildErrors > 0 {
		lines = append(lines, [2]string{"child errors", fmt.Sprint(r.ChildErrors)})
	}
	for _, l := range lines {
		if _, err := fmt.Fprintf(w, "%-15s%s\n", l[0], l[1]); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	return nil
}

func mib(b float64) float64 { return b / (1 << 20) }

// Run generates the load and returns its report. Cancelling ctx stops early.
func Run(ctx context.Context, o Options) (Report, error) {
	if err := o.validate(); err != nil {
		return Report{}, err
	}
	if o.Target.SocketPath != "" {
		return runUnix(ctx, o)
	}
	return runUDP(ctx, o)
}

// interval is the time between two beats of one agent.
func interval(rate float64) time.Duration {
	d := time.Duration(float64(time.Second) / rate)
	if d < time.Microsecond {
		d = time.Microsecond
	}
	return d
}

// maxRSSBytes converts ru_maxrss to bytes (kilobytes on Linux and the BSDs,
// bytes on macOS).
func maxRSSBytes(v int64) int64 {
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		return v
	}
	return v * 1024
}
