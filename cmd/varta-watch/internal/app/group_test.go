package app

import (
	"os"
	"os/user"
	"strconv"
	"strings"
	"testing"
)

func TestSocketGroupAndGroupReadableFlags(t *testing.T) {
	g, err := user.LookupGroupId(strconv.Itoa(os.Getgid()))
	if err != nil {
		t.Skipf("own group has no name: %v", err)
	}
	gid := uint32(os.Getgid())
	base := []string{"--socket", "/run/varta/v.sock", "--threshold-ms", "1500"}
	for _, tc := range []struct {
		name    string
		args    []string
		mode    os.FileMode
		group   *uint32
		wantErr string
	}{
		{"default", nil, 0o600, nil, ""},
		{"by name", []string{"--socket-group", g.Name}, 0o660, &gid, ""},
		{"by gid", []string{"--socket-group", "4242"}, 0o660, ptr(4242), ""},
		{"explicit mode", []string{"--socket-group", "4242", "--socket-mode", "0670"}, 0o670, ptr(4242), ""},
		{"mode without group access", []string{"--socket-group", "4242", "--socket-mode", "0600"}, 0, nil, "the group needs read and write"},
		{"group read only", []string{"--socket-group", "4242", "--socket-mode", "0640"}, 0, nil, "the group needs read and write"},
		{"unknown group", []string{"--socket-group", "no-such-group-varta"}, 0, nil, `--socket-group "no-such-group-varta"`},
		{"empty", []string{"--socket-group", ""}, 0, nil, "--socket-group: must not be empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parse(t, nil, append(append([]string{}, base...), tc.args...)...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.Unix.Mode != tc.mode {
				t.Errorf("mode %04o, want %04o", o.Unix.Mode, tc.mode)
			}
			if (o.Unix.Group == nil) != (tc.group == nil) || (tc.group != nil && *o.Unix.Group != *tc.group) {
				t.Errorf("group %v, want %v", o.Unix.Group, tc.group)
			}
		})
	}

	o, err := parse(t, map[string]string{}, append(base, "--export-file", "/tmp/e", "--recovery-audit-file", "/tmp/a", "--files-group-readable")...)
	if err != nil {
		t.Fatal(err)
	}
	if !o.Export.GroupReadable || !o.Audit.GroupReadable {
		t.Fatalf("--files-group-readable: events %v audit %v", o.Export.GroupReadable, o.Audit.GroupReadable)
	}
	if _, err := parse(t, nil, append(base, "--files-group-readable")...); err == nil || !strings.Contains(err.Error(), "requires --export-file") {
		t.Fatalf("--files-group-readable without files: %v", err)
	}
	o, err = parse(t, nil, append(base, "--export-file", "/tmp/e", "--recovery-audit-file", "/tmp/a")...)
	if err != nil || o.Export.GroupReadable || o.Audit.GroupReadable {
		t.Fatalf("default must be owner-only: %v %v %v", o.Export.GroupReadable, o.Audit.GroupReadable, err)
	}
}

func ptr(v uint32) *uint32 { return &v }
