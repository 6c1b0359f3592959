//go:build darwin || freebsd

package control

import "golang.org/x/sys/unix"

// peerCred reads LOCAL_PEERCRED, the BSD counterpart of SO_PEERCRED. It
// carries the peer's effective uid but no pid, so the pid stays 0.
func peerCred(fd int) peer {
	cred, err := unix.GetsockoptXucred(fd, 0 /* SOL_LOCAL */, unix.LOCAL_PEERCRED)
	if err != nil {
		return peer{}
	}
	return peer{uid: cred.Uid, ok: true}
}
