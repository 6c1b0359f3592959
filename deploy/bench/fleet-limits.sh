#!/bin/bash
# fleet-limits.sh — one observer with 65,536 agents: capacity, CPU, memory,
# and the size and time of a scrape with and without per-pid series.
# Measured numbers and how to read them: docs/benchmarks/fleet.md.
#
#   make build && sudo unshare -p -f --mount-proc deploy/bench/fleet-limits.sh [AGENTS] [RATE]
#
# The agents are synthetic pids over plain UDP on loopback (varta-beat load),
# so they need AGENTS distinct pids below pid_max: the script raises pid_max
# in its own pid namespace (Linux >= 6.14 keeps pid_max per namespace; run
# it under unshare as shown so the host's value is untouched).
set -eu
AGENTS=${1:-65536}
RATE=${2:-1}
BIN=${BIN:-$(cd "$(dirname "$0")/../.." && pwd)/bin}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ "$(cat /proc/sys/kernel/pid_max)" -le "$AGENTS" ]; then
	echo 4194304 >/proc/sys/kernel/pid_max
fi
(umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/token" && echo >>"$work/token")
token=$(cat "$work/token")
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }

for perpid in true false; do
	"$BIN/varta-watch" --socket "$work/v.sock" --threshold-ms 60000 --tracker-capacity "$AGENTS" \
		--udp-port 19555 --i-accept-plaintext-udp --prom-addr 127.0.0.1:19464 --prom-token-file "$work/token" \
		--prom-rate-limit-per-sec 0 --prom-per-pid="$perpid" >/dev/null 2>"$work/daemon.err" &
	d=$!
	sleep 1
	"$BIN/varta-beat" load --udp 127.0.0.1:19555 --agents "$AGENTS" --rate "$RATE" --duration 40s >"$work/load.out" 2>&1 &
	l=$!
	sleep 20
	c0=$(cpu $d)
	sleep 10
	c1=$(cpu $d)
	echo "== --prom-per-pid=$perpid, $AGENTS agents at $RATE beats/s each"
	# utime+stime in 1/100 s ticks over 10 s: ticks x 10 ms / 10 s = ms per s.
	echo "observer CPU: $((c1 - c0)) ms per s; $(grep VmRSS /proc/$d/status)"
	for i in 1 2 3 4 5; do
		curl -s -o "$work/scrape" -H "Authorization: Bearer $token" \
			-w "scrape: %{size_download} bytes in %{time_total} s\n" http://127.0.0.1:19464/metrics
		sleep 0.5
	done
	echo "series: $(grep -vc '^#' "$work/scrape")"
	grep -E '^(varta_watch_pids_tracked|varta_rate_limited_total|varta_tracker_capacity_exceeded_total|process_resident_memory_bytes)' "$work/scrape"
	wait $l
	grep -E '^(sent|dropped|achieved rate)' "$work/load.out"
	kill $d
	wait $d || true
done
