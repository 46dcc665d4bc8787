#!/bin/sh
# follow-log-directories with many cursors: K = 1, 10, 100, 1,000, 10,000
# log directories (each with one line in `current`, then quiet), a cursor
# for each, and a trickle of TRICKLE lines, one every millisecond, on one
# of them. For each K, the median of RUNS runs of:
#   - first line, all K lines: seconds from start until the first line,
#     and every cursor's line, is out (all K attached);
#   - RSS: resident memory once all are idle, and per cursor beyond K = 1;
#   - fds: descriptors open once all are idle;
#   - CPU per trickled line: the follower's user + system time while the
#     trickle runs, divided by TRICKLE (every line its own wakeup);
#   - latency: time from the trickle's end to its last line out.
# Runs under `prlimit --nofile=SOFT:HARD` (1024, the soft limit most
# systems set, and 16384).
set -eu

RUNS=${RUNS:-3}
TRICKLE=${TRICKLE:-2000}
KS=${KS:-"1 10 100 1000 10000"}
HARD=${HARD:-16384}
SOFT=${SOFT:-1024}
. "$(dirname "$0")/lib.sh"
BENCH_DIR=${BENCH_DIR:-$top/target/bench-follow}
FOLLOW=${FOLLOW:-$top/target/release/follow-log-directories}

need python3 prlimit
built "$FOLLOW"

rm -rf "$BENCH_DIR"
mkdir -p "$BENCH_DIR"
exec python3 - "$FOLLOW" "$BENCH_DIR" "$RUNS" "$TRICKLE" "$SOFT:$HARD" $KS <<'EOF'
import os, shutil, statistics, subprocess, sys, time

follow, base, runs, trickle, hard = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
ks = [int(k) for k in sys.argv[6:]]

def stamp():
    t = time.time_ns()
    return "@%016x%08x" % ((1 << 62) + 10 + t // 10**9, t % 10**9)

def lines(path):
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0

def wait(cond, limit=600):
    end = time.monotonic() + limit
    while not cond():
        if time.monotonic() > end:
            raise SystemExit("timed out")
        time.sleep(0.005)

def cpu(pid):
    """Seconds on a CPU, every thread, to the nanosecond (schedstat)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/schedstat") as f:
            total += int(f.read().split()[0])
    return total / 1e9

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

def one(k, run):
    d = f"{base}/k{k}-{run}"
    cursors = f"{d}/cursors"
    os.makedirs(cursors)
    for i in range(k):
        log = f"{d}/logs/{i:05}"
        os.makedirs(log)
        with open(f"{log}/current", "w") as f:
            f.write(f"{stamp()} idle {i}\n")
        os.makedirs(f"{cursors}/{i:05}")
        os.symlink(log, f"{cursors}/{i:05}/main")
    out = f"{d}/out"
    with open(out, "wb") as o, open(f"{d}/stderr", "wb") as e:
        start = time.monotonic()
        p = subprocess.Popen(["prlimit", f"--nofile={hard}", follow, cursors], stdout=o, stderr=e)
        wait(lambda: lines(out) >= 1)
        first = time.monotonic() - start
        wait(lambda: lines(out) >= k)
        started = time.monotonic() - start
        # Idle: every cursor saved.
        wait(lambda: all(os.path.exists(f"{cursors}/{i:05}/last") for i in range(k)))
        time.sleep(0.5)
        rss = rss_kib(p.pid)
        fds = len(os.listdir(f"/proc/{p.pid}/fd"))
        busy = f"{d}/logs/{k // 2:05}/current"
        before = cpu(p.pid)
        with open(busy, "ab", buffering=0) as f:
            for n in range(trickle):
                f.write(f"{stamp()} trickle {n}\n".encode())
                time.sleep(0.001)
        end = time.monotonic()
        wait(lambda: lines(out) >= k + trickle)
        latency = time.monotonic() - end
        used = cpu(p.pid) - before
        p.terminate()
        code = p.wait()
        if code != 0:
            raise SystemExit(f"K={k}: exit {code}")
    shutil.rmtree(d)
    return first, started, rss, fds, used / trickle * 1e6, latency

results = {}
for k in ks:
    rows = [one(k, r) for r in range(runs)]
    results[k] = [statistics.median(col) for col in zip(*rows)]
    first, started, rss, fds, us, latency = results[k]
    print(f"K={k}: first line {first:.2f} s, all {started:.2f} s, RSS {rss} KiB, fds {fds}, "
          f"CPU {us:.1f} µs/line, latency {latency * 1000:.0f} ms", file=sys.stderr)

print("| cursors | first line s | all K lines s | RSS KiB | KiB/cursor | fds | CPU µs/trickled line | last line after |")
print("|---|---|---|---|---|---|---|---|")
base_rss = results[ks[0]][2]
for k in ks:
    first, started, rss, fds, us, latency = results[k]
    per = "" if k == ks[0] else f"{(rss - base_rss) / (k - ks[0]):.2f}"
    print(f"| {k} | {first:.2f} | {started:.2f} | {rss:.0f} | {per} | {fds:.0f} | {us:.1f} | {latency * 1000:.0f} ms |")
EOF
