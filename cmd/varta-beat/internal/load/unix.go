package load

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/varta-go/varta/pkg/agent"
	"github.com/varta-go/varta/pkg/vlp"
)

// ChildOptions configure one child agent process.
type ChildOptions struct {
	SocketPath string
	Rate       float64
	Duration   time.Duration
	// Phase delays the first beat so the children's beats spread over the
	// interval instead of arriving in bursts.
	Phase time.Duration
}

// ChildArgs renders o as the flags of the hidden child command.
func ChildArgs(o ChildOptions) []string {
	return []string{
		"--socket", o.SocketPath,
		"--rate", strconv.FormatFloat(o.Rate, 'g', -1, 64),
		"--duration", o.Duration.String(),
		"--phase", o.Phase.String(),
	}
}

// RunChild is the body of one child agent: it beats over a real Unix socket
// agent for o.Duration and writes one result line to out. It starts no
// goroutine and allocates nothing per beat, so the process stays small.
func RunChild(o ChildOptions, out io.Writer) error {
	a, err := agent.Connect(agent.Options{SocketPath: o.SocketPath, ReconnectAfter: 3})
	if err != nil {
		return err
	}
	defer a.Close()
	start := time.Now()
	end := start.Add(o.Duration)
	step := interval(o.Rate)
	for next := start.Add(o.Phase); next.Before(end); next = next.Add(step) {
		time.Sleep(time.Until(next))
		a.Beat(vlp.StatusOk, 0)
	}
	_, err = fmt.Fprintf(out, "%s\n", formatChildLine(a.Stats(), time.Since(start)))
	return err
}

// The child's result line:
// "vload sent N dropped d1 d2 d3 d4 failed F elapsed_ns E".
func formatChildLine(s agent.Stats, elapsed time.Duration) string {
	line := "vload sent " + strconv.FormatUint(s.Sent, 10) + " dropped"
	for i := agent.DropReason(1); i < agent.NumDropReasons; i++ {
		line += " " + strconv.FormatUint(s.Dropped[i], 10)
	}
	return line + " failed " + strconv.FormatUint(s.Failed, 10) +
		" elapsed_ns " + strconv.FormatInt(int64(elapsed), 10)
}

// parseChildLine adds one child's line to r; the child's rate is measured
// over its own sending time, at least duration.
func parseChildLine(line string, duration time.Duration, r *Report) bool {
	var sent, failed uint64
	var elapsed int64
	var d [agent.NumDropReasons]uint64
	n, err := fmt.Sscanf(line, "vload sent %d dropped %d %d %d %d failed %d elapsed_ns %d",
		&sent, &d[1], &d[2], &d[3], &d[4], &failed, &elapsed)
	if err != nil || n != 7 {
		return false
	}
	r.Sent += sent
	r.Failed += failed
	for i := range d {
		r.Dropped[i] += d[i]
	}
	r.AchievedRate += rateOver(sent, time.Duration(elapsed), duration)
	return true
}

func runUnix(ctx context.Context, o Options) (Report, error) {
	rep := Report{Transport: "unix " + o.Target.SocketPath, Agents: o.Agents, Rate: o.Rate, Duration: o.Duration}
	start := time.Now()
	pr, pw, err := os.Pipe()
	if err != nil {
		return rep, fmt.Errorf("load: result pipe: %w", err)
	}
	defer pr.Close()
	type tally struct {
		r Report
		n int
	}
	results := make(chan tally, 1)
	go func() {
		var t tally
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if parseChildLine(sc.Text(), o.Duration, &t.r) {
				t.n++
			}
		}
		results <- t
	}()

	step := interval(o.Rate)
	cmds := make([]*exec.Cmd, 0, o.Agents)
	var startErr error
	for i := 0; i < o.Agents; i++ {
		co := ChildOptions{
			SocketPath: o.Target.SocketPath,
			Rate:       o.Rate,
			Duration:   o.Duration,
			Phase:      time.Duration(int64(step) * int64(i) / int64(o.Agents)),
		}
		argv := append(append([]string(nil), o.ChildCommand...), ChildArgs(co)...)
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = o.ChildEnv
		cmd.Stdout = pw
		cmd.Stderr = o.ChildStderr
		if err := cmd.Start(); err != nil {
			startErr = fmt.Errorf("load: start child %d: %w", i, err)
			break
		}
		cmds = append(cmds, cmd)
		if ctx.Err() != nil {
			break
		}
	}
	pw.Close()

	stopped := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			for _, c := range cmds {
				_ = c.Process.Signal(syscall.SIGTERM)
			}
		case <-stopped:
		}
	}()
	waitErrs := 0
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			waitErrs++
		}
		if ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage); ok && ru != nil {
			rep.ChildRSS = append(rep.ChildRSS, maxRSSBytes(int64(ru.Maxrss)))
		}
	}
	close(stopped)
	t := <-results
	rep.Sent, rep.Dropped, rep.Failed, rep.AchievedRate = t.r.Sent, t.r.Dropped, t.r.Failed, t.r.AchievedRate
	rep.ChildErrors = max(waitErrs, len(cmds)-t.n)
	rep.Elapsed = time.Since(start)
	return rep, startErr
}
