# What the benchmarks here share; each sources it first:
#   . "$(dirname "$0")/lib.sh"
# It sets top (the repository) and gives the checks, inputs and the median
# the scripts would otherwise each write again.

top=$(cd "$(dirname "$0")/../.." && pwd)

# need COMMAND...: stops, saying what to do, unless each is installed.
need() {
	for c in "$@"; do
		command -v "$c" >/dev/null || { echo "missing $c: run make deps as root" >&2; exit 1; }
	done
}

# built PROGRAM...: stops unless each has been built.
built() {
	for p in "$@"; do
		[ -x "$p" ] || { echo "build first: make all" >&2; exit 1; }
	done
}

# An awk function, put before a program (awk "$median"'{ ... }'):
# median(list) of the numbers in the space-separated list.
median='
	function median(list,    a, n, i, j, t) {
		n = split(list, a, " ")
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
'

# lines_of_100 N: N lines of 100 bytes: a 10-digit number, a space, 88
# letters, LF.
lines_of_100() {
	awk -v n="$1" 'BEGIN { pad = sprintf("%88s", ""); gsub(/ /, "x", pad);
		for (i = 0; i < n; i++) printf "%010d %s\n", i, pad }'
}

# log_directory DIR SIZE_MB START SPAN SYSLOG_EVERY: writes into DIR a log
# directory of SIZE_MB MiB (16 MiB archives, lines of about 100 bytes)
# whose stamps go evenly from Unix time START over SPAN seconds; every
# SYSLOG_EVERY-th line is a syslog-read line (0: none), the others a
# worker's.
log_directory() {
	(cd "$1" && awk -v mb="$2" -v secs="$3" -v span="$4" -v every="$5" 'BEGIN {
		n = int(mb * 1048576 / 100); step = span * 1e9 / n
		s = secs + 37; ns = 0; size = 0; out = "next.tmp"; limit = 16 * 1048576
		for (i = 0; i < n; i++) {
			if (every && i % every == 0)
				text = sprintf("daemon.info sshd[%d]: Accepted publickey for user%d from 10.0.%d.%d port %d",
					1000 + i % 9000, i % 97, i % 256, i % 251, 1024 + i % 60000)
			else
				text = sprintf("worker %d: request %d served in %d us, %d bytes, status %d",
					i % 16, i, i % 9973, i % 65536, 200)
			line = sprintf("@40000000%08x%08x %s\n", s, ns, text)
			printf "%s", line > out
			size += length(line)
			# An archive is named one nanosecond after its last line.
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
}
