package recovery

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/cmd/varta-watch/internal/identity"
)

// child is one outstanding recovery child.
type child struct {
	pid      int
	agentPid uint32
	gen      uint64 // generation of the agent process it was spawned for
	startNs  uint64
	deadline uint64         // observer ns; 0 = no timeout
	killed   bool           // the runner sent SIGKILL
	done     bool           // reaped or given up on; no longer in the table
	idx      int            // position in Runner.kids
	nextSame *child         // next child of the same agent pid
	service  string         // the Plan's service, for the complete record
	ident    *identity.Info // the agent's identity at stall time, for the complete record

	outFd, errFd   int // read ends of the capture pipes; -1 = closed
	outLen, errLen int
	truncated      bool

	fwd *forwarder // without --recovery-capture-stdio: output goes to the log
}

// Forwarded output: at most forwardLines lines of one child reach the
// daemon's log, each at most forwardLineMax bytes; the rest are counted in
// one closing line.
const (
	forwardLines   = 50
	forwardLineMax = 1024
)

// forwarder turns a child's stdout and stderr into log lines that name the
// child, the agent and the stream, so that a recovery program's output
// never reaches the daemon's stderr unprefixed.
type forwarder struct {
	log     *slog.Logger // nil: the output is read and dropped
	partial [2][]byte
	shown   int
	hidden  int
}

var streamNames = [2]string{"stdout", "stderr"}

func (f *forwarder) feed(c *child, stream int, data []byte) {
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		chunk := data
		if i >= 0 {
			chunk = data[:i]
		}
		room := forwardLineMax - len(f.partial[stream])
		if len(chunk) > room {
			f.partial[stream] = append(f.partial[stream], chunk[:room]...)
			f.emit(c, stream, "…")
			data = data[room:]
			continue
		}
		f.partial[stream] = append(f.partial[stream], chunk...)
		if i < 0 {
			return
		}
		f.emit(c, stream, "")
		data = data[i+1:]
	}
}

// emit logs the stream's pending line (suffix marks a cut line) and
// empties it.
func (f *forwarder) emit(c *child, stream int, suffix string) {
	line := f.partial[stream]
	f.partial[stream] = line[:0]
	if f.shown >= forwardLines {
		f.hidden++
		return
	}
	f.shown++
	if f.log != nil {
		q := strconv.Quote(string(line)) // control bytes and bad UTF-8 escaped
		f.log.Info("recovery child output", "child", c.pid, "pid", c.agentPid, "stream", streamNames[stream],
			"line", q[1:len(q)-1]+suffix)
	}
}

// flush logs the unterminated last lines and the count of lines not shown.
func (f *forwarder) flush(c *child) {
	for stream := range f.partial {
		if len(f.partial[stream]) > 0 {
			f.emit(c, stream, "")
		}
	}
	if f.hidden > 0 && f.log != nil {
		f.log.Info("recovery child output: lines not shown", "child", c.pid, "pid", c.agentPid, "hidden", f.hidden)
		f.hidden = 0
	}
}

// buildArgv returns the child's argv (program as configured, then every
// argument with each "{pid}" replaced by the decimal pid) and the byte
// length of its space-joined form.
func buildArgv(program string, args []string, pid uint32) (argv []string, templateLen int) {
	ps := strconv.FormatUint(uint64(pid), 10)
	argv = make([]string, 1, 1+len(args))
	argv[0] = program
	templateLen = len(program)
	for _, a := range args {
		s := strings.ReplaceAll(a, "{pid}", ps)
		argv = append(argv, s)
		templateLen += 1 + len(s)
	}
	return argv, templateLen
}

