package listener

import (
	"encoding/binary"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// cmsg builds one control message.
func cmsg(level, typ int32, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = level, typ
	h.SetLen(unix.CmsgLen(len(data)))
	copy(b[unix.CmsgLen(0):], data)
	return b
}

// FuzzParseControl: any control buffer the kernel could hand over (or a
// corrupted one) is parsed without a panic, without reading past its end,
// and yields credentials and an arrival time only from well-formed
// messages.
func FuzzParseControl(f *testing.F) {
	cred := make([]byte, unix.SizeofUcred)
	binary.NativeEndian.PutUint32(cred[0:], 4242)
	ts := make([]byte, tsSize)
	binary.NativeEndian.PutUint64(ts[0:], 1_700_000_000)
	binary.NativeEndian.PutUint64(ts[8:], 5)
	fds := make([]byte, 8)
	f.Add(cmsg(unix.SOL_SOCKET, unix.SCM_CREDENTIALS, cred))
	f.Add(append(cmsg(unix.SOL_SOCKET, unix.SCM_CREDENTIALS, cred), cmsg(unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, ts)...))
	f.Add(cmsg(unix.SOL_SOCKET, unix.SCM_RIGHTS, fds))
	f.Add(cmsg(unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, ts[:8]))
	f.Add([]byte{})
	f.Add(make([]byte, unix.CmsgLen(0)-1))
	closed := 0
	closeFD = func(int) { closed++ }
	f.Cleanup(func() { closeFD = func(fd int) { unix.Close(fd) } })
	f.Fuzz(func(t *testing.T, buf []byte) {
		// The kernel aligns the buffer; so do we.
		aligned := make([]byte, len(buf)+8)
		off := int(uintptr(unsafe.Pointer(&aligned[0])) % 8)
		if off != 0 {
			off = 8 - off
		}
		b := aligned[off : off+len(buf)]
		copy(b, buf)
		var d Datagram
		parseControl(b, &d)
		if d.HasCreds && len(b) < unix.CmsgLen(unix.SizeofUcred) {
			t.Fatalf("credentials from %d bytes", len(b))
		}
		if d.Arrival != 0 && len(b) < unix.CmsgLen(tsSize) {
			t.Fatalf("arrival time from %d bytes", len(b))
		}
	})
}
