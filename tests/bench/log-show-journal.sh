#!/bin/sh
# log-show against journalctl, side by side, on the same entries: a log
# directory of SIZE_MB MiB (16 MiB archives, reader lines of about 130
# bytes over a day, from a central server's point of view: 20 apps on 9
# hosts), and the same entries as a journal file, made by
# systemd-journal-remote from `log-show -o export`. Then each query both
# ways, each pair first checked to give the same entries (as `-o cat`,
# or the count of JSON objects):
#  window   a one-minute window near the end
#  last     -n 100
#  grep     -g a rare word (segfault: a line in a million)
#  err      -p err (bursts of errors, 40 every 500,000 lines, and the segfaults)
#  ident    -t CRON (a line a minute)
#  field    host=db1 (a line in a thousand, all day long)
#  json     -o json of the window
#  all      everything
#  follow   -f: the last 10 lines shown, while following
#  merge    the window, -n 100 and -p err over 8 directories, against 1
# hyperfine times each (warm page cache, log-show's summaries made by the
# warmup run, as journald's indexes are made when it writes).
set -eu

SIZE_MB=${SIZE_MB:-1024}
RUNS=${RUNS:-5}
. "$(dirname "$0")/lib.sh"
BENCH_DIR=${BENCH_DIR:-$top/target/bench}
LOG_SHOW=${LOG_SHOW:-$top/target/release/log-show}
PEERS=${PEERS:-/opt/rill-peers}
remote=$PEERS/systemd-journal-remote

need journalctl hyperfine
built "$LOG_SHOW"
[ -x "$remote/lib/systemd/systemd-journal-remote" ] ||
	{ echo "missing systemd-journal-remote: run make deps as root" >&2; exit 1; }
libs=$(dirname "$(find "$remote/usr/lib" -name 'libmicrohttpd.so.12' | head -n 1)")
export TZ=UTC LC_ALL=C

# 2026-11-21T00:00:00Z, as Unix time; the lines span a day from there.
start=1795219200
span=86400
dir=$BENCH_DIR/log-show-journal-$SIZE_MB/rill
journal=$BENCH_DIR/log-show-journal-$SIZE_MB/journal
if [ ! -f "$dir/current" ] || [ ! -f "$journal/all.journal" ]; then
	rm -rf "$(dirname "$dir")"; mkdir -p "$dir" "$journal"
	(cd "$dir" && awk -v mb="$SIZE_MB" -v secs="$start" -v span="$span" 'BEGIN {
		n = int(mb * 1048576 / 130); step = span * 1e9 / n; cron = int(n / 1440)
		s = secs + 37; ns = 0; size = 0; out = "next.tmp"; limit = 16 * 1048576
		for (i = 0; i < n; i++) {
			k = i % 20; pid = 1000 + i % 7919; host = "web" (1 + i % 8)
			if (i % 1000 == 7) host = "db1"
			if (cron && i % cron == 3)
				head = sprintf("cron.info CRON[%d]: (root) CMD (run-parts /etc/cron.hourly)", pid)
			else if (i % 1000003 == 500)
				head = sprintf("kern.err kernel: app[%d]: segfault at 0 ip 000055d5 sp 00007ffd error 4", pid)
			else if (i % 500000 < 40)
				head = sprintf("local0.err app[%d]: database connection refused (attempt %d)", pid, i % 500000)
			else if (k < 4)
				head = sprintf("auth.info sshd[%d]: Accepted publickey for user%d from 10.0.%d.%d port %d",
					pid, i % 97, i % 256, i % 251, 1024 + i % 60000)
			else if (k < 8)
				head = sprintf("daemon.info nginx[%d]: GET /api/v1/items/%d HTTP/1.1 200 %d", pid, i % 10007, i % 65536)
			else if (k < 12)
				head = sprintf("user.%s worker[%d]: request %d served in %d us", k == 8 ? "notice" : "info", pid, i, i % 9973)
			else if (k == 12)
				head = sprintf("mail.info postfix/smtpd[%d]: connect from mx%d.example.net", pid, i % 50)
			else if (k == 13)
				head = sprintf("kern.info kernel: eth0: rx %d packets", i)
			else if (k < 18)
				head = sprintf("local0.info app[%d]: job %d done in %d ms", pid, i % 100000, i % 997)
			else if (k == 18)
				head = sprintf("daemon.notice systemd[1]: Started session %d of user user%d.", i % 4000, i % 97)
			else
				head = sprintf("daemon.warning smartd[%d]: disk /dev/sd%c usage %d%%", pid, 97 + i % 4, 80 + i % 20)
			line = sprintf("@40000000%08x%08x %s\thost=%s uid=%d\n", s, ns, head, host, i % 3 ? 0 : 1000)
			printf "%s", line > out
			size += length(line)
			if (size >= limit) {
				close(out)
				system(sprintf("mv %s @40000000%08x%08x.s", out, s, ns + 1))
				size = 0
			}
			ns += step
			while (ns >= 1e9) { ns -= 1e9; s++ }
		}
		close(out); system("mv " out " current")
	}')
	"$LOG_SHOW" -o export "$dir" |
		LD_LIBRARY_PATH=$libs "$remote/lib/systemd/systemd-journal-remote" -o "$journal/all.journal" - 2>/dev/null
