package metrics

import (
	"cmp"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestPidSortKey checks that pidSortKey orders pids as their decimal
// strings sort, on edge values (lengths 1 to 10, prefixes) and random
// pairs.
func TestPidSortKey(t *testing.T) {
	edges := []uint32{0, 1, 2, 9, 10, 11, 19, 99, 100, 101, 1000, 999999, 1000000, 4194304, 4194303,
		429496729, 4294967295, 4294967294, 1234567890, 123456789, 12345678, 2147483647, 2147483648}
	rng := rand.New(rand.NewPCG(1, 2))
	pids := append([]uint32(nil), edges...)
	for range 2000 {
		pids = append(pids, rng.Uint32()>>rng.UintN(32))
	}
	for _, a := range pids {
		for _, b := range edges {
			checkKeyOrder(t, a, b)
		}
	}
	for i := 1; i < len(pids); i++ {
		checkKeyOrder(t, pids[i-1], pids[i])
	}
}

func checkKeyOrder(t *testing.T, a, b uint32) {
	t.Helper()
	want := strings.Compare(strconv.FormatUint(uint64(a), 10), strconv.FormatUint(uint64(b), 10))
	if got := cmp.Compare(pidSortKey(a), pidSortKey(b)); got != want {
		t.Fatalf("pids %d and %d: key order %d, string order %d", a, b, got, want)
	}
}

// TestNegotiateContentEncoding runs the cases of promhttp's copy of the
// parser plus malformed headers.
func TestNegotiateContentEncoding(t *testing.T) {
	tests := []struct {
		header string
		offers []string
		want   string
	}{
		{"", []string{"identity", "gzip"}, "identity"},
		{"*;q=0", []string{"identity", "gzip"}, ""},
		{"gzip", []string{"identity", "gzip"}, "gzip"},
		{"gzip,zstd", []string{"identity", "zstd"}, "zstd"},
		{"zstd,gzip", []string{"gzip", "zstd"}, "gzip"},
		{"gzip,zstd", []string{"gzip", "zstd"}, "gzip"},
		{"gzip,zstd", []string{"zstd", "gzip"}, "zstd"},
		{"gzip;q=0.1,zstd;q=0.5", []string{"gzip", "zstd"}, "zstd"},
		{"gzip;q=1.0, identity; q=0.5, *;q=0", []string{"identity", "gzip"}, "gzip"},
		{"gzip;q=1.0, identity; q=0.5, *;q=0", []string{"identity", "zstd"}, "identity"},
		{"zstd", []string{"identity", "gzip"}, "identity"},
		{"gzip;q=2", offeredCompressions, "identity"},     // bad quality ends the line
		{"gzip;level=9", offeredCompressions, "identity"}, // only q= parameters
		{",gzip", offeredCompressions, "identity"},        // empty element ends the line
		{"gzip;q=0.", offeredCompressions, ""},            // "0." is q=0
		{"GZIP", offeredCompressions, "identity"},         // case-sensitive, as promhttp
		{"br;q=0.9, gzip;q=0.8", offeredCompressions, "gzip"},
	}
	for _, tc := range tests {
		r := &http.Request{Header: http.Header{"Accept-Encoding": {tc.header}}}
		if got := negotiateContentEncoding(r, tc.offers); got != tc.want {
			t.Errorf("Accept-Encoding %q, offers %q: %q, want %q", tc.header, tc.offers, got, tc.want)
		}
	}
}
