#!/bin/sh
# cyclog against the other log writers, side by side in one run:
# LINES lines of 100 bytes through a pipe into each, 16 MiB files, on the
# disk of BENCH_DIR. Reports the median of RUNS runs of each: wall time,
# CPU time and peak resident memory of the writer itself, and ratios.
# Then the rotation case: ROT_LINES lines into 4 KiB files, up to 10,000
# of them kept (ROT_LINES=0 skips it), median of ROT_RUNS runs. Then the
# selection case: SEL_LINES lines through a script of two directories, one
# pattern each (SEL_LINES=0 skips it), median of SEL_RUNS runs. RUNS=0
# skips the first case.
set -eu

LINES=${LINES:-2000000}
RUNS=${RUNS:-5}
ROT_LINES=${ROT_LINES:-150000}
ROT_RUNS=${ROT_RUNS:-3}
SEL_LINES=${SEL_LINES:-2000000}
SEL_RUNS=${SEL_RUNS:-3}
. "$(dirname "$0")/lib.sh"
BENCH_DIR=${BENCH_DIR:-$top/target/bench}
CYCLOG=${CYCLOG:-$top/target/release/cyclog}

need multilog s6-log svlogd /usr/bin/time
built "$CYCLOG"

mkdir -p "$BENCH_DIR"
input=$BENCH_DIR/input
if [ "$({ wc -l < "$input"; } 2>/dev/null || echo 0)" != "$LINES" ]; then
	lines_of_100 "$LINES" > "$input"
fi

out=$BENCH_DIR/out
results=$BENCH_DIR/results
timed() { /usr/bin/time -f "$w %e %U %S %M" -a -o "$results" "$@"; }
if [ "$RUNS" -gt 0 ]; then
: > "$results"
for run in $(seq "$RUNS"); do
	for w in cat cat+fsync multilog s6-log svlogd cyclog; do
		rm -rf "$out"; mkdir -p "$out"; sync
		# The writer alone is timed; cat feeds the pipe as fast as it can.
		case $w in
		cat) cat "$input" | timed cat > "$out/file" ;;
		# The same bytes made as durable as the writers make theirs.
		cat+fsync) cat "$input" | timed sh -c 'cat > "$1" && sync "$1"' sh "$out/file" ;;
		multilog) cat "$input" | timed multilog t s16777215 n1000 "$out/log" ;;
		s6-log) cat "$input" | timed s6-log t s16777216 n1000 "$out/log" ;;
		svlogd)
			mkdir -p "$out/log"; printf 's16777216\nn1000\n' > "$out/log/config"
			cat "$input" | timed svlogd -t "$out/log" ;;
		cyclog) cat "$input" | timed "$CYCLOG" --max-file-size 16M --max-total-size 4G "$out/log" ;;
		esac
		if [ "$w" = cyclog ]; then
			got=$(cat "$out"/log/@*.s "$out"/log/current | wc -l)
			[ "$got" = "$LINES" ] || { echo "cyclog wrote $got lines, not $LINES" >&2; exit 1; }
		fi
	done
done
rm -rf "$out"

echo "$LINES lines of 100 bytes, 16 MiB files, median of $RUNS runs, $(nproc) cores, $(uname -r)"
awk "$median"'
	{ wall[$1] = wall[$1] " " $2; cpu[$1] = cpu[$1] " " ($3 + $4); rss[$1] = rss[$1] " " $5 }
	END {
		split("cat cat+fsync multilog s6-log svlogd cyclog", order, " ")
		for (k in order) { w = order[k]; W[w] = median(wall[w]); C[w] = median(cpu[w]); R[w] = median(rss[w]) }
		printf "| writer | wall s | CPU s | peak RSS KiB | wall vs s6-log | wall vs cat | wall vs cat+fsync |\n"
		printf "|---|---|---|---|---|---|---|\n"
		for (k = 1; k <= 6; k++) {
			w = order[k]
			printf "| %s | %.2f | %.2f | %d | %.2f | %.2f | %.2f |\n", w, W[w], C[w], R[w], W[w] / W["s6-log"], W[w] / W["cat"], W[w] / W["cat+fsync"]
		}
	}' "$results"
rm -f "$results"
fi

