package metrics_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/varta-go/varta/cmd/varta-watch/internal/metrics"
	"github.com/varta-go/varta/pkg/secretfile"
)

func TestLoadToken(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T) string // returns the path
		want    string                    // token on success
		wantErr error                     // rule on failure
		wantSub string                    // the error text names the rule
	}{
		{
			name:  "valid with newline",
			setup: func(t *testing.T) string { return writeFile(t, "tok", testToken+"\n", 0o600) },
			want:  testToken,
		},
		{
			name:  "valid with surrounding blanks, 0400",
			setup: func(t *testing.T) string { return writeFile(t, "tok", " \t"+testToken+"\r\n\n", 0o400) },
			want:  testToken,
		},
		{
			name:    "63 digits",
			setup:   func(t *testing.T) string { return writeFile(t, "tok", testToken[:63], 0o600) },
			wantErr: metrics.ErrBadToken, wantSub: "found 63 characters",
		},
		{
			name:    "65 digits",
			setup:   func(t *testing.T) string { return writeFile(t, "tok", testToken+"a", 0o600) },
			wantErr: metrics.ErrBadToken, wantSub: "found 65 characters",
		},
		{
			name:    "empty",
			setup:   func(t *testing.T) string { return writeFile(t, "tok", "\n", 0o600) },
			wantErr: metrics.ErrBadToken, wantSub: "found 0 characters",
		},
		{
			name:    "non-hex",
			setup:   func(t *testing.T) string { return writeFile(t, "tok", "g"+testToken[1:], 0o600) },
			wantErr: metrics.ErrBadToken, wantSub: "character 1 is not a hex digit",
		},
		{
			name:    "inner space",
			setup:   func(t *testing.T) string { return writeFile(t, "tok", testToken[:32]+" "+testToken[33:], 0o600) },
			wantErr: metrics.ErrBadToken, wantSub: "character 33 is not a hex digit",
		},
		{
			name: "symlink",
			setup: func(t *testing.T) string {
				target := writeFile(t, "real", testToken, 0o600)
				link := filepath.Join(t.TempDir(), "tok")
				if err := os.Symlink(target, link); err != nil {
					t.Fatal(err)
				}
				return link
			},
			wantErr: secretfile.ErrSymlink, wantSub: "symlink",
		},
		{
			name:    "mode 0644",
			setup:   func(t *testing.T) string { return writeFile(t, "tok", testToken, 0o644) },
			wantErr: secretfile.ErrPermissive, wantSub: "0644",
		},
		{
			name:    "mode 0640",
			setup:   func(t *testing.T) string { return writeFile(t, "tok", testToken, 0o640) },
			wantErr: secretfile.ErrPermissive, wantSub: "0640",
		},
		{
			name:    "directory",
			setup:   func(t *testing.T) string { return t.TempDir() },
			wantErr: secretfile.ErrNotRegular, wantSub: "regular",
		},
		{
			name:    "missing",
			setup:   func(t *testing.T) string { return filepath.Join(t.TempDir(), "absent") },
			wantErr: os.ErrNotExist, wantSub: "absent",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.setup(t)
			got, err := metrics.LoadToken(path)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != tc.want {
					t.Fatalf("token %q, want %q", got, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, token %q", got)
			}
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("error %q is not %v", err, tc.wantErr)
			}
			msg := err.Error()
			if !strings.Contains(msg, path) || !strings.Contains(msg, tc.wantSub) {
				t.Errorf("error %q should name %q and %q", msg, path, tc.wantSub)
			}
			if strings.Contains(msg, testToken[:16]) {
				t.Errorf("error leaks the token: %q", msg)
			}
		})
	}
}
