// Package control is varta-watch's operator interface: an HTTP/JSON server
// on a Unix stream socket (--control-socket, mode 0600 by default) and the
// client the varta-watch subcommands agents, services, snooze, resume and
// reload use to talk to it.
//
// Every request is authorized by the peer's uid from SO_PEERCRED: root,
// the daemon's own uid and --control-allow-uid may call it, anyone else
// gets 403 (counted). Requests are bounded in size, concurrent connections
// and time, and the server only reads snapshots the daemon publishes, so a
// slow or hostile client never delays ingest.
//
// The daemon plugs in through Options: Agents returns a snapshot of the
// tracked agents, Reload does what SIGHUP does, Audit writes a control
// record; snoozes live in a snooze.Store the server changes directly. A
// ServiceNamer names the service of an agent (CommNamer, the comm of a
// local process or pid:N, until agents carry a resolved identity).
// docs/control.md describes the endpoints and the commands.
package control
