/* warren-udpblast: a datagram sender and sink in C, for measuring where
 * datagrams are lost at rate (bench/dgram_loss.py). The Python sender and
 * sink of tests/e2e/linkemu.py lose several percent themselves at 30k
 * datagrams a second on a loaded machine; these lose none on loopback.
 *
 *   warren-udpblast send HOST PORT SIZE PPS SECONDS
 *       paced sendmmsg batches (at most 64), each datagram starting with
 *       its 8-byte sequence number; prints {"sent", "secs", "pps", "fail"}
 *   warren-udpblast sink HOST PORT IDLE_MS
 *       recvmmsg with a 32 MiB receive buffer until IDLE_MS without a
 *       datagram; prints {"got", "unique", "span_s"} */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc < 5 || (!strcmp(argv[1], "send") && argc < 7)) {
		fprintf(stderr, "usage: see the comment at the top\n");
		return 2;
	}
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)atoi(argv[3]))};
	inet_pton(AF_INET, argv[2], &a.sin_addr);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	int big = 32 << 20;
	if (!strcmp(argv[1], "send")) {
		size_t size = (size_t)atoi(argv[4]);
		double pps = atof(argv[5]), secs = atof(argv[6]);
		uint64_t total = (uint64_t)(pps * secs), i = 0;
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
			perror("connect");
			return 1;
		}
		static uint8_t buf[64][65536];
		struct mmsghdr m[64];
		struct iovec iov[64];
		uint64_t t0 = now_ns(), fail = 0;
		while (i < total) {
			uint64_t due =
			    (uint64_t)((double)(now_ns() - t0) * pps / 1e9);
			if (due > total)
				due = total;
			if (due <= i) {
				struct timespec ts = {0, 200000};
				nanosleep(&ts, NULL);
				continue;
			}
			unsigned n = 0;
			while (i + n < due && n < 64) {
				uint64_t seq = i + n;
				memcpy(buf[n], &seq, 8);
				iov[n].iov_base = buf[n];
				iov[n].iov_len = size;
				memset(&m[n], 0, sizeof(m[n]));
				m[n].msg_hdr.msg_iov = &iov[n];
				m[n].msg_hdr.msg_iovlen = 1;
				n++;
			}
			int r = sendmmsg(fd, m, n, 0);
			if (r < 0) {
				/* A full buffer: that datagram is lost. */
				fail++;
				r = 1;
			}
			i += (unsigned)r;
		}
		double dt = (double)(now_ns() - t0) / 1e9;
		printf("{\"sent\": %llu, \"secs\": %.3f, \"pps\": %.0f, "
		       "\"fail\": %llu}\n",
		       (unsigned long long)i, dt, (double)i / dt,
		       (unsigned long long)fail);
		return 0;
	}
	int idle = atoi(argv[4]);
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		perror("bind");
		return 1;
	}
	printf("listening\n");
	fflush(stdout);
	static uint8_t seen[1 << 24];
	static uint8_t buf[64][2048];
	struct mmsghdr m[64];
	struct iovec iov[64];
	uint64_t got = 0, uniq = 0, first = 0, last = 0;
	for (;;) {
		struct pollfd p = {fd, POLLIN, 0};
		if (poll(&p, 1, got ? idle : 60000) <= 0)
			break;
		for (unsigned k = 0; k < 64; k++) {
			iov[k].iov_base = buf[k];
			iov[k].iov_len = sizeof(buf[k]);
			memset(&m[k], 0, sizeof(m[k]));
			m[k].msg_hdr.msg_iov = &iov[k];
			m[k].msg_hdr.msg_iovlen = 1;
		}
		int r = recvmmsg(fd, m, 64, MSG_DONTWAIT, NULL);
		if (r <= 0)
			continue;
		if (!got)
			first = now_ns();
		last = now_ns();
		for (unsigned k = 0; k < (unsigned)r; k++) {
			uint64_t seq;
			got++;
			if (m[k].msg_len < 8)
				continue;
			memcpy(&seq, buf[k], 8);
			if (seq < sizeof(seen) && !seen[seq]) {
				seen[seq] = 1;
				uniq++;
			}
		}
	}
	printf("{\"got\": %llu, \"unique\": %llu, \"span_s\": %.3f}\n",
	       (unsigned long long)got, (unsigned long long)uniq,
	       (double)(last - first) / 1e9);
	return 0;
}
