/* floor: the least any syslog reader spends, for the benchmarks: it takes
 * datagrams in batches with recvmmsg(2), with the sender's credentials on
 * a unix socket and the sender's address on UDP, and writes nothing. On
 * SIGTERM it prints how many it received.
 *
 *   floor unix PATH [write]
 *   floor udp IP PORT [write]
 *
 * With "write" it also writes each datagram as it came, and a LF, to its
 * standard output, 256 KiB at a time: the least a reader that writes its
 * lines to a pipe spends. It then prints no count.
 *
 * Like syslog-read, it raises the UDP receive buffer to 32 MiB and lets a
 * drained UDP socket fill for 2 ms before reading it again. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum { BATCH = 64, SIZE = 65536 };
static volatile sig_atomic_t stop;
static void on_term(int s) { (void)s; stop = 1; }
static void die(const char *what) { perror(what); exit(111); }

int main(int argc, char **argv) {
	int fd, udp = argc >= 4 && !strcmp(argv[1], "udp");
	int write_out = argc == 4 + udp && !strcmp(argv[3 + udp], "write");
	if (argc == 4 + udp && !write_out) argc = 0;
	if (udp && (argc == 4 || argc == 5)) {
		struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[3]))};
		if (inet_pton(AF_INET, argv[2], &sin.sin_addr) != 1) die("address");
		fd = socket(AF_INET, SOCK_DGRAM, 0);
		int size = 32 << 20;
		if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0)
			setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
		if (bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0) die("bind");
	} else if ((argc == 3 || argc == 4) && !strcmp(argv[1], "unix")) {
		struct sockaddr_un sun = {.sun_family = AF_UNIX};
		strncpy(sun.sun_path, argv[2], sizeof sun.sun_path - 1);
		unlink(argv[2]);
		fd = socket(AF_UNIX, SOCK_DGRAM, 0);
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
		if (bind(fd, (struct sockaddr *)&sun, sizeof sun) < 0) die("bind");
	} else {
		fprintf(stderr, "usage: floor unix PATH [write] | floor udp IP PORT [write]\n");
		return 100;
	}
	struct sigaction sa = {.sa_handler = on_term};
	sigaction(SIGTERM, &sa, 0);
	static char data[BATCH][SIZE], control[BATCH][256];
	static struct sockaddr_storage names[BATCH];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	static char out[(256 << 10) + SIZE + 1];
	size_t used = 0;
	long total = 0;
	while (!stop) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, -1) < 0) continue;
		for (;;) {
			for (int i = 0; i < BATCH; i++) {
				iov[i] = (struct iovec){data[i], SIZE};
				msgs[i].msg_hdr = (struct msghdr){
					.msg_name = udp ? &names[i] : 0, .msg_namelen = udp ? sizeof names[i] : 0,
					.msg_iov = &iov[i], .msg_iovlen = 1,
					.msg_control = control[i], .msg_controllen = sizeof control[i]};
			}
			int n = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT | MSG_TRUNC, 0);
			if (n > 0) total += n;
			for (int i = 0; write_out && i < n; i++) {
				size_t len = msgs[i].msg_len < SIZE ? msgs[i].msg_len : SIZE;
				memcpy(out + used, data[i], len);
				out[used + len] = '\n';
				used += len + 1;
				if (used >= 256 << 10) {
					if (write(1, out, used) < 0) die("write");
					used = 0;
				}
			}
			if (n == BATCH) continue;
			if (n > 0 && udp) {
				struct timespec rest = {0, 2000000};
				nanosleep(&rest, 0);
				continue;
			}
			break;
		}
	}
	if (write_out) {
		if (used > 0 && write(1, out, used) < 0) die("write");
		return 0;
	}
	printf("%ld\n", total);
	return 0;
}
