package control

import "golang.org/x/sys/unix"

// peerCred reads SO_PEERCRED: the uid and pid of the process that
// connected, as the kernel recorded them at connect time.
func peerCred(fd int) peer {
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return peer{}
	}
	return peer{uid: cred.Uid, pid: uint32(cred.Pid), ok: true}
}
