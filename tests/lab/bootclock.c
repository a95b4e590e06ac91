/* bootclock: run a VMM, time it, and keep its output. Runs inside the lab's
 * L1 guest, so it is small and static, and it forks the VMM from its own
 * tiny image so that ru_maxrss is the VMM's and not a shell's.
 *
 * usage: bootclock [-t SECONDS] MARKER OUTFILE -- CMD [ARGS...]
 * CMD's stdout and stderr go to OUTFILE; stdin is passed through. Prints one
 * line: "bootclock: marker_ms=M exit_ms=E rc=R maxrss_kb=K" where M is the
 * time from fork to the first output line containing MARKER (-1: never
 * seen) and rc the exit status (128+sig if killed; 124 when -t expired).
 * Exits with rc. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static pid_t child;
static volatile sig_atomic_t timed_out;

static void on_alarm(int sig)
{
	(void)sig;
	timed_out = 1;
	kill(child, SIGKILL);
}

int main(int argc, char **argv)
{
	int timeout = 120;
	int i = 1;
	if (i + 1 < argc && !strcmp(argv[i], "-t")) {
		timeout = atoi(argv[i + 1]);
		i += 2;
	}
	if (argc - i < 4 || strcmp(argv[i + 2], "--")) {
		fprintf(stderr, "usage: bootclock [-t SECONDS] MARKER OUTFILE -- CMD [ARGS...]\n");
		return 2;
	}
	const char *marker = argv[i], *outfile = argv[i + 1];
	char **cmd = argv + i + 3;
	int out = open(outfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int p[2];
	if (out < 0 || pipe(p) < 0) {
		perror("bootclock");
		return 2;
	}
	double t0 = now_ms();
	child = fork();
	if (child < 0) {
		perror("bootclock: fork");
		return 2;
	}
	if (child == 0) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		close(p[0]);
		close(p[1]);
		execvp(cmd[0], cmd);
		fprintf(stderr, "bootclock: exec %s: %s\n", cmd[0], strerror(errno));
		_exit(127);
	}
	close(p[1]);
	signal(SIGALRM, on_alarm);
	alarm((unsigned)timeout);
	/* Scan the output line by line for the marker while saving it all. */
	double marker_ms = -1;
	char line[4096];
	size_t len = 0, mlen = strlen(marker);
	char buf[4096];
	for (;;) {
		ssize_t n = read(p[0], buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (write(out, buf, (size_t)n) < 0)
			break;
		for (ssize_t k = 0; k < n && marker_ms < 0; k++) {
			if (buf[k] == '\n' || len == sizeof(line) - 1) {
				line[len] = 0;
				if (memmem(line, len, marker, mlen))
					marker_ms = now_ms() - t0;
				len = 0;
			} else {
				line[len++] = buf[k];
			}
		}
	}
	int status;
	struct rusage ru;
	while (wait4(child, &status, 0, &ru) < 0 && errno == EINTR)
		;
	double exit_ms = now_ms() - t0;
	int rc = timed_out ? 124 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	printf("bootclock: marker_ms=%.0f exit_ms=%.0f rc=%d maxrss_kb=%ld\n", marker_ms, exit_ms,
	       rc, ru.ru_maxrss);
	return rc;
}
