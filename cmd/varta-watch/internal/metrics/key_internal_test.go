package metrics

import (
	"cmp"
	"math/rand/v2"
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
