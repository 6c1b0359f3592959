/*
 * rawsend: the C baseline of BenchmarkBeat (pkg/agent/bench_test.go).
 *
 * It measures send() of a fixed datagram on a connected, non-blocking
 * SOCK_DGRAM socket, with the same method as the Go benchmark: a receiver
 * thread drains the socket with batched recvmmsg (waiting in poll, as the
 * observer waits in epoll), the sends go in bursts that fit in the queue,
 * and only the bursts are timed; after each burst the sender waits until
 * everything sent was read. A refused send (EAGAIN) or a datagram never
 * read counts as a drop; the run reports them.
 *
 * Not part of `make test` (CI need not have a C compiler):
 *
 *   gcc -O2 -pthread -o /tmp/rawsend pkg/agent/testdata/rawsend.c
 *   /tmp/rawsend [iterations]
 *
 * Output: one line per transport and size: wall-clock and thread-CPU ns
 * per send, and the drop ratio.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define BURST 1024
#define QUEUE (16 << 20)

static atomic_ulong received;
static atomic_int stop;

static void *drain(void *arg) {
	int fd = *(int *)arg;
	static char bufs[BATCH][128];
	struct mmsghdr hdrs[BATCH];
	struct iovec iovs[BATCH];
	for (int i = 0; i < BATCH; i++) {
		iovs[i].iov_base = bufs[i];
		iovs[i].iov_len = sizeof bufs[i];
		memset(&hdrs[i], 0, sizeof hdrs[i]);
		hdrs[i].msg_hdr.msg_iov = &iovs[i];
		hdrs[i].msg_hdr.msg_iovlen = 1;
	}
	while (!atomic_load(&stop)) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 50) <= 0)
			continue;
		int n = recvmmsg(fd, hdrs, BATCH, MSG_DONTWAIT, NULL);
		if (n > 0)
			atomic_fetch_add(&received, (unsigned long)n);
	}
	return NULL;
}

static double clock_ns(clockid_t c) {
	struct timespec ts;
	clock_gettime(c, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static double now(void) { return clock_ns(CLOCK_MONOTONIC); }

/* The sending thread's CPU time: unlike the wall clock it does not grow
 * when other work takes the CPU away mid-burst (cpu-ns/op in Go). */
static double cpu(void) { return clock_ns(CLOCK_THREAD_CPUTIME_ID); }

static void settle(unsigned long sent) {
	double idle = now();
	unsigned long last = atomic_load(&received);
	while (last < sent && now() - idle < 100e6) {
		sched_yield();
		unsigned long got = atomic_load(&received);
		if (got != last) {
			last = got;
			idle = now();
		}
	}
}

static void run(const char *name, int family, int size, long iters) {
	int rfd, sfd;
	struct sockaddr_storage ss;
	socklen_t sl;
	char path[64];
	memset(&ss, 0, sizeof ss);
	if (family == AF_UNIX) {
		struct sockaddr_un *su = (struct sockaddr_un *)&ss;
		snprintf(path, sizeof path, "/tmp/rawsend-%d.sock", getpid());
		unlink(path);
		su->sun_family = AF_UNIX;
		strcpy(su->sun_path, path);
		sl = sizeof *su;
	} else {
		struct sockaddr_in *si = (struct sockaddr_in *)&ss;
		si->sin_family = AF_INET;
		si->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sl = sizeof *si;
	}
	rfd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (rfd < 0 || bind(rfd, (struct sockaddr *)&ss, sl) < 0 || getsockname(rfd, (struct sockaddr *)&ss, &sl) < 0) {
		perror("receiver");
		exit(1);
	}
	int one = 1, q = QUEUE;
	if (family == AF_UNIX)
		setsockopt(rfd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one); /* as the observer */
	setsockopt(rfd, SOL_SOCKET, SO_RCVBUFFORCE, &q, sizeof q);
	sfd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (sfd < 0 || connect(sfd, (struct sockaddr *)&ss, sl) < 0) {
		perror("sender");
		exit(1);
	}
	setsockopt(sfd, SOL_SOCKET, SO_SNDBUFFORCE, &q, sizeof q);

	atomic_store(&received, 0);
	atomic_store(&stop, 0);
	pthread_t th;
	pthread_create(&th, NULL, drain, &rfd);

	char buf[64];
	memset(buf, 0x5a, sizeof buf);
	unsigned long sent = 0, refused = 0;
	double total = 0, cputotal = 0;
	for (long done = 0; done < iters;) {
		long n = iters - done < BURST ? iters - done : BURST;
		double t0 = now(), c0 = cpu();
		for (long i = 0; i < n; i++) {
			if (send(sfd, buf, size, 0) == size)
				sent++;
			else if (errno == EAGAIN || errno == ENOBUFS)
				refused++;
			else {
				perror("send");
				exit(1);
			}
		}
		cputotal += cpu() - c0;
		total += now() - t0;
		done += n;
		settle(sent);
	}
	settle(sent);
	unsigned long got = atomic_load(&received);
	atomic_store(&stop, 1);
	pthread_join(th, NULL);
	close(sfd);
	close(rfd);
	if (family == AF_UNIX)
		unlink(path);
	unsigned long lost = refused + (got < sent ? sent - got : 0);
	printf("%-6s %2d bytes  %8.1f ns/send  %8.1f cpu-ns/send  drop-ratio %.4f\n", name, size, total / iters, cputotal / iters, (double)lost / iters);
}

int main(int argc, char **argv) {
	long iters = argc > 1 ? atol(argv[1]) : 500000;
	run("unix", AF_UNIX, 32, iters);
	run("udp", AF_INET, 32, iters);
	run("udp", AF_INET, 60, iters);
	run("udp", AF_INET, 64, iters);
	return 0;
}
