// Package safefile opens the files varta programs keep their secrets, logs
// and records in under one set of rules, checked on the opened descriptor
// (fstat) so that there is no window between checking a path and using it:
//
//   - the last path component is never followed through a symbolic link
//     (O_NOFOLLOW);
//   - what was opened is a regular file (a FIFO, device or socket planted at
//     the path is refused without blocking: the open is non-blocking until
//     the checks pass);
//   - optionally: owned by a given uid, with exactly one hard link, with no
//     permission bit from a forbidden set; and permission bits to add on the
//     descriptor afterwards, whatever the umask (--files-group-readable).
//
// A rule violation is an *Error naming the path and wrapping one of the
// sentinels (ErrSymlink, ErrNotRegular, ErrOwner, ErrHardLinks, ErrMode);
// its fields carry what was found, so callers can word the refusal in
// their own terms (pkg/secretfile, pkg/audit and the events file of
// varta-watch do). Datasync is fdatasync(2) retried on EINTR. Replace
// rewrites a small file atomically through an exclusively created
// temporary file (secret files, varta-watch's state and heartbeat files).
package safefile
