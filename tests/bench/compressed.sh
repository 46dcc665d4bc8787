#!/bin/sh
# log-show through archives a processor compressed: one log directory of
# SIZE_MB MiB (16 MiB archives, lines of about 100 bytes) three times, its
# archives plain, gzip'd and zstd'd under their own names (as cyclog's
# --processor leaves them), read
#  1. whole: log-show on each, against zcat/zstdcat | s6-tai64nlocal;
#  2. a one-minute window in the middle (one archive decompressed);
#  3. peak memory of log-show reading everything compressed.
# hyperfine times each (warm page cache). Each command's lines are checked
# to be the same first.
set -eu

SIZE_MB=${SIZE_MB:-256}
RUNS=${RUNS:-5}
. "$(dirname "$0")/lib.sh"
BENCH_DIR=${BENCH_DIR:-$top/target/bench}
LOG_SHOW=${LOG_SHOW:-$top/target/release/log-show}

need s6-tai64nlocal hyperfine gzip zstd zcat zstdcat /usr/bin/time
built "$LOG_SHOW"
export TZ=UTC LC_ALL=C

# 2026-11-21T00:00:00Z, as Unix time; the lines span a day from there.
start=1795219200
span=86400
base=$BENCH_DIR/compressed-$SIZE_MB
plain=$base/plain gz=$base/gzip zst=$base/zstd
if [ ! -f "$zst/current" ]; then
	rm -rf "$base"; mkdir -p "$plain"
	log_directory "$plain" "$SIZE_MB" "$start" "$span" 0
	for kind in gzip zstd; do
		mkdir -p "$base/$kind"
		cp "$plain/current" "$base/$kind/current"
		for a in "$plain"/@*.s; do
			"$kind" -q -c <"$a" >"$base/$kind/${a##*/}"
		done
	done
fi

from=$((start + span / 2))
to=$((from + 60))
iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }

sum() { "$LOG_SHOW" "$@" | md5sum; }
want=$(sum "$plain")
[ "$(sum "$gz")" = "$want" ] && [ "$(sum "$zst")" = "$want" ] ||
	{ echo "log-show shows other lines from compressed archives" >&2; exit 1; }
[ "$(sh -c "zcat $gz/@*.s | cat - $gz/current" | wc -l)" = "$("$LOG_SHOW" "$gz" | wc -l)" ] ||
	{ echo "zcat gives other lines" >&2; exit 1; }
w=$(sum --since "$(iso $from)" --until "$(iso $to)" "$plain")
[ "$(sum --since "$(iso $from)" --until "$(iso $to)" "$gz")" = "$w" ] ||
	{ echo "window differs" >&2; exit 1; }

results=$BENCH_DIR/compressed-results
rm -rf "$results"; mkdir -p "$results"
bench() {
	name=$1; shift
	hyperfine --style none --warmup 1 --runs "$RUNS" --export-markdown "$results/$name.md" "$@" >/dev/null
}
bench everything \
	-n "log-show, plain" "$LOG_SHOW $plain >/dev/null" \
	-n "log-show, gzip" "$LOG_SHOW $gz >/dev/null" \
	-n "log-show, zstd" "$LOG_SHOW $zst >/dev/null" \
	-n "zcat | s6-tai64nlocal" "zcat $gz/@*.s | cat - $gz/current | s6-tai64nlocal >/dev/null" \
	-n "zstdcat | s6-tai64nlocal" "zstdcat -q $zst/@*.s | cat - $zst/current | s6-tai64nlocal >/dev/null"
bench window \
	-n "plain" "$LOG_SHOW --since $(iso $from) --until $(iso $to) $plain >/dev/null" \
	-n "gzip" "$LOG_SHOW --since $(iso $from) --until $(iso $to) $gz >/dev/null" \
	-n "zstd" "$LOG_SHOW --since $(iso $from) --until $(iso $to) $zst >/dev/null"

echo "$SIZE_MB MiB in $(ls "$plain" | wc -l) files ($(du -sm "$gz" | cut -f1) MiB gzip'd," \
	"$(du -sm "$zst" | cut -f1) MiB zstd'd); warm cache, $(nproc) cores, $(uname -r)"
for part in everything window; do
	echo; echo "$part:"; echo
	cat "$results/$part.md"
done
echo
for d in "$plain" "$gz" "$zst"; do
	/usr/bin/time -f "peak RSS of log-show, ${d##*/}: %M KiB" "$LOG_SHOW" "$d" >/dev/null
done
rm -rf "$results"
