package observer

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/events"
	"github.com/varta-go/varta/cmd/varta-watch/internal/state"
	"github.com/varta-go/varta/cmd/varta-watch/internal/tracker"
	"github.com/varta-go/varta/pkg/vlp"
	"github.com/varta-go/varta/pkg/vlp/secure"
)

// persist is the running state-directory machinery.
type persist struct {
	dir      *state.Dir
	bootID   string
	interval time.Duration
	lastSave time.Time
	// jobs hands a snapshot to the writer goroutine; idle is closed by it
	// when it exits.
	jobs chan saveJob
	idle chan struct{}

	// resubmit holds re-adopted stalled agents whose recovery is decided
	// once the restart grace is over (at stall clock ns until).
	resubmit []tracker.Stall
	until    int64

	saved      []tracker.Saved
	lastErrLog time.Time
}

// saveJob is a snapshot taken on the control loop; the writer goroutine
// encodes and writes it.
type saveJob struct {
	agents *state.Agents
	marks  []secure.SenderMark
	replay bool // a secure listener runs: write its marks
}

// stateFileLimit is the largest state file read for n records.
func stateFileLimit(n int) int64 { return int64(n+8) * state.MaxLine }

// openState opens the state directory (its problems are runtime errors).
func (o *Observer) openState() error {
	if o.opts.StateDir == "" {
		return nil
	}
	d, err := state.OpenDir(o.opts.StateDir)
	if err != nil {
		return fmt.Errorf("--state-dir: %w", err)
	}
	iv := o.opts.StateSaveInterval
	if iv <= 0 {
		iv = DefaultStateSaveInterval
	}
	o.st = &persist{dir: d, bootID: state.ReadBootID(), interval: iv,
		jobs: make(chan saveJob, 1), idle: make(chan struct{})}
	go o.stateWriter()
	o.closeFns = append(o.closeFns, func() {
		if o.st.jobs != nil {
			close(o.st.jobs)
			<-o.st.idle
			o.st.jobs = nil
		}
	})
	return nil
}

// refused logs and counts a state file the daemon will not use.
func (o *Observer) refused(name string, err error) {
	o.c.StateLoadFailures.Add(1)
	o.log.Warn("state file refused; starting without it", "file", o.st.dir.File(name), "err", err)
}

// restoreState loads the state files, at the end of Start (no receiver
// runs yet). Nothing in them can stop the daemon from starting.
func (o *Observer) restoreState() {
	if o.st == nil {
		return
	}
	o.restoreReplay()
	o.restoreAgents()
}

func (o *Observer) restoreReplay() {
	guard := o.pipe.ReplayGuard()
	if guard == nil || o.opts.UDP == nil {
		return
	}
	capacity := secure.DefaultReplayCapacity // the guard's (ingest builds it with the defaults)
	data, err := o.st.dir.Read(state.ReplayFile, stateFileLimit(capacity))
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		o.refused(state.ReplayFile, err)
		return
	}
	r, err := state.ParseReplay(data, capacity)
	if err != nil {
		o.refused(state.ReplayFile, fmt.Errorf("%s: %w", o.st.dir.File(state.ReplayFile), err))
		return
	}
	n := guard.Restore(time.Now(), r.Marks)
	o.c.StateReplayRestored.Add(uint64(n))
	o.log.Info("replay marks restored", "senders", n, "saved", time.Unix(0, r.Saved).UTC().Format(time.RFC3339))
}

func (o *Observer) restoreAgents() {
	data, err := o.st.dir.Read(state.AgentsFile, stateFileLimit(o.opts.TrackerCapacity))
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		o.refused(state.AgentsFile, err)
		return
	}
	a, err := state.ParseAgents(data, o.opts.TrackerCapacity)
	if err != nil {
		o.refused(state.AgentsFile, fmt.Errorf("%s: %w", o.st.dir.File(state.AgentsFile), err))
		return
	}
	clk := o.clk.Now()
	sameBoot := a.BootID != "" && a.BootID == o.st.bootID
	type spawn struct {
		pid     uint32
		gen, at uint64
	}
	var (
		saved     []tracker.Saved
		spawns    []spawn
		recovered = map[uint32]bool{}
		discarded int
	)
	for _, g := range a.Agents {
		if g.Origin == vlp.OriginKernelAttested {
			if !sameBoot || o.resolver == nil {
				discarded++
				continue
			}
			id, err := o.resolver.Identity(g.Pid)
			if err != nil || id.Generation != g.StartTime || id.NSInode != g.NSInode {
				discarded++ // gone, or the pid now names another process
				continue
			}
		}
		// Silence is what was seen before the save; the time no daemon
		// ran does not count (beats sent then were lost), and every live
		// agent gets one threshold of grace below.
		silence := max(a.Saved-g.LastBeat, 0)
		saved = append(saved, tracker.Saved{
			Pid: g.Pid, Origin: g.Origin, Generation: g.StartTime, NSInode: g.NSInode,
			LastSeen: clk - silence, LastNonce: g.Nonce, HasNonce: g.HasNonce,
			LastTerminalTs: g.TerminalTs, HasTerminal: g.HasTerminal,
			Stalled: g.Stalled, CrossNamespace: g.CrossNS, Stalls: g.Stalls, Beats: g.Beats,
		})
		if g.HasRecovered {
			ago := max(a.Saved-g.Recovered, 0)
			spawns = append(spawns, spawn{g.Pid, g.StartTime, uint64(max(clk-ago, 0))})
			// A recovery already ran for this stall: it is not run again
			// just because the daemon restarted.
			recovered[g.Pid] = g.Stalled && g.Recovered >= g.LastBeat
		}
	}
	pids, err := o.tr.Adopt(saved, clk)
	if err != nil {
		o.refused(state.AgentsFile, err)
		return
	}
	discarded += len(saved) - len(pids)
	o.c.StateAgentsRestored.Add(uint64(len(pids)))
	o.c.StateAgentsDiscarded.Add(uint64(discarded))
	if o.rec != nil {
		slices.SortFunc(spawns, func(x, y spawn) int { return int(min(max(int64(x.at)-int64(y.at), -1), 1)) })
		for _, s := range spawns {
			o.rec.RestoreSpawn(s.pid, s.gen, s.at)
		}
	}
	grace := clk + int64(o.opts.Threshold)
	o.tr.Grace(grace)
	o.st.until = grace
	stalled := 0
	for _, pid := range pids {
		snap, ok := o.tr.Lookup(pid)
		if !ok || !snap.Stalled {
			continue
		}
		stalled++
		o.c.StallsSurfaced.Add(1) // reported again, like its events line
		if o.exp != nil {
			o.exp.Emit(events.Event{Kind: events.KindStall, Ns: uint64(clk), Pid: pid, Nonce: snap.LastNonce})
		}
		if !recovered[pid] {
			o.st.resubmit = append(o.st.resubmit, tracker.Stall{
				Pid: pid, Nonce: snap.LastNonce, Generation: snap.Generation, Origin: snap.Origin,
				CrossNamespace: snap.CrossNamespace, Surfaced: clk,
			})
		}
	}
	o.log.Info("agents re-adopted", "adopted", len(pids), "stalled", stalled, "discarded", discarded,
		"saved", time.Unix(0, a.Saved).UTC().Format(time.RFC3339))
}

