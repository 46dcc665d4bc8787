#!/bin/sh
# journald's Forward Secure Sealing beside rill's sealing, on the edits of
# issue 16's tamper matrix that apply to a journal file. journalctl
# --setup-keys writes its key under /var/log/journal only, and
# systemd-journal-remote --seal reads it there: both run in a private
# mount namespace (unshare -m, as root) where /var/log is a tmpfs, so the
# machine's own /var/log is never touched. Prints one line per edit.
set -eu
. "$(dirname "$0")/lib.sh"
BENCH_DIR=${BENCH_DIR:-$top/target/bench}
REMOTE_DIR=${REMOTE_DIR:-/opt/rill-peers/systemd-journal-remote}
need unshare journalctl python3
w=$BENCH_DIR/fss
rm -rf "$w"; mkdir -p "$w"
export LD_LIBRARY_PATH="$(dirname "$(find "$REMOTE_DIR/usr/lib" -name libmicrohttpd.so.12 | head -1)")"
remote=$REMOTE_DIR/lib/systemd/systemd-journal-remote
# 8000 entries stamped now (FSS refuses entries older than its epoch).
python3 -c '
import time, sys
now = int(time.time() * 1e6)
for i in range(8000):
    sys.stdout.write(f"__REALTIME_TIMESTAMP={now + i}\n__MONOTONIC_TIMESTAMP={1000000 + i}\n"
        f"_BOOT_ID=0123456789abcdef0123456789abcdef\nMESSAGE=line {i:08d} xxxxxxxxxxxxxxxxxxxxxxxx\n\n")
' > "$w/export"
unshare -m --propagation private sh -c '
	mount -t tmpfs tmpfs /var/log
	mkdir -p /var/log/journal/$(cat /etc/machine-id)
	journalctl --setup-keys --interval=15min > "$1/key" 2>/dev/null
	"$2" --seal=yes --compress=no -o "$1/sealed.journal" - < "$1/export" 2>/dev/null
' sh "$w" "$remote"
"$remote" --seal=no --compress=no -o "$w/plain.journal" - < "$w/export" 2>/dev/null
key=$(head -1 "$w/key")
python3 - "$w" <<'PY'
import sys
w = sys.argv[1]
d = open(f"{w}/sealed.journal", "rb").read()
def put(name, data): open(f"{w}/{name}.journal", "wb").write(data)
i = d.find(b"line 00004000"); e = bytearray(d); e[i + 5] ^= 1; put("byte", e)
a, b = d.find(b"line 00004001"), d.find(b"line 00004002")
e = bytearray(d); e[a:a + 13], e[b:b + 13] = d[b:b + 13], d[a:a + 13]; put("reorder", e)
put("truncated", d[: len(d) // 3])
PY
verdict() {
	out=$(journalctl --verify --verify-key="$2" --file="$w/$1.journal" 2>&1 || true)
	case $out in *PASS:*) echo passes ;; *) echo "fails ($(echo "$out" | tail -1))" ;; esac
}
echo "honest sealed journal: $(verdict sealed "$key")"
echo "one byte of a message edited: $(verdict byte "$key")"
echo "two messages swapped: $(verdict reorder "$key")"
echo "file truncated to a third: $(verdict truncated "$key")"
echo "a journal never sealed, given the key: $(verdict plain "$key")"
echo "a wrong key: $(verdict sealed 0123ab-cdef01-234567-89abcd/1e7393-35a4e900)"
