#!/bin/sh
# Sealing (logseal(7)) side by side with plain cyclog, in one run: LINES
# lines of 100 bytes through a pipe into cyclog with and without --seal
# (16 MiB files, the defaults: a seal every 100,000 lines and 10 s),
# median of RUNS runs of each: wall and CPU time, and the ratio. Then
# verification: log-show --verify over the sealed directory (VERIFY_MB
# MiB of it, built once), beside journalctl --verify over a journal of the
# same lines made by systemd-journal-remote (JOURNAL=0 skips it).
set -eu

LINES=${LINES:-2000000}
RUNS=${RUNS:-5}
VERIFY_MB=${VERIFY_MB:-1024}
JOURNAL=${JOURNAL:-1}
. "$(dirname "$0")/lib.sh"
BENCH_DIR=${BENCH_DIR:-$top/target/bench}
CYCLOG=${CYCLOG:-$top/target/release/cyclog}
LOG_SHOW=${LOG_SHOW:-$top/target/release/log-show}
JOURNAL_REMOTE=${JOURNAL_REMOTE:-/opt/rill-peers/systemd-journal-remote/lib/systemd/systemd-journal-remote}

need /usr/bin/time
built "$CYCLOG" "$LOG_SHOW"

mkdir -p "$BENCH_DIR"
input=$BENCH_DIR/input
if [ "$({ wc -l < "$input"; } 2>/dev/null || echo 0)" != "$LINES" ]; then
	lines_of_100 "$LINES" > "$input"
fi

out=$BENCH_DIR/seal-out
results=$BENCH_DIR/seal-results
timed() { /usr/bin/time -f "$w %e %U %S" -a -o "$results" "$@"; }
if [ "$RUNS" -gt 0 ]; then
: > "$results"
for run in $(seq "$RUNS"); do
	for w in cyclog cyclog--seal; do
		rm -rf "$out"; mkdir -p "$out"; sync
		case $w in
		cyclog) cat "$input" | timed "$CYCLOG" --max-file-size 16M --max-total-size 4G "$out/log" ;;
		cyclog--seal)
			"$CYCLOG" --make-seal-key "$out/key" > "$out/verify" 2>/dev/null
			cat "$input" | timed "$CYCLOG" --seal "$out/key" --max-file-size 16M --max-total-size 4G "$out/log"
			"$LOG_SHOW" --verify "$out/verify" "$out/log" > /dev/null ;;
		esac
	done
done
echo "$LINES lines of 100 bytes, 16 MiB files, median of $RUNS runs, $(nproc) cores, $(uname -r)"
awk "$median"'
	{ wall[$1] = wall[$1] " " $2; cpu[$1] = cpu[$1] " " ($3 + $4) }
	END {
		split("cyclog cyclog--seal", order, " ")
		printf "| writer | wall s | CPU s | wall vs cyclog | CPU vs cyclog |\n|---|---|---|---|---|\n"
		for (k = 1; k <= 2; k++) {
			w = order[k]; W = median(wall[w]); C = median(cpu[w])
			if (k == 1) { W0 = W; C0 = C }
			printf "| %s | %.2f | %.2f | %.2f | %.2f |\n", w, W, C, W / W0, C / C0
		}
	}' "$results"
rm -f "$results"
fi

# Verification of VERIFY_MB MiB.
vdir=$BENCH_DIR/seal-verify
vlines=$((VERIFY_MB * 1048576 / 128))
if [ ! -f "$vdir/done-$VERIFY_MB" ]; then
	rm -rf "$vdir"; mkdir -p "$vdir"
	"$CYCLOG" --make-seal-key "$vdir/key" > "$vdir/verify" 2>/dev/null
	lines_of_100 "$vlines" | "$CYCLOG" --seal "$vdir/key" --max-file-size 16M --max-total-size 8G "$vdir/log"
	if [ "$JOURNAL" = 1 ]; then
		# The same lines as journal entries (export format), one journal file.
		libs=$(dirname "$(find "${JOURNAL_REMOTE%/lib/systemd/*}/usr/lib" -name libmicrohttpd.so.12 | head -1)")
		"$LOG_SHOW" -o export --no-pager "$vdir/log" |
			LD_LIBRARY_PATH=$libs "$JOURNAL_REMOTE" -o "$vdir/all.journal" -
	fi
	touch "$vdir/done-$VERIFY_MB"
fi
size=$(du -sm "$vdir/log" | cut -f1)
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
cat "$vdir"/log/@* "$vdir"/log/current > /dev/null
t0=$(date +%s.%N); "$LOG_SHOW" --verify "$vdir/verify" "$vdir/log"; t1=$(date +%s.%N)
echo "log-show --verify: $size MiB in $(echo "$t1 - $t0" | bc) s"
if [ "$JOURNAL" = 1 ]; then
	# journal-remote rotates its output: all*.journal, as journalctl globs it.
	jsize=$(cat "$vdir"/all*.journal | wc -c); jsize=$((jsize / 1048576))
	cat "$vdir"/all*.journal > /dev/null
	t0=$(date +%s.%N); journalctl --verify --file="$vdir/all*.journal" 2>&1 | tail -1; t1=$(date +%s.%N)
	echo "journalctl --verify: $jsize MiB journal of the same lines in $(echo "$t1 - $t0" | bc) s"
fi