// cloexecPipe returns a pipe whose both ends are close-on-exec, created
// under ForkLock so that no concurrent fork elsewhere in the daemon can
// inherit them. The read end is non-blocking.
func cloexecPipe() (r, w int, err error) {
	var p [2]int
	syscall.ForkLock.RLock()
	err = unix.Pipe(p[:])
	if err == nil {
		unix.CloseOnExec(p[0])
		unix.CloseOnExec(p[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return -1, -1, fmt.Errorf("create capture pipe: %w", err)
	}
	if err := unix.SetNonblock(p[0], true); err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		return -1, -1, fmt.Errorf("make capture pipe non-blocking: %w", err)
	}
	return p[0], p[1], nil
}

// start forks and execs the recovery program for agent pid. The child gets
// stdin from /dev/null, stdout/stderr inherited or the capture pipes, the
// prepared environment, and its own process group (so that SIGKILL to the
// group also reaches its descendants). ForkExec returns once the child
// has exec'd or failed to; a failed exec is reaped by ForkExec itself.
func (r *Runner) start(path string, argv []string) (c *child, err error) {
	devnull, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/null: %w", err)
	}
	defer unix.Close(devnull)

	c = &child{outFd: -1, errFd: -1}
	if !r.opts.CaptureStdio {
		c.fwd = &forwarder{log: r.log}
	}
	files := []uintptr{uintptr(devnull), 1, 2}
	{ // always pipes: counted (--recovery-capture-stdio) or forwarded to the log
		var outW, errW int
		if c.outFd, outW, err = cloexecPipe(); err != nil {
			return nil, err
		}
		defer unix.Close(outW)
		if c.errFd, errW, err = cloexecPipe(); err != nil {
			unix.Close(c.outFd)
			return nil, err
		}
		defer unix.Close(errW)
		files[1], files[2] = uintptr(outW), uintptr(errW)
	}
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{
		Env:   r.env,
		Files: files,
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	})
	if err != nil {
		c.closeCapture()
		return nil, fmt.Errorf("exec %q: %w", path, err)
	}
	c.pid = pid
	return c, nil
}

// kill sends SIGKILL to the child's process group and to the child
// itself (in case it left the group). Only unreaped children are
// signalled, so the pid cannot have been reused.
func (c *child) kill() {
	if c.killed || c.done {
		return
	}
	_ = unix.Kill(-c.pid, unix.SIGKILL)
	_ = unix.Kill(c.pid, unix.SIGKILL)
	c.killed = true
}

// drain reads whatever the capture pipes hold without blocking, counting
// bytes up to limit combined. A byte beyond the limit sets truncated and
// closes both pipes. EOF closes that pipe.
func (c *child) drain(buf []byte, limit int) {
	if c.fwd != nil {
		c.forward(buf)
		return
	}
	for _, which := range [2]*int{&c.outFd, &c.errFd} {
	read:
		for *which >= 0 {
			room := limit - c.outLen - c.errLen
			n := min(len(buf), room+1)
			got, err := unix.Read(*which, buf[:n])
			switch {
			case got > room:
				c.add(which, room)
				c.truncated = true
				c.closeCapture()
				return
			case got > 0:
				c.add(which, got)
			case err == nil: // EOF
				unix.Close(*which)
				*which = -1
			case errors.Is(err, unix.EINTR):
			case errors.Is(err, unix.EAGAIN):
				break read
			default:
				unix.Close(*which)
				*which = -1
			}
		}
	}
}

// forward reads whatever the pipes hold without blocking and hands it to
// the forwarder line by line. EOF or an error closes that pipe.
func (c *child) forward(buf []byte) {
	for stream, which := range [2]*int{&c.outFd, &c.errFd} {
	read:
		for *which >= 0 {
			got, err := unix.Read(*which, buf)
			switch {
			case got > 0:
				c.fwd.feed(c, stream, buf[:got])
			case errors.Is(err, unix.EINTR):
			case errors.Is(err, unix.EAGAIN):
				break read
			default: // EOF or an error
				unix.Close(*which)
				*which = -1
			}
		}
	}
}

func (c *child) add(which *int, n int) {
	if which == &c.outFd {
		c.outLen += n
	} else {
		c.errLen += n
	}
}

func (c *child) closeCapture() {
	if c.fwd != nil {
		c.fwd.flush(c)
	}
	if c.outFd >= 0 {
		unix.Close(c.outFd)
		c.outFd = -1
	}
	if c.errFd >= 0 {
		unix.Close(c.errFd)
		c.errFd = -1
	}
}

// wait collects the child if it has finished, without blocking. It
// returns done=false while the child runs (or the wait was interrupted).
func (c *child) wait() (ws unix.WaitStatus, done bool, err error) {
	pid, err := unix.Wait4(c.pid, &ws, unix.WNOHANG, nil)
	switch {
	case errors.Is(err, unix.EINTR):
		return ws, false, nil
	case err != nil:
		return ws, true, fmt.Errorf("wait for recovery child %d: %w", c.pid, err)
	case pid == 0:
		return ws, false, nil
	}
	return ws, true, nil
}