// stateTick runs in housekeeping: it decides the recovery of re-adopted
// stalled agents once the restart grace is over, and saves the state
// every interval.
func (o *Observer) stateTick() {
	if o.st == nil {
		return
	}
	if len(o.st.resubmit) > 0 && o.clk.Now() >= o.st.until {
		// The verifier sees an agent that beat during the grace as resumed.
		var due []tracker.Stall
		for _, s := range o.st.resubmit {
			if snap, ok := o.tr.Lookup(s.Pid); ok && snap.Stalled && snap.Generation == s.Generation {
				s.Surfaced = o.clk.Now()
				due = append(due, s)
			}
		}
		o.st.resubmit = nil
		o.afterStalls(due)
	}
	if now := time.Now(); now.Sub(o.st.lastSave) >= o.st.interval {
		o.st.lastSave = now
		select {
		case o.st.jobs <- o.snapshotState():
		default: // the writer is still busy with the previous one
		}
	}
}

// snapshotState copies the current state (control loop only; the
// encoding and the write happen on the writer goroutine).
func (o *Observer) snapshotState() saveJob {
	st := o.st
	wall, clk := time.Now().UnixNano(), o.clk.Now()
	st.saved = o.tr.Save(st.saved[:0])
	a := state.Agents{Saved: wall, BootID: st.bootID, Agents: make([]state.Agent, 0, len(st.saved))}
	for _, s := range st.saved {
		g := state.Agent{
			Pid: s.Pid, Origin: s.Origin, LastBeat: wall - (clk - s.LastSeen),
			Nonce: s.LastNonce, HasNonce: s.HasNonce, TerminalTs: s.LastTerminalTs, HasTerminal: s.HasTerminal,
			Stalled: s.Stalled, CrossNS: s.CrossNamespace, Stalls: s.Stalls, Beats: s.Beats,
		}
		if s.Origin == vlp.OriginKernelAttested {
			g.StartTime, g.NSInode = s.Generation, s.NSInode
			if g.StartTime == 0 || g.NSInode == 0 {
				continue // identity unknown: cannot be re-adopted safely
			}
		}
		if o.rec != nil {
			if gen, at, ok := o.rec.LastSpawn(s.Pid); ok && (gen == 0 || gen == s.Generation) {
				g.Recovered, g.HasRecovered = wall-(clk-int64(at)), true
			}
		}
		a.Agents = append(a.Agents, g)
	}
	job := saveJob{agents: &a}
	if guard := o.pipe.ReplayGuard(); guard != nil {
		job.marks, job.replay = guard.Marks(nil), true
	}
	return job
}

// stateWriter writes snapshots off the control loop, so a slow disk never
// delays stall detection.
func (o *Observer) stateWriter() {
	defer close(o.st.idle)
	for job := range o.st.jobs {
		o.writeState(job)
	}
}

func (o *Observer) writeState(job saveJob) {
	write := func(name string, data []byte) {
		if err := o.st.dir.Write(name, data); err != nil {
			o.c.StateSaveFailures.Add(1)
			if time.Since(o.st.lastErrLog) > 10*time.Second {
				o.st.lastErrLog = time.Now()
				o.log.Warn("state file not saved; the previous one stays", "err", err)
			}
			return
		}
		o.c.StateSaves.Add(1)
	}
	write(state.AgentsFile, state.EncodeAgents(job.agents))
	if job.replay {
		write(state.ReplayFile, state.EncodeReplay(job.agents.Saved, job.marks))
	}
}

// saveStateFinal writes the state one last time at shutdown, after the
// receivers have stopped and recovery has finished.
func (o *Observer) saveStateFinal() {
	if o.st == nil {
		return
	}
	job := o.snapshotState()
	close(o.st.jobs)
	<-o.st.idle
	o.st.jobs = nil
	o.writeState(job)
	o.log.Info("state saved", "dir", o.st.dir.Path())
}
