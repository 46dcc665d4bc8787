#!/bin/sh
# syslog-read against socklog, s6-socklog and rsyslog (imuxsock, imudp),
# side by side in one run: COUNT datagrams of SIZE bytes from a C flood
# client (flood.c, built here with cc) over a unix socket and over UDP on
# loopback, into each reader in turn. Reports the median of RUNS runs of
# each: the reader's CPU time (user + system, its own process), CPU per
# message received, and messages lost (COUNT less the lines written).
# "floor" (floor.c) only receives, as cheaply as the kernel allows, and
# writes nothing: what no reader can spend less than. "floor-write" also
# writes each datagram as it came, and a LF, into the pipe: what no reader
# that writes its lines can spend less than (on this machine, writing 80 MB
# into a pipe costs the kernel about 0.03 s, 5% of a fast floor). "vs
# floor" is the median, over the runs, of each run's reader against that
# run's floor ("vs floor-write" likewise): the kernel's cost a datagram
# shifts between runs (on this machine, a unix-socket floor took 0.57 s in
# some runs and 1.1 s in others, and the readers with it), and a ratio of
# medians taken from different states says little.
#
# The readers write into a pipe, as under a supervisor, which cat empties
# into OUT_DIR (tmpfs by default, so that the disk is not what is
# measured). rsyslog runs with a private configuration and pid file
# and does not take /dev/log. Run as root, as CI does: the readers may then
# raise their UDP receive buffers as far as they would on a real system.
#
# syslog-read runs with --own-pipe, as its service definitions run it (a
# log service of its own: lines go out in pieces as large as the pipe
# takes). "shared-pipe" is syslog-read without it: each write whole lines
# of at most PIPE_BUF bytes, as a pipe other writers share needs, which
# on a flood takes about ten times as many writes.
#
# "limited" is syslog-read with --rate-limit 1000/1s: the flood is one
# sender, so nearly all of it is dropped by the rate limit (its "lost");
# its CPU per message is per message received, all of them, and says what
# a limited flooder costs.
#
# TRANSPORTS picks unix or udp (default both), READERS some of the readers (the default: all, in the order below);
# BASELINE=PROGRAM adds "baseline", another syslog-read build run the same
# way, to compare two builds in one run.
set -eu

COUNT=${COUNT:-500000}
RUNS=${RUNS:-5}
SIZE=${SIZE:-110}
. "$(dirname "$0")/lib.sh"
BENCH_DIR=${BENCH_DIR:-$top/target/bench/syslog-read}
SYSLOG_READ=${SYSLOG_READ:-$top/target/release/syslog-read}
if [ -z "${OUT_DIR:-}" ]; then
	if [ -d /dev/shm ] && [ -w /dev/shm ]; then OUT_DIR=/dev/shm/rill-bench-$$; else OUT_DIR=$BENCH_DIR/out; fi
fi
TRANSPORTS=${TRANSPORTS:-unix udp}
READERS=${READERS:-syslog-read shared-pipe limited socklog s6-socklog rsyslog floor floor-write}
if [ -n "${BASELINE:-}" ]; then READERS="baseline $READERS"; fi
case " $READERS " in *" socklog "*) ;; *) echo "READERS must have socklog, the reference" >&2; exit 1 ;; esac

need socklog s6-socklog rsyslogd cc pgrep /usr/bin/time
built "$SYSLOG_READ"

mkdir -p "$BENCH_DIR" "$OUT_DIR"
trap 'rm -rf "$OUT_DIR"' EXIT
flood=$BENCH_DIR/flood floor=$BENCH_DIR/floor
cc -O2 -o "$flood" "$top/tests/bench/flood.c"
cc -O2 -o "$floor" "$top/tests/bench/floor.c"

sock=$OUT_DIR/log.sock
out=$OUT_DIR/out
times=$OUT_DIR/time
results=$BENCH_DIR/results
: > "$results"
# A port of our own for each run of this script.
port=$((20000 + $$ % 20000))

udp_bound() {
	hex=$(printf '%04X' "$1")
	grep -q ":$hex " /proc/net/udp /proc/net/udp6 2>/dev/null
}

rsyslog_conf() {
	conf=$OUT_DIR/rsyslog.conf
	{
		echo "global(workDirectory=\"$OUT_DIR\")"
		if [ "$1" = unix ]; then
			echo 'module(load="imuxsock" SysSock.Use="off")'
			echo "input(type=\"imuxsock\" Socket=\"$sock\" RateLimit.Interval=\"0\")"
		else
			echo 'module(load="imudp")'
			echo "input(type=\"imudp\" Address=\"127.0.0.1\" Port=\"$port\")"
		fi
		echo "*.* action(type=\"omfile\" File=\"$out\" Template=\"RSYSLOG_TraditionalFileFormat\")"
	} > "$conf"
	echo "$conf"
}

