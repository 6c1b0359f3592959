package app

import (
	"fmt"
	"os/user"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/varta-go/varta/cmd/varta-watch/internal/listener"
)

// socketGroup applies --socket-group: the group is resolved by name or
// numeric id, --socket-mode defaults to 0660 with it, and a mode that
// gives the group nothing is refused.
func socketGroup(c *cli.Context, u *listener.UnixOptions) error {
	name := c.String("socket-group")
	if name == "" {
		if c.IsSet("socket-group") {
			return fmt.Errorf("--socket-group: must not be empty")
		}
		return nil
	}
	gid, err := lookupGroup(name)
	if err != nil {
		return err
	}
	u.Group = &gid
	if !c.IsSet("socket-mode") {
		u.Mode = 0o660
	}
	if u.Mode&0o060 != 0o060 {
		return fmt.Errorf("--socket-group %s with --socket-mode %04o: the group needs read and write permission (e.g. --socket-mode 0660)", name, u.Mode)
	}
	return nil
}

// lookupGroup resolves a group name or a numeric gid.
func lookupGroup(name string) (uint32, error) {
	if id, err := strconv.ParseUint(name, 10, 32); err == nil {
		return uint32(id), nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, fmt.Errorf("--socket-group %q: %w", name, err)
	}
	id, err := strconv.ParseUint(g.Gid, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("--socket-group %q: gid %q is not numeric", name, g.Gid)
	}
	return uint32(id), nil
}
