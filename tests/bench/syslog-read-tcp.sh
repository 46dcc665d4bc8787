#!/bin/sh
# syslog-read --tcp against rsyslog (imptcp) and syslog-ng (syslog()),
# side by side in one run: loggen (syslog-ng's, unpacked by make deps)
# sends RFC 5424 messages of SIZE bytes, octet-counted, over CONNS TCP
# connections (default "1 4") for SEND_SECONDS seconds (default 10), as fast as the
# receiver takes them. Each receiver writes what it receives to tmpfs:
# rill as under a supervisor, syslog-read into a pipe to cyclog (a log
# directory); rsyslog and syslog-ng into a file each. Reports the median
# of RUNS runs of each: messages written per second (from loggen's start
# to the last line written), the receiver's CPU time (user + system; for
# rill syslog-read's and cyclog's together) per message, and its peak
# resident memory (rill: both processes added); and the sender's CPU
# time (loggen's, or the sendfile sender's), which says when the sender,
# not the receiver, is what sets the rate.
#
# TRANSPORT=tls runs the same over TLS (loggen -U; syslog-read --tls,
# rsyslog imtcp with gtls, syslog-ng syslog() with tls(); certificates made
# here with openssl, no client certificates).
# READERS picks some of the receivers (default: all, in the order below).
#
# SENDER=file (TCP only) replaces loggen, which on 2 cores takes one core
# and so measures itself: MESSAGES messages (default 2,000,000) of SIZE
# bytes, octet-counted, made once into a file and sent with sendfile(2)
# over CONNS connections (each its share), which costs the sender almost
# nothing: the receivers' ceiling.
set -eu

SEND_SECONDS=${SEND_SECONDS:-10}
RUNS=${RUNS:-3}
SIZE=${SIZE:-200}
CONNS=${CONNS:-1 4}
. "$(dirname "$0")/lib.sh"
BENCH_DIR=${BENCH_DIR:-$top/target/bench/syslog-read-tcp}
SYSLOG_READ=${SYSLOG_READ:-$top/target/release/syslog-read}
CYCLOG=${CYCLOG:-$top/target/release/cyclog}
PEERS=${RILL_PEERS:-/opt/rill-peers}
NG=$PEERS/syslog-ng-core
if [ -z "${OUT_DIR:-}" ]; then
	if [ -d /dev/shm ] && [ -w /dev/shm ]; then OUT_DIR=/dev/shm/rill-bench-tcp-$$; else OUT_DIR=$BENCH_DIR/out; fi
fi
READERS=${READERS:-syslog-read rsyslog syslog-ng}
TRANSPORT=${TRANSPORT:-tcp}
# syslog-read as the shipped services run it.
RILL_OPTIONS=${RILL_OPTIONS:---own-pipe}
SENDER=${SENDER:-loggen}
MESSAGES=${MESSAGES:-2000000}
[ "$SENDER" = loggen ] || [ "$TRANSPORT" = tcp ] || { echo "SENDER=file is for TCP" >&2; exit 1; }

need rsyslogd pgrep /usr/bin/time
built "$SYSLOG_READ" "$CYCLOG"
[ -x "$NG/usr/bin/loggen" ] && [ -x "$NG/usr/sbin/syslog-ng" ] || { echo "missing syslog-ng-core in $NG: run make deps as root" >&2; exit 1; }
ng_env() { env SYSLOGNG_PREFIX="$NG/usr" LD_LIBRARY_PATH="$NG/usr/lib/syslog-ng:$NG/usr/lib" "$@"; }

mkdir -p "$BENCH_DIR" "$OUT_DIR"
trap 'rm -rf "$OUT_DIR"' EXIT
results=$BENCH_DIR/results
: > "$results"
port=$((20000 + $$ % 900))
if [ "$TRANSPORT" = tls ]; then
	need openssl
	(cd "$OUT_DIR" && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout key.pem -out cert.pem -days 2 -subj /CN=localhost \
		-addext subjectAltName=IP:127.0.0.1,DNS:localhost 2>/dev/null)
	# loggen's TLS plugin is its transport: no -i -S with it.
	loggen_transport=-U
else
	loggen_transport="-i -S"
fi

tcp_listening() {
	hex=$(printf '%04X' "$1")
	awk -v p=":$hex" '$2 ~ p"$" && $4 == "0A" { found = 1 } END { exit !found }' /proc/net/tcp
}

# count READER: lines written so far.
count() {
	case $1 in
	syslog-read) cat "$OUT_DIR"/logdir/current "$OUT_DIR"/logdir/@* 2>/dev/null | wc -l ;;
	*) wc -l < "$OUT_DIR/out" 2>/dev/null || echo 0 ;;
	esac
}