# run READER TRANSPORT: one reader, one flood, one line of results.
run() {
	reader=$1 transport=$2
	rm -f "$sock" "$out" "$times"
	port=$((port + 1))
	if [ "$transport" = unix ]; then
		case $reader in
		syslog-read) set -- "$SYSLOG_READ" --own-pipe --unix "$sock" ;;
		shared-pipe) set -- "$SYSLOG_READ" --unix "$sock" ;;
		baseline) set -- "$BASELINE" --own-pipe --unix "$sock" ;;
		limited) set -- "$SYSLOG_READ" --own-pipe --unix "$sock" --rate-limit 1000/1s ;;
		socklog) set -- socklog unix "$sock" ;;
		s6-socklog) set -- s6-socklog -x "$sock" ;;
		rsyslog) set -- rsyslogd -n -f "$(rsyslog_conf unix)" -i "$OUT_DIR/rsyslog.pid" ;;
		floor) set -- "$floor" unix "$sock" ;;
		floor-write) set -- "$floor" unix "$sock" write ;;
		esac
	else
		case $reader in
		syslog-read) set -- "$SYSLOG_READ" --own-pipe --udp "127.0.0.1:$port" ;;
		shared-pipe) set -- "$SYSLOG_READ" --udp "127.0.0.1:$port" ;;
		baseline) set -- "$BASELINE" --own-pipe --udp "127.0.0.1:$port" ;;
		limited) set -- "$SYSLOG_READ" --own-pipe --udp "127.0.0.1:$port" --rate-limit 1000/1s ;;
		socklog) set -- socklog inet 127.0.0.1 "$port" ;;
		s6-socklog) set -- s6-socklog -i "127.0.0.1_$port" ;;
		rsyslog) set -- rsyslogd -n -f "$(rsyslog_conf udp)" -i "$OUT_DIR/rsyslog.pid" ;;
		floor) set -- "$floor" udp 127.0.0.1 "$port" ;;
		floor-write) set -- "$floor" udp 127.0.0.1 "$port" write ;;
		esac
	fi
	# Each writes into a pipe, as under a supervisor; cat empties it.
	rm -f "$OUT_DIR/pipe"
	mkfifo "$OUT_DIR/pipe"
	cat "$OUT_DIR/pipe" > "$OUT_DIR/stdout" &
	drain=$!
	# socklog would drop privileges to $UID/$GID if they were set.
	env -u UID -u GID /usr/bin/time -f '%U %S' -o "$times" "$@" > "$OUT_DIR/pipe" 2> "$OUT_DIR/stderr" &
	timer=$!
	i=0
	until if [ "$transport" = unix ]; then [ -S "$sock" ]; else udp_bound "$port"; fi; do
		i=$((i + 1)); [ "$i" -lt 200 ] || { echo "$reader did not start: $(cat "$OUT_DIR/stderr")" >&2; exit 1; }
		sleep 0.05
	done
	sleep 0.2
	if [ "$transport" = unix ]; then "$flood" unix "$sock" "$COUNT" "$SIZE"; else "$flood" udp 127.0.0.1 "$port" "$COUNT" "$SIZE"; fi
	case $reader in rsyslog) lines=$out ;; *) lines=$OUT_DIR/stdout ;; esac
	# Wait for the reader to write everything it received: until all lines
	# are there, or their count has not moved for a second (at most 60 s).
	last=-1 still=0 i=0
	while [ "$i" -lt 300 ] && [ "$still" -lt 5 ]; do
		n=$(wc -l < "$lines" 2>/dev/null || echo 0)
		[ "$n" -lt "$COUNT" ] || break
		if [ "$n" = "$last" ]; then still=$((still + 1)); else still=0; fi
		last=$n i=$((i + 1))
		sleep 0.2
	done
	kill -TERM "$(pgrep -P "$timer")"
	wait "$timer" || :
	wait "$drain"
	# floor says how many it received, once stopped.
	if [ "$reader" = floor ]; then n=$(cat "$lines"); else n=$(wc -l < "$lines"); fi
	cpu=$(tail -n 1 "$times" | awk '{ print $1 + $2 }')
	echo "$reader $transport $cpu $((COUNT - n))" >> "$results"
}

for r in $(seq "$RUNS"); do
	for transport in $TRANSPORTS; do
		for reader in $READERS; do run "$reader" "$transport"; done
	done
done

echo "$COUNT datagrams of $SIZE bytes, median of $RUNS runs, $(nproc) cores, $(uname -r)"
awk -v count="$COUNT" -v readers="$READERS" -v transports="$TRANSPORTS" "$median"'
	# The median of each run of `key` against the same run of `ref`.
	function vs(key, ref,    r, ratios) {
		if (!(ref in cpu)) return "-"
		for (r = 1; r <= runs[key]; r++)
			ratios = ratios " " per_run[key, r] / per_run[ref, r]
		return ratios != "" ? sprintf("%.2f", median(ratios)) : "-"
	}
	{
		k = $1 " " $2; cpu[k] = cpu[k] " " $3; lost[k] = lost[k] " " $4
		run = ++runs[k]; per_run[k, run] = $3 / (count - ($1 == "limited" ? 0 : $4))
	}
	END {
		n = split(readers, order, " ")
		printf "| reader | transport | CPU s | CPU µs/message | lost | CPU/message vs socklog | vs floor, run by run | vs floor-write |\n"
		printf "|---|---|---|---|---|---|---|---|\n"
		nt = split(transports, transport, " ")
		for (t = 1; t <= nt; t++) {
			base = "socklog " transport[t]
			bc = median(cpu[base]); bl = median(lost[base])
			bper = bc / (count - bl)
			floor = "floor " transport[t]; wfloor = "floor-write " transport[t]
			for (k = 1; k <= n; k++) {
				key = order[k] " " transport[t]
				c = median(cpu[key]); l = median(lost[key])
				per = c / (order[k] == "limited" ? count : count - l)
				vsfloor = vs(key, floor); vswfloor = vs(key, wfloor)
				printf "| %s | %s | %.2f | %.2f | %d (%.1f%%) | %.2f | %s | %s |\n", order[k], transport[t], c, per * 1e6, l, 100 * l / count, per / bper, vsfloor, vswfloor
			}
		}
	}' "$results"
