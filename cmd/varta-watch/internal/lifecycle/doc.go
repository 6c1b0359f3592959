// Package lifecycle owns the observer's contract with its supervisors:
// systemd notifications (READY=1, STOPPING=1, STATUS=, WATCHDOG=1 only while
// the observer loop makes progress), the heartbeat file, the in-process
// self-watchdog that aborts a wedged loop, and the hardware watchdog device
// (/dev/watchdog: timeout raised, one byte per tick, magic close).
//
// Every value comes from the caller: the package never reads the
// environment (the CLI passes $NOTIFY_SOCKET and $WATCHDOG_USEC in), never
// installs signal handlers except in DefaultAbort, and never decides when the
// observer is healthy — it is handed a progress counter and acts on it.
// Every goroutine it starts is stopped by the owning value's Stop or Close.
package lifecycle
