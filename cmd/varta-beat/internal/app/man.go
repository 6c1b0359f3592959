package app

import (
	"github.com/varta-go/varta/pkg/manpage"
)

// ManPage renders the man page of the App: the name, summary, description,
// options and commands come from the CLI definitions (pkg/manpage.FromApp), the
// other sections are written here.
func ManPage() (string, error) {
	return manpage.RenderApp(New(), manpage.AppPage{Section: 1, Sections: beatSections})
}

var beatSections = []manpage.Section{
	{Title: "Exit status", Blocks: []manpage.Block{
		manpage.Item("0", "success; run stopped by SIGINT or SIGTERM after sending its terminal frame."),
		manpage.Item("1", "failure: no observer at start (run), a key file that cannot be read, a command that cannot be started (exec)."),
		manpage.Item("2", "usage error: an unknown flag or command, a bad value."),
		manpage.Item("3", "the beat was dropped (once, terminal): no observer listening, or its queue was full."),
		manpage.Item("exec", "the command's own exit status, or 128+N when signal N killed it."),
	}},
	{Title: "Signals", Blocks: []manpage.Block{
		manpage.Item("SIGINT, SIGTERM", "run sends one terminal (dying-gasp) frame and exits 0; the observer then reports the agent as stalled after its threshold, with a critical beat just before."),
		manpage.Item("SIGINT, SIGTERM, SIGHUP, SIGQUIT", "exec forwards them to the command and keeps beating until it exits."),
	}},
	{Title: "Environment", Blocks: []manpage.Block{
		manpage.Item("VARTA_SOCKET", "the observer's socket when --socket is not given; default /run/varta/varta.sock."),
	}},
	{Title: "Files", Blocks: []manpage.Block{
		manpage.Item("/run/varta/varta.sock", "the conventional socket of varta-watch(8)."),
		manpage.Item("/etc/varta/beat.key", "a conventional place for the --key-file of secure UDP: 64 hex digits, mode 0600, written by varta-beat keygen."),
	}},
	{Title: "Examples", Blocks: []manpage.Block{
		manpage.P("Beat every 500 ms until Ctrl-C, printing every beat:"),
		manpage.Example("varta-beat run --socket ./varta.sock --verbose"),
		manpage.P("Watch a batch job: it must print something at least every 30 s, else the beats stop and varta-watch reports a stall (about 30 s plus its --threshold-ms after the last line):"),
		manpage.Example("varta-beat exec --require-output-within 30s -- /usr/local/bin/nightly-export --verbose"),
		manpage.P("One beat from a shell script, degraded, with a payload; exit status 3 means the observer was not there:"),
		manpage.Example("varta-beat once --status degraded --payload 42 || echo \"dropped: $?\""),
		manpage.P("Secure UDP to a remote observer with a fresh key:"),
		manpage.Example("varta-beat keygen /etc/varta/beat.key\nvarta-beat run --udp 10.0.0.5:9000 --key-file /etc/varta/beat.key"),
	}},
	{Title: "See also", Blocks: []manpage.Block{
		manpage.P("varta-watch(8), varta-audit(1). In the source tree: docs/guide.md (concepts and a first day), docs/agent.md; the Go library is github.com/varta-go/varta/pkg/agent (go doc)."),
	}},
}
