package agent_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/varta-go/varta/pkg/agent"
	"github.com/varta-go/varta/pkg/agent/agenttest"
	"github.com/varta-go/varta/pkg/vlp"
)

// The integration a Go service needs, in about 20 lines: connect once at
// start-up (lazily: the service may start before the observer), send the
// dying gasp on SIGTERM/SIGINT and on a panic, and beat from the loop that
// does the work — never from a separate ticker goroutine, which would keep
// beating while the work is deadlocked. A drop is normal (the observer may
// be restarting); only sustained silence is a stall.
func Example() {
	a, err := agent.Connect(agent.Options{
		SocketPath:     agent.DefaultSocket(), // $VARTA_SOCKET, else /run/varta/varta.sock
		ReconnectAfter: 3,
		Lazy:           true, // the service may start before the observer
	})
	if err != nil {
		log.Fatal(err) // with Lazy, only invalid options fail
	}
	defer a.Close()
	defer a.TerminalOnPanic()    // runs before Close: sends the gasp, re-panics
	defer a.TerminalOnSignal()() // and on SIGTERM/SIGINT

	jobs := make(chan string)                      // the service's work
	wake := time.NewTicker(500 * time.Millisecond) // wakes an idle loop; never beats by itself
	defer wake.Stop()
	next := time.Now()
	for {
		select {
		case job := <-jobs: // the service's work
			handle(job)
		case <-wake.C:
		}
		if now := time.Now(); !now.Before(next) { // at most one beat per 500 ms
			a.Beat(vlp.StatusOk, 0) // a drop is normal; only sustained silence is a stall
			next = now.Add(500 * time.Millisecond)
		}
	}
}

func handle(string) {}

// A lazy Agent connects on its own once the observer is up; until then its
// beats are NoObserver drops.
func ExampleConnect_lazy() {
	a, err := agent.Connect(agent.Options{SocketPath: "/nonexistent/varta.sock", Lazy: true})
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	fmt.Println(a.Connected(), a.Beat(vlp.StatusOk, 0))
	// Output: false dropped: NoObserver
}

// The socket an agent uses when it is not told: $VARTA_SOCKET, else
// /run/varta/varta.sock.
func ExampleDefaultSocket() {
	os.Setenv(agent.SocketEnv, "/run/app/varta.sock")
	defer os.Unsetenv(agent.SocketEnv)
	fmt.Println(agent.DefaultSocket())
	// Output: /run/app/varta.sock
}

// Beat against a test receiver, as an application's own tests can do.
func ExampleAgent_Beat() {
	dir, _ := os.MkdirTemp("", "vex")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "obs.sock")
	obs, err := agenttest.ListenUnix(path)
	if err != nil {
		log.Fatal(err)
	}
	defer obs.Close()

	a, err := agent.DialUnix(path)
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	fmt.Println(a.Beat(vlp.StatusDegraded, 42))
	fmt.Println(a.Beat(vlp.StatusStall, 0))

	f, _, _ := obs.RecvFrame(time.Second)
	fmt.Println(f.Nonce, f.Status, f.Payload, f.Pid == uint32(os.Getpid()))
	// Output:
	// sent nonce 1
	// failed: agent: status Stall is observer-only and is never sent
	// 1 degraded 42 true
}

// The dying gasp sent explicitly, e.g. at the end of a graceful shutdown
// that handles SIGTERM itself.
func ExampleAgent_Terminal() {
	dir, _ := os.MkdirTemp("", "vex")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "obs.sock")
	obs, _ := agenttest.ListenUnix(path)
	defer obs.Close()
	a, _ := agent.DialUnix(path)
	defer a.Close()

	a.Terminal()
	f, _, _ := obs.RecvFrame(time.Second)
	fmt.Println(f.IsTerminal(), f.Status, f.Nonce == vlp.NonceTerminal)
	// Output: true critical true
}

// Connecting when no observer is there fails with ErrNoObserver; the caller
// decides whether to retry.
func ExampleConnect_noObserver() {
	_, err := agent.Connect(agent.Options{SocketPath: "/nonexistent/varta.sock"})
	fmt.Println(err)
	// Output: connect to observer socket "/nonexistent/varta.sock": no observer listening: no such file or directory
}