# run READER CONNS: one receiver, one loggen run, one line of results.
run() {
	reader=$1 conns=$2
	port=$((port + 1))
	rm -rf "$OUT_DIR/logdir" "$OUT_DIR/out" "$OUT_DIR"/time* "$OUT_DIR"/*.persist "$OUT_DIR"/ng.*
	case $reader in
	syslog-read)
		rm -f "$OUT_DIR/pipe"
		mkfifo "$OUT_DIR/pipe"
		/usr/bin/time -f '%U %S %M' -o "$OUT_DIR/time.cyclog" "$CYCLOG" --max-total-size 8G "$OUT_DIR/logdir" < "$OUT_DIR/pipe" 2>/dev/null &
		writer=$!
		if [ "$TRANSPORT" = tls ]; then
			set -- "$SYSLOG_READ" $RILL_OPTIONS --tls "127.0.0.1:$port" --cert "$OUT_DIR/cert.pem" --key "$OUT_DIR/key.pem"
		else
			set -- "$SYSLOG_READ" $RILL_OPTIONS --tcp "127.0.0.1:$port"
		fi
		;;
	rsyslog)
		writer=
		if [ "$TRANSPORT" = tls ]; then
			cat > "$OUT_DIR/rsyslog.conf" <<-EOF
			global(workDirectory="$OUT_DIR" DefaultNetstreamDriverCertFile="$OUT_DIR/cert.pem"
			       DefaultNetstreamDriverKeyFile="$OUT_DIR/key.pem" DefaultNetstreamDriverCAFile="$OUT_DIR/cert.pem")
			module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")
			ruleset(name="r") { action(type="omfile" file="$OUT_DIR/out" template="RSYSLOG_FileFormat") }
			input(type="imtcp" port="$port" address="127.0.0.1" ruleset="r")
			EOF
		else
			cat > "$OUT_DIR/rsyslog.conf" <<-EOF
			global(workDirectory="$OUT_DIR")
			module(load="imptcp")
			ruleset(name="r") { action(type="omfile" file="$OUT_DIR/out" template="RSYSLOG_FileFormat") }
			input(type="imptcp" port="$port" address="127.0.0.1" ruleset="r")
			EOF
		fi
		set -- rsyslogd -n -f "$OUT_DIR/rsyslog.conf" -i "$OUT_DIR/rsyslog.pid"
		;;
	syslog-ng)
		writer=
		ng_tls=
		[ "$TRANSPORT" != tls ] || ng_tls=" tls(key-file(\"$OUT_DIR/key.pem\") cert-file(\"$OUT_DIR/cert.pem\") peer-verify(optional-untrusted))"
		cat > "$OUT_DIR/ng.conf" <<-EOF
		@version: 3.38
		options { stats_freq(0); keep_hostname(yes); use_dns(no); dns_cache(no); };
		source s { syslog(ip("127.0.0.1") port($port) transport("$TRANSPORT") max-connections(64)$ng_tls); };
		destination d { file("$OUT_DIR/out"); };
		log { source(s); destination(d); };
		EOF
		set -- env LD_LIBRARY_PATH="$NG/usr/lib/syslog-ng" "$NG/usr/sbin/syslog-ng" -F -f "$OUT_DIR/ng.conf" \
			--module-path="$NG/usr/lib/syslog-ng/3.38" -R "$OUT_DIR/ng.persist" -p "$OUT_DIR/ng.pid" \
			-c "$OUT_DIR/ng.ctl" --no-caps
		;;
	esac
	if [ "$reader" = syslog-read ]; then
		/usr/bin/time -f '%U %S %M' -o "$OUT_DIR/time" "$@" > "$OUT_DIR/pipe" 2> "$OUT_DIR/stderr" &
	else
		/usr/bin/time -f '%U %S %M' -o "$OUT_DIR/time" "$@" > /dev/null 2> "$OUT_DIR/stderr" &
	fi
	timer=$!
	i=0
	until tcp_listening "$port"; do
		i=$((i + 1)); [ "$i" -lt 200 ] || { echo "$reader did not start: $(cat "$OUT_DIR/stderr")" >&2; exit 1; }
		sleep 0.05
	done
	sleep 0.3
	start=$(date +%s.%N)
	if [ "$SENDER" = file ]; then
		per=$((MESSAGES / conns))
		[ -f "$BENCH_DIR/messages.$per" ] || awk -v n="$per" -v size="$SIZE" 'BEGIN {
			head = "<13>1 2026-12-01T00:00:00.000000+00:00 bench app 1234 - - "
			pad = sprintf("%" (size - length(head) - 10) "s", ""); gsub(/ /, "x", pad)
			for (i = 0; i < n; i++) { m = head sprintf("%010d", i) pad; printf "%d %s", length(m), m } }' \
			> "$BENCH_DIR/messages.$per"
		/usr/bin/time -f '%U %S' -o "$OUT_DIR/time.sender" python3 -c '
import socket, sys, threading
port, conns, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def send():
    with socket.create_connection(("127.0.0.1", port)) as s, open(path, "rb") as f:
        s.sendfile(f)
threads = [threading.Thread(target=send) for _ in range(conns)]
for t in threads: t.start()
for t in threads: t.join()
' "$port" "$conns" "$BENCH_DIR/messages.$per"
		sent=$((per * conns))
	else
		ng_env /usr/bin/time -f '%U %S' -o "$OUT_DIR/time.sender" "$NG/usr/bin/loggen" $loggen_transport -P -s "$SIZE" -r 100000000 --active-connections="$conns" -I "$SEND_SECONDS" \
			127.0.0.1 "$port" > "$OUT_DIR/loggen.out" 2>&1 || :
		sent=$(sed -n 's/.*count=\([0-9]*\).*/\1/p' "$OUT_DIR/loggen.out" | tail -n 1)
	fi
	# Until the bytes written stand still for a second (at most 60 s): the
	# time of the last change is the end. Sizes, not lines, are watched,
	# every 10 ms, by one process: counting lines as they come would take
	# CPU from the receiver and blur the end by the time between counts.
	end=$(python3 -c '
import glob, os, sys, time
def written():
    total = 0
    for path in glob.glob(sys.argv[1]):
        try: total += os.stat(path).st_size
        except OSError: pass
    return total
last, end, began = -1, time.time(), time.time()
while time.time() - end < 1 and time.time() - began < 60:
    n = written()
    if n != last: last, end = n, time.time()
    time.sleep(0.01)
print("%.6f" % end)
' "$(case $reader in syslog-read) echo "$OUT_DIR/logdir/[@c]*" ;; *) echo "$OUT_DIR/out" ;; esac)")
	kill -TERM "$(pgrep -P "$timer" | head -n 1)"
	wait "$timer" || :
	[ -z "$writer" ] || wait "$writer" || :
	n=$(count "$reader")
	cpu=$(tail -n 1 "$OUT_DIR/time" | awk '{ print $1 + $2 }')
	rss=$(tail -n 1 "$OUT_DIR/time" | awk '{ print $3 }')
	if [ "$reader" = syslog-read ]; then
		cpu=$(tail -n 1 "$OUT_DIR/time.cyclog" | awk -v c="$cpu" '{ print c + $1 + $2 }')
		rss=$(tail -n 1 "$OUT_DIR/time.cyclog" | awk -v m="$rss" '{ print m + $3 }')
	fi
	rate=$(awk -v n="$n" -v a="$start" -v b="$end" 'BEGIN { printf "%d", n / (b - a) }')
	sender=$(tail -n 1 "$OUT_DIR/time.sender" | awk '{ print $1 + $2 }')
	echo "$reader $conns $rate $cpu $rss $n ${sent:-0} $sender" >> "$results"
}

for r in $(seq "$RUNS"); do
	for conns in $CONNS; do
		for reader in $READERS; do run "$reader" "$conns"; done
	done
done

if [ "$SENDER" = file ]; then
	echo "sendfile, $MESSAGES $SIZE-byte RFC 5424 messages over $TRANSPORT, median of $RUNS runs, $(nproc) cores, $(uname -r)"
else
	echo "loggen, $SIZE-byte RFC 5424 messages over $TRANSPORT, ${SEND_SECONDS}s, median of $RUNS runs, $(nproc) cores, $(uname -r)"
fi
awk -v readers="$READERS" -v conns="$CONNS" "$median"'
	{ k = $1 " " $2; rate[k] = rate[k] " " $3; cpu[k] = cpu[k] " " $4; rss[k] = rss[k] " " $5
	  per[k] = per[k] " " ($6 > 0 ? $4 / $6 * 1e6 : 0); lost[k] = lost[k] " " ($7 - $6); sender[k] = sender[k] " " $8 }
	END {
		n = split(readers, order, " ")
		nc = split(conns, conn, " ")
		printf "| receiver | connections | msg/s written | CPU s | CPU µs/message | peak RSS KiB | unwritten | msg/s vs rsyslog | CPU/message vs rsyslog | sender CPU s |\n"
		printf "|---|---|---|---|---|---|---|---|---|---|\n"
		for (c = 1; c <= nc; c++) {
			base = "rsyslog " conn[c]
			brate = median(rate[base]); bper = median(per[base])
			for (k = 1; k <= n; k++) {
				key = order[k] " " conn[c]
				r = median(rate[key]); p = median(per[key])
				vr = (brate > 0) ? r / brate : 0; vp = (bper > 0) ? p / bper : 0
				printf "| %s | %s | %d | %.2f | %.2f | %d | %d | %.2f | %.2f | %.2f |\n", order[k], conn[c], r,
					median(cpu[key]), p, median(rss[key]), median(lost[key]), vr, vp, median(sender[key])
			}
		}
	}' "$results"
