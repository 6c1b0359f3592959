package app

import (
	"strings"
	"testing"
	"time"
)

// TestDrainIntervalBounds: --drain-interval-ms (and its environment
// variable) is 0 by default, at most 1000 and a quarter of the threshold;
// anything else is a configuration error naming the flag and the rule.
func TestDrainIntervalBounds(t *testing.T) {
	for _, tc := range []struct {
		name      string
		threshold string
		value     string // "" = not given
		env       bool   // give it through VARTA_WATCH_DRAIN_INTERVAL_MS
		want      time.Duration
		err       string
	}{
		{"default off", "1500", "", false, 0, ""},
		{"zero", "1500", "0", false, 0, ""},
		{"a quarter of the threshold", "1000", "250", false, 250 * time.Millisecond, ""},
		{"from the environment", "1000", "100", true, 100 * time.Millisecond, ""},
		{"above a quarter of the threshold", "1000", "251", false, 0, "--drain-interval-ms 251: must be at most a quarter of --threshold-ms 1000 (250)"},
		{"above 1000 ms", "60000", "1001", false, 0, "--drain-interval-ms 1001: must be between 0 and 1000"},
		{"1000 ms with a long threshold", "60000", "1000", false, time.Second, ""},
		{"negative", "1000", "-1", false, 0, "--drain-interval-ms -1: must be between 0 and 1000"},
		{"smallest threshold", "10", "3", false, 0, "--drain-interval-ms 3: must be at most a quarter of --threshold-ms 10 (2)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"--socket", "/run/varta/v.sock", "--threshold-ms", tc.threshold}
			if tc.value != "" {
				if tc.env {
					t.Setenv("VARTA_WATCH_DRAIN_INTERVAL_MS", tc.value)
				} else {
					args = append(args, "--drain-interval-ms", tc.value)
				}
			}
			o, err := parse(t, nil, args...)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.DrainInterval != tc.want {
				t.Fatalf("drain interval %v, want %v", o.DrainInterval, tc.want)
			}
		})
	}
}
