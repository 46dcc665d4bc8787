#!/bin/sh
# cyclog --split-by host against plain cyclog, side by side in one run:
# LINES reader lines of about 200 bytes from HOSTS hosts, round robin (the
# worst case: every chunk of input goes to every host's directory), piped
# into `cyclog DIR` (one directory) and `cyclog --split-by host ROOT` (one
# directory per host), 16 MiB files, on the disk of BENCH_DIR. Then the
# same with MANY hosts and at most 128 directories open at once (MANY=0,
# the default, skips it). The writer alone is timed; median of RUNS runs.
set -eu

LINES=${LINES:-1000000}
HOSTS=${HOSTS:-100}
MANY=${MANY:-0}
RUNS=${RUNS:-3}
. "$(dirname "$0")/lib.sh"
BENCH_DIR=${BENCH_DIR:-$top/target/bench}
CYCLOG=${CYCLOG:-$top/target/release/cyclog}

need /usr/bin/time
built "$CYCLOG"
mkdir -p "$BENCH_DIR"

# reader_lines N HOSTS: N reader lines of about 200 bytes, host=host0 ...
reader_lines() {
	awk -v n="$1" -v hosts="$2" 'BEGIN { pad = sprintf("%110s", ""); gsub(/ /, "x", pad);
		for (i = 0; i < n; i++)
			printf "daemon.info app[%d]: request %010d %s\thost=host%d from=10.0.%d.%d:514\n",
				1000 + i % 9000, i, pad, i % hosts, int(i % hosts / 256), i % hosts % 256 }'
}

out=$BENCH_DIR/split-out
results=$BENCH_DIR/split-results
: > "$results"
cases="plain split"
[ "$MANY" -gt 0 ] && cases="$cases split-many"
for c in $cases; do
	input=$BENCH_DIR/split-input-$c
	hosts=$HOSTS; [ "$c" = split-many ] && hosts=$MANY
	reader_lines "$LINES" "$hosts" > "$input"
done
for run in $(seq "$RUNS"); do
	for c in $cases; do
		rm -rf "$out"; mkdir -p "$out"; sync
		input=$BENCH_DIR/split-input-$c
		case $c in
		plain) args="$out/log" ;;
		*) args="--split-by host $out/root" ;;
		esac
		# shellcheck disable=SC2086
		cat "$input" | /usr/bin/time -f "$c %e %U %S %M" -a -o "$results" \
			"$CYCLOG" --max-file-size 16M --max-total-size 4G $args
		got=$(find "$out" -type f \( -name current -o -name '@*' \) -exec cat {} + | wc -l)
		[ "$got" = "$LINES" ] || { echo "$c: $got lines written, not $LINES" >&2; exit 1; }
		echo "$c dirs $(find "$out" -mindepth 2 -maxdepth 2 -type d | wc -l)" >> "$BENCH_DIR/split-dirs"
	done
done
rm -rf "$out" "$BENCH_DIR"/split-input-*
echo "$LINES reader lines of about 200 bytes, $HOSTS hosts round robin (split-many: $MANY hosts, 128 open), median of $RUNS runs, $(nproc) cores, $(uname -r)"
sort -u "$BENCH_DIR/split-dirs" | sed 's/^/  directories under ROOT: /'; rm -f "$BENCH_DIR/split-dirs"
awk "$median"'
	{ wall[$1] = wall[$1] " " $2; cpu[$1] = cpu[$1] " " ($3 + $4); rss[$1] = rss[$1] " " $5; seen[$1] = 1 }
	END {
		split("plain split split-many", order, " ")
		printf "| cyclog | wall s | CPU s | peak RSS KiB | lines/s | wall vs plain | CPU vs plain |\n"
		printf "|---|---|---|---|---|---|---|\n"
		PW = median(wall["plain"]); PC = median(cpu["plain"])
		for (k = 1; k <= 3; k++) {
			w = order[k]; if (!seen[w]) continue
			W = median(wall[w]); C = median(cpu[w])
			printf "| %s | %.2f | %.2f | %d | %.0f | %.2f | %.2f |\n", w, W, C, median(rss[w]), '"$LINES"' / W, W / PW, C / PC
		}
	}' "$results"
rm -f "$results"
