/* The minimal receiver BenchmarkIdleCPU50Agents measures the daemon
 * against: bind a Unix datagram socket, then a blocking recvmmsg of up
 * to 64 datagrams per call (it returns as soon as one is there), and a
 * CRC-32C check of each 32-byte VLP frame. Nothing else: no credentials,
 * no tracking. Usage: minrecv SOCKET; prints "ready" once bound. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static uint32_t table[256];

static void crc_init(void) {
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		table[i] = c;
	}
}

static uint32_t crc32c(const unsigned char *p, size_t n) {
	uint32_t c = 0xFFFFFFFFu;
	while (n--)
		c = table[(c ^ *p++) & 0xFF] ^ (c >> 8);
	return c ^ 0xFFFFFFFFu;
}

int main(int argc, char **argv) {
	if (argc != 2) {
		fprintf(stderr, "usage: minrecv SOCKET\n");
		return 2;
	}
	crc_init();
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	strncpy(sa.sun_path, argv[1], sizeof sa.sun_path - 1);
	unlink(argv[1]);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		perror("bind");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	enum { N = 64, SZ = 96 };
	static unsigned char bufs[N][SZ];
	struct iovec iov[N];
	struct mmsghdr msgs[N];
	unsigned long good = 0, bad = 0;
	for (;;) {
		for (int i = 0; i < N; i++) {
			iov[i].iov_base = bufs[i];
			iov[i].iov_len = SZ;
			memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
		}
		int n = recvmmsg(fd, msgs, N, MSG_WAITFORONE, NULL);
		if (n < 0)
			continue;
		for (int i = 0; i < n; i++) {
			const unsigned char *b = bufs[i];
			uint32_t stored = b[28] | b[29] << 8 | b[30] << 16 | (uint32_t)b[31] << 24;
			if (msgs[i].msg_len == 32 && crc32c(b, 28) == stored)
				good++;
			else
				bad++;
		}
	}
	return 0;
}
