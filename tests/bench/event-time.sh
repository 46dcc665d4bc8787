#!/bin/sh
# What showing event times costs log-show: a directory of LINES reader
# lines that all have one (four in ten RFC 3164 lines, time3164=, read in
# a local zone; three kernel lines, time=; three RFC 5424 lines, time= with
# an offset), shown whole three ways: log-show (event times), log-show
# --written-time (stamps, as before event times), and, as the daemontools
# way to compare with, cat | s6-tai64nlocal (stamps only). hyperfine,
# warm page cache; then the user CPU time of each log-show, the steadier
# figure on a shared machine. Each log-show shows every line first.
set -eu

LINES=${LINES:-1000000}
RUNS=${RUNS:-10}
. "$(dirname "$0")/lib.sh"
BENCH_DIR=${BENCH_DIR:-$top/target/bench}
LOG_SHOW=${LOG_SHOW:-$top/target/release/log-show}

need s6-tai64nlocal hyperfine
built "$LOG_SHOW"
export TZ=Europe/Paris LC_ALL=C

dir=$BENCH_DIR/event-time-$LINES
if [ ! -f "$dir/current" ]; then
	rm -rf "$dir"; mkdir -p "$dir"
	# From 2026-12-01T00:00:00Z, a line every 3 ms.
	awk -v n="$LINES" 'BEGIN {
		base = 1796083200
		for (i = 0; i < n; i++) {
			ms = i * 3; s = base + int(ms / 1000); ns = (ms % 1000) * 1000000
			h = int(s / 3600) % 24; m = int(s / 60) % 60; sec = s % 60; k = i % 10
			if (k < 4)
				text = sprintf("daemon.info sshd[%d]: Accepted publickey for user%d\tfmt=rfc3164 time3164=12-01T%02d:%02d:%02d pid=%d uid=0 gid=0", 1000 + i % 50, i % 100, (h + 1) % 24, m, sec, 1000 + i % 50)
			else if (k < 7)
				text = sprintf("kern.info kernel: usb 1-1: new device number %d\tseq=%d boot=%d.%06d time=2026-12-01T%02d:%02d:%02d.%06dZ SUBSYSTEM=usb", i % 100, i, int(i / 1000), i % 1000000, h, m, sec, ns / 1000)
			else
				text = sprintf("local3.warning myapp[42]: disk %d%% full\tfmt=rfc5424 time=2026-12-01T%02d:%02d:%02d.123+01:00 host=web%d", i % 100, (h + 1) % 24, m, sec, i % 5)
			printf "@40000000%08x%08x %s\n", s + 37, ns, text
		}
	}' >"$dir/current"
fi

for flag in "" --written-time; do
	n=$("$LOG_SHOW" --no-pager $flag "$dir" | wc -l)
	[ "$n" = "$LINES" ] || { echo "log-show $flag showed $n lines" >&2; exit 1; }
done

hyperfine --style basic --warmup 1 --runs "$RUNS" \
	-n "log-show" "$LOG_SHOW --no-pager $dir >/dev/null" \
	-n "log-show --written-time" "$LOG_SHOW --no-pager --written-time $dir >/dev/null" \
	-n "cat | s6-tai64nlocal" "cat $dir/current | s6-tai64nlocal >/dev/null"

for flag in "" --written-time; do
	printf 'user CPU seconds, log-show %s:' "$flag"
	for i in 1 2 3 4 5; do
		/usr/bin/time -f ' %U' "$LOG_SHOW" --no-pager $flag "$dir" 2>&1 >/dev/null | tr -d '\n'
	done
	echo
done
