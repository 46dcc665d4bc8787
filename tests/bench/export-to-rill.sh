#!/bin/sh
# export-to-remote to another rill, over TCP and over RELP, side by side in
# one run: LINES lines of 100 bytes in a log directory (written by cyclog),
# forwarded on loopback to `syslog-read --tcp | cyclog` and to
# `syslog-read --relp | cyclog`. Against rsyslog's imrelp (export.sh) the
# receiver is the limit; here both ends are ours, so this shows what RELP
# itself costs against TCP. Reports the median of RUNS runs of each: wall
# time until the receiving cyclog has every line, lines per second, the
# forwarder's CPU time and peak memory, and the ratio to TCP.
set -eu

LINES=${LINES:-1000000}
RUNS=${RUNS:-3}
. "$(dirname "$0")/lib.sh"
BENCH_DIR=${BENCH_DIR:-$top/target/bench-export-to-rill}
BIN=${BIN:-$top/target/release}
# RELP_OPTIONS: export-to-remote's options for relp:// (e.g. --relp-window N).
RELP_OPTIONS=${RELP_OPTIONS:-}

need /usr/bin/time
built "$BIN/cyclog" "$BIN/export-to-remote" "$BIN/syslog-read"

rm -rf "$BENCH_DIR"
mkdir -p "$BENCH_DIR"
cd "$BENCH_DIR"
lines_of_100 "$LINES" |
	"$BIN/cyclog" --max-file-size 4G --max-total-size 8G "$BENCH_DIR/log"

# A loopback TCP port nothing listens on.
port() {
	while :; do
		p=$(( $(od -An -N2 -tu2 /dev/urandom) % 28000 + 32768 ))
		grep -q ":$(printf %04X "$p") " /proc/net/tcp || { echo "$p"; return; }
	done
}

results=$BENCH_DIR/results
: > "$results"
: > "$results.cpu"
for run in $(seq "$RUNS"); do
	for t in tcp relp; do
		p=$(port)
		rm -rf recv cursors
		mkdir -p cursors/log
		ln -s "$BENCH_DIR/log" cursors/log/main
		"$BIN/syslog-read" --"$t" "127.0.0.1:$p" 2>>receiver.stderr |
			"$BIN/cyclog" --max-file-size 4G --max-total-size 8G recv &
		recv=$!
		until grep -q ":$(printf %04X "$p") " /proc/net/tcp; do sleep 0.05; done
		start=$(date +%s.%N)
		/usr/bin/time -f "$t %U %S %M" -a -o "$results.cpu" \
			"$BIN/export-to-remote" --to "$t://127.0.0.1:$p" $([ "$t" = relp ] && echo "$RELP_OPTIONS") cursors 2>>export.stderr &
		timer=$!
		until [ "$( (wc -l < recv/current) 2>/dev/null || echo 0)" -ge "$LINES" ]; do sleep 0.05; done
		end=$(date +%s.%N)
		kill -TERM $(pgrep -P "$timer") 2>/dev/null || true
		wait "$timer" || true
		pkill -TERM -f "syslog-read --$t 127.0.0.1:$p" || true
		wait "$recv" || true
		echo "$t $(echo "$end - $start" | bc)" >> "$results"
	done
done

echo "$LINES lines of 100 bytes, export-to-remote to syslog-read | cyclog on loopback, median of $RUNS runs, $(nproc) cores, $(uname -r)"
echo "| transport | wall s | lines/s | forwarder CPU s | peak RSS KiB | wall vs TCP |"
echo "|---|---|---|---|---|---|"
awk "$median"'
	FILENAME ~ /cpu$/ { C[$1] = C[$1] " " ($2 + $3); R[$1] = $4 > R[$1] ? $4 : R[$1]; next }
	{ W[$1] = W[$1] " " $2 }
	END {
		for (t in W) { W[t] = median(W[t]); C[t] = median(C[t]) }
		split("tcp relp", order, " ")
		for (i = 1; i <= 2; i++) {
			t = order[i]
			printf "| %s | %.2f | %.0f | %.2f | %d | %.2f |\n", t, W[t], '"$LINES"' / W[t], C[t], R[t], W[t] / W["tcp"]
		}
	}' "$results.cpu" "$results"
