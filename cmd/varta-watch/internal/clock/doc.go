// Package clock owns the observer's stall clock: nanoseconds since the
// observer started, read from CLOCK_MONOTONIC (pauses during suspend) or
// CLOCK_BOOTTIME (counts suspend). It detects backward readings and forward
// jumps but decides nothing about them; the observer does.
package clock
