package app

import (
	"github.com/varta-go/varta/pkg/manpage"
)

// ManPage renders the man page of the App: the name, summary, description,
// options and commands come from the CLI definitions (pkg/manpage.FromApp), the
// other sections are written here.
func ManPage() (string, error) {
	return manpage.RenderApp(New(), manpage.AppPage{Section: 1, Sections: auditSections})
}

var auditSections = []manpage.Section{
	{Title: "Exit status", Blocks: []manpage.Block{
		manpage.Item("0", "the log is intact (seq gaps and a torn tail are warnings unless --strict); the other commands succeeded."),
		manpage.Item("1", "verification failed (a broken chain, a malformed record, a missing anchor), head found no chained record, or rotate refused (the daemon holds the file)."),
		manpage.Item("2", "usage or I/O error: a missing PATH, an unknown flag, a file that cannot be read."),
	}},
	{Title: "Signals", Blocks: []manpage.Block{
		manpage.P("None are handled: SIGINT and SIGTERM end the program at once. Every command except rotate only reads the log."),
	}},
	{Title: "Files", Blocks: []manpage.Block{
		manpage.Item("/var/lib/varta/audit.log", "the conventional audit log of varta-watch(8) (--recovery-audit-file); PATH.1 ... PATH.5 are its rotated generations, oldest last, read together with it."),
	}},
	{Title: "Examples", Blocks: []manpage.Block{
		manpage.P("Verify the log and its generations, then seal the current head outside the machine:"),
		manpage.Example("varta-audit verify /var/lib/varta/audit.log\nvarta-audit head /var/lib/varta/audit.log > /mnt/worm/varta-head.txt"),
		manpage.P("Later, prove the log still contains that head:"),
		manpage.Example("varta-audit verify --anchor-file /mnt/worm/varta-head.txt /var/lib/varta/audit.log"),
		manpage.P("What happened to agent 4242 in the last hour, and a per-agent overview:"),
		manpage.Example("varta-audit show --pid 4242 --since 1h /var/lib/varta/audit.log\nvarta-audit summarize /var/lib/varta/audit.log"),
		manpage.P("Refusals only, as JSON for a script:"),
		manpage.Example("varta-audit show --kind refused --format json /var/lib/varta/audit.log"),
	}},
	{Title: "See also", Blocks: []manpage.Block{
		manpage.P("varta-watch(8), varta-beat(1). In the source tree: docs/audit.md (the file format, rotation and what each record means), docs/guide.md."),
	}},
}
