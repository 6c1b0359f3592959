// Package agent is the Go library an application embeds to send VLP v0.2
// heartbeats ("beats") to a varta observer.
//
// It owns the sender side of every transport: connecting (Unix datagram
// socket, plain UDP, secure UDP with a shared or a master key), building each
// frame (the sender's pid checked at every beat, timestamp on the monotonic clock since
// connect, commit-on-success nonces and secure IV counters), classifying send
// errors into drop reasons, reconnecting after a run of drops, terminal
// (dying-gasp) frames and the helpers that send one on a signal or a panic,
// and the counters that describe what happened.
//
// Beat never blocks, never allocates and is safe for concurrent use. The
// package must not read os.Args, must not read the environment except in
// DefaultSocket (which the caller calls explicitly), must not log, must not
// keep global mutable state and must not depend on anything outside the
// standard library, golang.org/x/sys and golang.org/x/crypto. It does not
// decide policy for the application: a drop is reported, never retried in a
// loop, and a connect failure is returned to the caller, who decides whether
// to retry — unless the caller asked for Options.Lazy, with which a missing
// observer is not an error: the Agent starts unconnected, counts its beats
// as NoObserver drops and connects on its own, at most once per
// Options.LazyRetry, from inside Beat.
//
// Beat from the loop that does the application's work, not from a separate
// ticker goroutine: a beat must mean that the work makes progress, and a
// ticker goroutine keeps beating while the work loop is deadlocked. A
// service's whole integration (the package example, runnable under go
// test, has the same in full):
//
//	a, err := agent.Connect(agent.Options{
//		SocketPath:     agent.DefaultSocket(), // $VARTA_SOCKET, else /run/varta/varta.sock
//		ReconnectAfter: 3,
//		Lazy:           true, // the service may start before the observer
//	})
//	if err != nil {
//		log.Fatal(err) // with Lazy, only invalid options fail
//	}
//	defer a.Close()
//	defer a.TerminalOnPanic()    // the dying gasp on a panic of main
//	defer a.TerminalOnSignal()() // and on SIGTERM/SIGINT
//
//	wake := time.NewTicker(500 * time.Millisecond) // wakes an idle loop; never beats by itself
//	next := time.Now()
//	for {
//		select {
//		case job := <-jobs: // the service's work
//			handle(job)
//		case <-wake.C:
//		}
//		if now := time.Now(); !now.Before(next) { // at most one beat per 500 ms
//			a.Beat(vlp.StatusOk, 0) // a drop is normal; only sustained silence is a stall
//			next = now.Add(500 * time.Millisecond)
//		}
//	}
//
// The observer reports a stall when no beat arrived for its --threshold-ms
// (choose at least four beat intervals); docs/guide.md explains the choice.
package agent
