#!/bin/sh
# export-to-remote against rsyslog's own forwarding, side by side in one
# run: LINES lines of 100 bytes in a log directory (written by cyclog),
# forwarded over TCP on loopback to one rsyslog receiver (imtcp, octet
# counting, writing each message to a file), by
#   - export-to-remote, through a cursor;
#   - rsyslogd with imfile reading the same file and omfwd sending it;
# and, for what reader lines cost, export-to-remote on LINES lines as
# syslog-read writes them (parsed back into priority, tag and fields);
# then the same over RELP to the receiver's imrelp: export-to-remote
# (relp://) against rsyslog's imfile and omrelp, and against the floor of
# the receiver: relp-floor.py sending every message at once, no window.
# Reports the median of RUNS runs of each: wall time until the receiver
# has every line, lines per second, and the CPU time and peak resident
# memory of the forwarder alone; and ratios.
set -eu

LINES=${LINES:-1000000}
RUNS=${RUNS:-3}
. "$(dirname "$0")/lib.sh"
BENCH_DIR=${BENCH_DIR:-$top/target/bench-export}
CYCLOG=${CYCLOG:-$top/target/release/cyclog}
EXPORT=${EXPORT:-$top/target/release/export-to-remote}

need rsyslogd /usr/bin/time
built "$CYCLOG" "$EXPORT"

rm -rf "$BENCH_DIR"
mkdir -p "$BENCH_DIR"
cd "$BENCH_DIR"
# All in one file.
lines_of_100 "$LINES" |
	"$CYCLOG" --max-file-size 4G --max-total-size 8G "$BENCH_DIR/log"
# About 100 bytes too, with the fields syslog-read adds for a local sender.
awk -v n="$LINES" 'BEGIN { for (i = 0; i < n; i++)
	printf "auth.info sshd[%d]: Accepted publickey for root from 10.0.%d.%d\tfmt=rfc3164 pid=%d uid=0 gid=0\n",
		i % 100000, i % 250, i % 200, i % 100000 }' |
	"$CYCLOG" --max-file-size 4G --max-total-size 8G "$BENCH_DIR/records"

# A loopback TCP port nothing uses, and the one after it.
port() {
	while :; do
		p=$(( $(od -An -N2 -tu2 /dev/urandom) % 28000 + 32768 ))
		grep -q ":$(printf %04X "$p") \|:$(printf %04X $((p + 1))) " /proc/net/tcp ||
			{ echo "$p"; return; }
	done
}

# The receiver: rsyslog, imtcp (port) and imrelp (port + 1) to a file,
# one line per message.
receiver() { # port dir
	mkdir -p "$2"
	cat > "$2/rsyslog.conf" <<-EOF
	global(workDirectory="$2")
	module(load="imtcp")
	module(load="imrelp")
	template(name="m" type="string" string="%msg%\n")
	ruleset(name="r") { action(type="omfile" file="$2/received" template="m") }
	input(type="imtcp" port="$1" address="127.0.0.1" ruleset="r")
	input(type="imrelp" port="$(($1 + 1))" address="127.0.0.1" ruleset="r")
	EOF
	rsyslogd -n -f "$2/rsyslog.conf" -i "$2/pid" 2>>"$2/stderr" &
	for q in "$1" "$(($1 + 1))"; do
		until grep -q ":$(printf %04X "$q") 00000000:0000 0A" /proc/net/tcp; do sleep 0.05; done
	done
}

# The forwarder under test: rsyslog, imfile to omfwd (or omrelp).
rsyslog_forwarder_conf() { # port dir [relp]
	mkdir -p "$2"
	if [ "${3:-}" = relp ]; then
		action="action(type=\"omrelp\" target=\"127.0.0.1\" port=\"$(($1 + 1))\"
			template=\"RSYSLOG_SyslogProtocol23Format\")"
	else
		action="action(type=\"omfwd\" target=\"127.0.0.1\" port=\"$1\" protocol=\"tcp\"
			tcp_framing=\"octet-counted\" template=\"RSYSLOG_SyslogProtocol23Format\")"
	fi
	cat > "$2/rsyslog.conf" <<-EOF
	global(workDirectory="$2")
	module(load="imfile" mode="inotify")
	module(load="omrelp")
	ruleset(name="f") {
		$action
	}
	input(type="imfile" file="$BENCH_DIR/log/current" tag="bench" ruleset="f")
	EOF
}
FORWARDERS=${FORWARDERS:-rsyslog export-to-remote reader-lines rsyslog-omrelp export-relp relp-floor}

