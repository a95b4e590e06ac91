/* uds: a unix-socket peer for the integration tests (no socat needed).
 *   uds PATH SEND UNTIL [MS]  connect, send SEND ("\n" escapes allowed), print
 *                             what comes back; exit 0 once UNTIL was seen,
 *                             1 on EOF or after MS ms (default 5000)
 *   uds -l PATH [MS]          listen, accept one client, echo everything back
 *                             until it closes, print it; exit 0 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int addr(const char *path, struct sockaddr_un *a)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(a->sun_path))
		return -1;
	strcpy(a->sun_path, path);
	return 0;
}

/* Wait up to ms for fd to be readable. */
static int readable(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	return poll(&p, 1, ms) > 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_un a;
	char buf[65536];
	if (argc >= 3 && !strcmp(argv[1], "-l")) {
		int ms = argc > 3 ? atoi(argv[3]) : 5000;
		int l = socket(AF_UNIX, SOCK_STREAM, 0), c;
		if (addr(argv[2], &a) || bind(l, (struct sockaddr *)&a, sizeof(a)) ||
		    listen(l, 1)) {
			perror("uds: listen");
			return 2;
		}
		printf("listening\n");
		fflush(stdout);
		if (!readable(l, ms) || (c = accept(l, NULL, NULL)) < 0)
			return 1;
		ssize_t n;
		while (readable(c, ms) && (n = read(c, buf, sizeof(buf))) > 0) {
			fwrite(buf, 1, (size_t)n, stdout);
			if (write(c, buf, (size_t)n) != n)
				break;
		}
		unlink(argv[2]);
		return 0;
	}
	if (argc < 4) {
		fprintf(stderr, "usage: uds PATH SEND UNTIL [MS] | uds -l PATH [MS]\n");
		return 2;
	}
	int ms = argc > 4 ? atoi(argv[4]) : 5000;
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	if (addr(argv[1], &a) || connect(s, (struct sockaddr *)&a, sizeof(a))) {
		perror("uds: connect");
		return 2;
	}
	/* Unescape \n in SEND. */
	char send[4096];
	size_t k = 0;
	for (const char *p = argv[2]; *p && k < sizeof(send); p++)
		send[k++] = p[0] == '\\' && p[1] == 'n' ? (p++, '\n') : *p;
	if (write(s, send, k) != (ssize_t)k)
		return 2;
	size_t have = 0;
	while (have < sizeof(buf) - 1 && readable(s, ms)) {
		ssize_t n = read(s, buf + have, sizeof(buf) - 1 - have);
		if (n <= 0)
			break;
		fwrite(buf + have, 1, (size_t)n, stdout);
		fflush(stdout);
		have += (size_t)n;
		buf[have] = 0;
		if (strstr(buf, argv[3]))
			return 0;
	}
	return 1;
}
