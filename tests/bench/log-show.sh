#!/bin/sh
# log-show against reading a log directory the daemontools way, side by
# side: a directory of SIZE_MB MiB (16 MiB archives, a day of lines of
# about 100 bytes, a quarter of them syslog-read lines), then
#  1. a one-minute window near the end: log-show --since/--until, against
#     cat | s6-tai64nlocal | awk and cat | tai64nlocal | awk;
#  2. the last 100 lines: log-show -n 100, against tail | s6-tai64nlocal;
#  3. everything, shown: log-show, against cat | s6-tai64nlocal and
#     cat | tai64nlocal.
# hyperfine times each (warm page cache) and gives the ratios. Each
# command's lines are checked to be the same first.
set -eu

SIZE_MB=${SIZE_MB:-1024}
RUNS=${RUNS:-10}
. "$(dirname "$0")/lib.sh"
BENCH_DIR=${BENCH_DIR:-$top/target/bench}
LOG_SHOW=${LOG_SHOW:-$top/target/release/log-show}

need s6-tai64nlocal tai64nlocal hyperfine
built "$LOG_SHOW"
export TZ=UTC LC_ALL=C

# 2026-11-21T00:00:00Z, as Unix time; the lines span a day from there.
start=1795219200
span=86400
dir=$BENCH_DIR/log-show-$SIZE_MB
if [ ! -f "$dir/current" ]; then
	rm -rf "$dir"; mkdir -p "$dir"
	log_directory "$dir" "$SIZE_MB" "$start" "$span" 4
fi

# A minute, ending five minutes before the last line.
from=$((start + span - 360))
to=$((from + 60))
iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }
plain() { date -u -d "@$1" "+%Y-%m-%d %H:%M:%S.000000000"; }
# tai64nlocal shows these stamps 27 s late: its window is 27 s later.
window="awk -v s='$(plain $from)' -v u='$(plain $to)' 'substr(\$0, 1, 29) >= s && substr(\$0, 1, 29) <= u'"
window_dt="awk -v s='$(plain $((from + 27)))' -v u='$(plain $((to + 27)))' 'substr(\$0, 1, 29) >= s && substr(\$0, 1, 29) <= u'"
all="cat $dir/@*.s $dir/current"

ours=$("$LOG_SHOW" --utc --since "$(iso $from)" --until "$(iso $to)" "$dir" | wc -l)
theirs=$(sh -c "$all | s6-tai64nlocal | $window" | wc -l)
dt=$(sh -c "$all | tai64nlocal | $window_dt" | wc -l)
[ "$ours" = "$theirs" ] && [ "$ours" = "$dt" ] && [ "$ours" -gt 0 ] ||
	{ echo "window: log-show $ours lines, s6-tai64nlocal $theirs, tai64nlocal $dt" >&2; exit 1; }
n=$("$LOG_SHOW" "$dir" | wc -l)
[ "$n" = "$(cat "$dir"/@*.s "$dir"/current | wc -l)" ] || { echo "log-show showed $n lines" >&2; exit 1; }

results=$BENCH_DIR/log-show-results
rm -rf "$results"; mkdir -p "$results"
bench() {
	name=$1; runs=$2; shift 2
	hyperfine --style none --warmup 1 --runs "$runs" --export-markdown "$results/$name.md" "$@" >/dev/null
}
bench window "$RUNS" \
	-n "log-show --since --until" "$LOG_SHOW --utc --since $(iso $from) --until $(iso $to) $dir >/dev/null" \
	-n "cat | s6-tai64nlocal | awk" "$all | s6-tai64nlocal | $window >/dev/null" \
	-n "cat | tai64nlocal | awk" "$all | tai64nlocal | $window_dt >/dev/null"
bench last "$RUNS" \
	-n "log-show -n 100" "$LOG_SHOW -n 100 $dir >/dev/null" \
	-n "tail -n 100 current | s6-tai64nlocal" "tail -n 100 $dir/current | s6-tai64nlocal >/dev/null"
bench everything 3 \
	-n "log-show" "$LOG_SHOW $dir >/dev/null" \
	-n "cat | s6-tai64nlocal" "$all | s6-tai64nlocal >/dev/null" \
	-n "cat | tai64nlocal" "$all | tai64nlocal >/dev/null"

echo "$SIZE_MB MiB in $(ls "$dir" | wc -l) files, $n lines; a window of $ours lines;" \
	"warm cache, $(nproc) cores, $(uname -r)"
for part in window last everything; do
	echo; echo "$part:"; echo
	# hyperfine's table, the command column shortened to its name.
	cat "$results/$part.md"
done
rm -rf "$results"
