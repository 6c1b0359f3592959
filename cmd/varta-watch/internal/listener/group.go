package listener

import (
	"fmt"
	"os"
)

// setGroup gives the socket file at path the group gid (nil: unchanged).
// The owner stays the observer's user. The group is set before the mode,
// so the group bits never apply to the wrong group.
func setGroup(path string, gid *uint32) error {
	if gid == nil {
		return nil
	}
	if err := os.Lchown(path, -1, int(*gid)); err != nil {
		return fmt.Errorf("--socket-group: chgrp socket %q to gid %d: %w (the observer must be a member of the group, or root)", path, *gid, err)
	}
	return nil
}

// bindMode is the mode the socket file is created with: the final mode,
// or only its owner bits while the group still has to be changed.
func bindMode(o UnixOptions) os.FileMode {
	if o.Group != nil {
		return o.Mode.Perm() & 0o700
	}
	return o.Mode.Perm()
}