fi

# A minute, ending five minutes before the last line.
from=$((start + span - 360))
to=$((from + 60))
iso() { date -u -d "@$1" "+%Y-%m-%d %H:%M:%S"; }
ls="$LOG_SHOW --utc --no-pager"
jc="journalctl --directory $journal --utc --no-pager"
win="--since '$(iso $from)' --until '$(iso $to)'"

# The same entries both ways, as their messages.
same() {
	name=$1; ours=$2; theirs=$3
	a=$(sh -c "$ls -o cat $ours $dir" | md5sum)
	b=$(sh -c "$jc -o cat $theirs" | md5sum)
	n=$(sh -c "$ls -o cat $ours $dir" | wc -l)
	[ "$a" = "$b" ] && [ "$n" -gt 0 ] ||
		{ echo "$name: log-show and journalctl do not show the same entries" >&2; exit 1; }
	echo "$name: $n entries, the same both ways"
}
same window "$win" "$win"
same last "-n 100" "-n 100"
same grep "-g segfault" "-g segfault"
same err "-p err" "-p err"
same ident "-t CRON" "-t CRON"
same field "host=db1" "_HOSTNAME=db1"
a=$(sh -c "$ls -o json $win $dir" | wc -l)
b=$(sh -c "$jc -o json $win" | wc -l)
[ "$a" = "$b" ] || { echo "json: $a objects against $b" >&2; exit 1; }
same all "" ""

# The last 10 lines shown by a follower: it is stopped once they are.
fifo=$BENCH_DIR/log-show-journal-$SIZE_MB/fifo
rm -f "$fifo"; mkfifo "$fifo"
follow() { echo "sh -c '$1 -f -n 10 > $fifo & p=\$!; head -n 10 $fifo >/dev/null; kill \$p; wait \$p 2>/dev/null; true'"; }

results=$BENCH_DIR/log-show-journal-results
rm -rf "$results"; mkdir -p "$results"
bench() {
	name=$1; ours=$2; theirs=$3; runs=${4:-$RUNS}
	hyperfine --style none --warmup 1 --runs "$runs" --export-markdown "$results/$name.md" \
		-n "log-show $ours" "$ls $ours $dir >/dev/null" \
		-n "journalctl $theirs" "$jc $theirs >/dev/null" >/dev/null
}
bench window "$win" "$win"
bench last "-n 100" "-n 100"
bench grep "-g segfault" "-g segfault"
bench err "-p err" "-p err"
bench ident "-t CRON" "-t CRON"
bench field "host=db1" "_HOSTNAME=db1"
bench json "-o json $win" "-o json $win"
bench all "" "" 3
hyperfine --style none --warmup 1 --runs "$RUNS" --export-markdown "$results/follow.md" \
	-n "log-show -f" "$(follow "$ls $dir")" \
	-n "journalctl -f" "$(follow "$jc")" >/dev/null

# K directories merged: the window and -n 100 over 8 copies of the
# directory (hard links, summaries and all) against over one.
copies=$BENCH_DIR/log-show-journal-$SIZE_MB/copies
if [ ! -d "$copies/7" ]; then
	rm -rf "$copies"; mkdir -p "$copies"
	for k in 0 1 2 3 4 5 6 7; do cp -al "$dir" "$copies/$k"; done
fi
eight="$copies/0 $copies/1 $copies/2 $copies/3 $copies/4 $copies/5 $copies/6 $copies/7"
hyperfine --style none --warmup 1 --runs "$RUNS" --export-markdown "$results/merge.md" \
	-n "log-show window, 1 directory" "$ls $win $dir >/dev/null" \
	-n "log-show window, 8 directories" "$ls $win $eight >/dev/null" \
	-n "log-show -n 100, 1 directory" "$ls -n 100 $dir >/dev/null" \
	-n "log-show -n 100, 8 directories" "$ls -n 100 $eight >/dev/null" \
	-n "log-show -p err, 8 directories" "$ls -p err $eight >/dev/null" >/dev/null

echo
echo "$SIZE_MB MiB in $(ls "$dir" | wc -l) files, $(wc -l < "$dir/current") lines in current;" \
	"journal $(du -m "$journal" | cut -f1) MiB in $(ls "$journal" | wc -l) files; warm cache, $(nproc) cores, $(uname -r)"
for part in window last grep err ident field json all follow merge; do
	echo; echo "$part:"; echo
	cat "$results/$part.md"
done
rm -rf "$results"