if [ "$SEL_LINES" -gt 0 ]; then
# Selection: the lines whose number ends in 7 to one directory, in 3 to
# (multilog without t: its patterns would see the stamp)
# the other, as each peer's script says it; cyclog runs both scripts.
sel_input=$BENCH_DIR/sel-input
head -n "$SEL_LINES" "$input" > "$sel_input"
: > "$results"
: > "$BENCH_DIR/sel-counts"
for run in $(seq "$SEL_RUNS"); do
	for w in multilog cyclog-multilog s6-log cyclog-s6-log; do
		rm -rf "$out"; mkdir -p "$out"; sync
		case $w in
		multilog) cat "$sel_input" | timed multilog s16777215 n1000 '-*' '+*7 *' "$out/a" '-*' '+*3 *' "$out/b" ;;
		cyclog-multilog) cat "$sel_input" | timed "$CYCLOG" s16777215 n1000 '-*' '+*7 *' "$out/a" '-*' '+*3 *' "$out/b" ;;
		s6-log) cat "$sel_input" | timed s6-log -b -- t s16777216 n1000 '-.*' '+^[0-9]{9}7 ' "$out/a" '-.*' '+^[0-9]{9}3 ' "$out/b" ;;
		cyclog-s6-log) cat "$sel_input" | timed "$CYCLOG" -b -- t s16777216 n1000 '-.*' '+^[0-9]{9}7 ' "$out/a" '-.*' '+^[0-9]{9}3 ' "$out/b" ;;
		esac
		echo "$w $(cat "$out"/a/@* "$out"/a/current | wc -l) $(cat "$out"/b/@* "$out"/b/current | wc -l)" >> "$BENCH_DIR/sel-counts"
	done
done
rm -rf "$out"
echo
echo "$SEL_LINES lines of 100 bytes, two directories of one pattern each, median of $SEL_RUNS runs"
echo "  lines in each directory (writer a b):"
sort -u "$BENCH_DIR/sel-counts" | sed 's/^/    /'; rm -f "$BENCH_DIR/sel-counts"
awk "$median"'
	{ wall[$1] = wall[$1] " " $2; cpu[$1] = cpu[$1] " " ($3 + $4); rss[$1] = rss[$1] " " $5 }
	END {
		split("multilog cyclog-multilog s6-log cyclog-s6-log", order, " ")
		printf "| writer | wall s | CPU s | peak RSS KiB | wall vs s6-log | CPU vs s6-log |\n"
		printf "|---|---|---|---|---|---|\n"
		SW = median(wall["s6-log"]); SC = median(cpu["s6-log"])
		for (k = 1; k <= 4; k++) {
			w = order[k]; W = median(wall[w]); C = median(cpu[w])
			printf "| %s | %.2f | %.2f | %d | %.2f | %.2f |\n", w, W, C, median(rss[w]), W / SW, C / SC
		}
	}' "$results"
rm -f "$results"
fi

[ "$ROT_LINES" -gt 0 ] || exit 0
# Many small files: a rotation every 30 or so lines, every archive kept
# (s6-log and multilog: at most 10,000, as cyclog is told). What a rotation
# costs, and whether it grows with the archives already there.
rot_input=$BENCH_DIR/rot-input
head -n "$ROT_LINES" "$input" > "$rot_input"
: > "$results"
for run in $(seq "$ROT_RUNS"); do
	for w in multilog s6-log cyclog; do
		rm -rf "$out"; mkdir -p "$out"; sync
		case $w in
		multilog) timed multilog t s4096 n10000 "$out/log" < "$rot_input" ;;
		s6-log) timed s6-log t s4096 n10000 "$out/log" < "$rot_input" ;;
		cyclog) timed "$CYCLOG" --max-file-size 4096 --max-files 10000 "$out/log" < "$rot_input" ;;
		esac
		echo "$w archives $(ls "$out/log" | grep -c '^@')" >> "$BENCH_DIR/rot-counts"
	done
done
rm -rf "$out"
echo
echo "$ROT_LINES lines of 100 bytes, 4 KiB files, up to 10,000 kept, median of $ROT_RUNS runs"
sort -u "$BENCH_DIR/rot-counts" | sed 's/^/  /'; rm -f "$BENCH_DIR/rot-counts"
awk "$median"'
	{ wall[$1] = wall[$1] " " $2; cpu[$1] = cpu[$1] " " ($3 + $4); rss[$1] = rss[$1] " " $5 }
	END {
		split("multilog s6-log cyclog", order, " ")
		printf "| writer | wall s | CPU s | peak RSS KiB | CPU vs s6-log |\n"
		printf "|---|---|---|---|---|\n"
		S = median(cpu["s6-log"])
		for (k = 1; k <= 3; k++) {
			w = order[k]; C = median(cpu[w])
			printf "| %s | %.2f | %.2f | %d | %.2f |\n", w, median(wall[w]), C, median(rss[w]), C / S
		}
	}' "$results"
rm -f "$results"
