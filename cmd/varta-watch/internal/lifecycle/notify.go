package lifecycle

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"time"
)

// sendTimeout bounds one notification when the receiver's queue is full.
const sendTimeout = time.Second

// ErrBadNotifySocket reports a $NOTIFY_SOCKET value that is neither an
// absolute path nor (on Linux) an abstract "@name".
var ErrBadNotifySocket = errors.New("notify socket must be an absolute path or an abstract @name")

// Notifier sends sd_notify(3) datagrams to the service manager. The zero
// value and a Notifier for an empty socket do nothing. It is safe for
// concurrent use.
type Notifier struct {
	socket string
}

// NewNotifier returns a Notifier for socket, the value of $NOTIFY_SOCKET
// as read by the caller: an absolute path, or "@name" for a Linux abstract
// socket. An empty socket gives a Notifier whose methods do nothing.
func NewNotifier(socket string) *Notifier { return &Notifier{socket: socket} }

// Enabled reports whether notifications are sent anywhere.
func (n *Notifier) Enabled() bool { return n != nil && n.socket != "" }

// Ready sends READY=1.
func (n *Notifier) Ready() error { return n.Notify("READY=1") }

// Stopping sends STOPPING=1.
func (n *Notifier) Stopping() error { return n.Notify("STOPPING=1") }

// Watchdog sends WATCHDOG=1.
func (n *Notifier) Watchdog() error { return n.Notify("WATCHDOG=1") }

// Status sends STATUS=<text>; line breaks in text become spaces because
// they would end the assignment.
func (n *Notifier) Status(text string) error {
	return n.Notify("STATUS=" + strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(text))
}

// Notify sends state (one or more newline-separated assignments) as one
// datagram. Each call uses a fresh socket, as sd_notify does, so a service
// manager that re-created its socket is still reached.
func (n *Notifier) Notify(state string) error {
	if !n.Enabled() {
		return nil
	}
	s := n.socket
	switch {
	case strings.HasPrefix(s, "/"):
	case strings.HasPrefix(s, "@") && len(s) > 1 && runtime.GOOS == "linux":
		// The net package maps a leading '@' to the abstract namespace.
	default:
		return fmt.Errorf("sd_notify %q: %w", s, ErrBadNotifySocket)
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: s, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify %q: %w", s, err)
	}
	defer conn.Close()
	// A service manager that does not read its socket must not wedge the
	// caller (the watchdog pinger, shutdown): give up after sendTimeout.
	if err := conn.SetWriteDeadline(time.Now().Add(sendTimeout)); err != nil {
		return fmt.Errorf("sd_notify %q: %w", s, err)
	}
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify %q: send %q: %w", s, firstLine(state), err)
	}
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
