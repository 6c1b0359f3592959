//go:build race

package tracker

// raceEnabled: the race detector is on (its cost makes the largest tests
// too slow to run under it).
const raceEnabled = true