now() { date +%s.%N; }
results=$BENCH_DIR/results
: > "$results"
for run in $(seq "$RUNS"); do
	for f in $FORWARDERS; do
		p=$(port)
		rm -rf recv fwd cursors
		receiver "$p" "$BENCH_DIR/recv"
		until [ -s recv/pid ]; do sleep 0.05; done
		recv=$!
		sync
		start=$(now)
		case $f in
		rsyslog|rsyslog-omrelp)
			rsyslog_forwarder_conf "$p" "$BENCH_DIR/fwd" "${f#rsyslog-om}"
			/usr/bin/time -f "$f %U %S %M" -a -o "$results.cpu" \
				rsyslogd -n -f "$BENCH_DIR/fwd/rsyslog.conf" -i "$BENCH_DIR/fwd/pid" 2>>"$BENCH_DIR/fwd.stderr" &
			;;
		export-to-remote|reader-lines|export-relp)
			mkdir -p cursors/bench
			if [ $f = reader-lines ]; then dir=records; else dir=log; fi
			if [ $f = export-relp ]; then to=relp://127.0.0.1:$((p + 1)); else to=tcp://127.0.0.1:$p; fi
			ln -s "$BENCH_DIR/$dir" cursors/bench/main
			/usr/bin/time -f "$f %U %S %M" -a -o "$results.cpu" \
				"$EXPORT" --to "$to" "$BENCH_DIR/cursors" 2>>"$BENCH_DIR/export.stderr" &
			;;
		relp-floor)
			/usr/bin/time -f "$f %U %S %M" -a -o "$results.cpu" \
				python3 "$top/tests/bench/relp-floor.py" 127.0.0.1 $((p + 1)) "$LINES" &
			;;
		esac
		timer=$!
		until [ "$( (wc -l < recv/received) 2>/dev/null || echo 0)" -ge "$LINES" ]; do sleep 0.05; done
		end=$(now)
		# relp-floor may be gone already.
		kill -TERM $(pgrep -P "$timer") 2>/dev/null || true
		wait "$timer" || true
		kill -TERM "$recv"
		wait "$recv" || true
		got=$(wc -l < recv/received)
		[ "$got" -eq "$LINES" ] || echo "warning: $f delivered $got lines, not $LINES" >&2
		echo "$f $start $end" | awk '{ print $1, $3 - $2 }' >> "$results"
	done
done

echo "$LINES lines of 100 bytes, TCP (and RELP) on loopback to rsyslog $(rsyslogd -v | awk 'NR == 1 { print $2 }'), median of $RUNS runs, $(nproc) cores, $(uname -r)"
awk "$median"'
	FILENAME ~ /cpu$/ { cpu[$1] = cpu[$1] " " ($2 + $3); rss[$1] = rss[$1] " " $4; next }
	{ wall[$1] = wall[$1] " " $2 }
	END {
		n = split("'"$FORWARDERS"'", order, " ")
		for (k = 1; k <= n; k++) { f = order[k]; W[f] = median(wall[f]); C[f] = median(cpu[f]); R[f] = median(rss[f]) }
		printf "| forwarder | wall s | lines/s | CPU s | peak RSS KiB | wall vs rsyslog | CPU vs rsyslog |\n"
		printf "|---|---|---|---|---|---|---|\n"
		for (k = 1; k <= n; k++) {
			f = order[k]
			# Over RELP, against rsyslog over RELP.
			base = f ~ /relp/ ? "rsyslog-omrelp" : "rsyslog"
			name = f == "reader-lines" ? "export-to-remote, reader lines" : f
			if (f == "export-relp") name = "export-to-remote, relp://"
			if (f == "rsyslog-omrelp") name = "rsyslog, omrelp"
			if (f == "relp-floor") name = "imrelp floor, no window"
			printf "| %s | %.2f | %.0f | %.2f | %d | %.2f | %.2f |\n", name, W[f], '"$LINES"' / W[f], C[f], R[f], W[f] / W[base], C[f] / C[base]
		}
	}' "$results.cpu" "$results"
rm -f "$results" "$results.cpu"
