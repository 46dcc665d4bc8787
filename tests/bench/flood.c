/* flood: send syslog datagrams as fast as a sender can, for the benchmarks.
 *
 *   flood unix PATH COUNT [SIZE]
 *   flood udp HOST PORT COUNT [SIZE]
 *
 * Each datagram is a glibc-style RFC 3164 message of SIZE bytes (110 if
 * not given), numbered, so that the readers' output can be checked. Unix
 * sends block when the reader's queue is full; UDP sends never wait. */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void die(const char *what) {
	perror(what);
	exit(111);
}

int main(int argc, char **argv) {
	int fd;
	long count;
	size_t size = 110;
	if (argc >= 4 && !strcmp(argv[1], "unix")) {
		struct sockaddr_un sun = {.sun_family = AF_UNIX};
		strncpy(sun.sun_path, argv[2], sizeof sun.sun_path - 1);
		fd = socket(AF_UNIX, SOCK_DGRAM, 0);
		if (fd < 0) die("socket");
		if (connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) die("connect");
		count = atol(argv[3]);
		if (argc > 4) size = (size_t)atol(argv[4]);
	} else if (argc >= 5 && !strcmp(argv[1], "udp")) {
		struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM}, *ai;
		if (getaddrinfo(argv[2], argv[3], &hints, &ai) != 0) die("getaddrinfo");
		fd = socket(ai->ai_family, SOCK_DGRAM, 0);
		if (fd < 0) die("socket");
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) die("connect");
		count = atol(argv[4]);
		if (argc > 5) size = (size_t)atol(argv[5]);
	} else {
		fprintf(stderr, "usage: flood unix PATH COUNT [SIZE] | flood udp HOST PORT COUNT [SIZE]\n");
		return 100;
	}
	char msg[65536];
	if (size < 48 || size > sizeof msg) size = 110;
	int head = snprintf(msg, sizeof msg, "<13>Nov  1 12:00:00 flood[%d]: message ", (int)getpid());
	memset(msg + head, 'x', size - (size_t)head);
	for (long i = 0; i < count; i++) {
		/* The number, after the fixed head. */
		char num[16];
		int n = snprintf(num, sizeof num, "%010ld", i);
		memcpy(msg + head, num, (size_t)n);
		while (send(fd, msg, size, 0) < 0) {
			/* A UDP send fails at once when an ICMP error came back. */
			if (argc >= 5 && !strcmp(argv[1], "udp")) break;
			die("send");
		}
	}
	return 0;
}
