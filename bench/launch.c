/* launch: time launch→exit of several commands, interleaved, and measure
 * their peak RSS.
 *
 *   launch [-n RUNS] [-r RSS_RUNS] [-c CSV] NAME=CMD... [NAME=CMD...]
 *
 * Each round runs every command once, in an order rotated each round so that
 * no system always runs right after another. Time is wall clock from just
 * before fork() to the return of wait4(). Peak RSS is the child's own VmHWM,
 * read from /proc at its exit through a ptrace exit stop (ru_maxrss would
 * include the parent's high-water mark carried over by fork+exec); these RSS
 * runs are separate so that tracing never touches a timed run. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_SYSTEMS 8
#define MAX_ARGS    64

struct system {
	const char *name;
	char *argv[MAX_ARGS];
	double *ms;
	long *rss_kib;
	int expect_code, bad_code;
};

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void child_exec(char **argv, int trace)
{
	int fd = open("/dev/null", O_RDWR);
	dup2(fd, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	if (trace) {
		ptrace(PTRACE_TRACEME, 0, NULL, NULL);
		raise(SIGSTOP);
	}
	execvp(argv[0], argv);
	_exit(127);
}

/* One timed run; returns the exit code (or -1). */
static int run_timed(struct system *s, double *ms)
{
	double t0 = now_ms();
	pid_t pid = fork();
	if (pid == 0)
		child_exec(s->argv, 0);
	int st;
	struct rusage ru;
	if (pid < 0 || wait4(pid, &st, 0, &ru) < 0)
		return -1;
	*ms = now_ms() - t0;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* VmHWM of pid in KiB, or -1. */
static long vm_hwm(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	long v = -1;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld kB", &v) == 1)
			break;
	fclose(f);
	return v;
}

/* One traced run: peak RSS of the command's own process at its exit. */
static long run_rss(struct system *s)
{
	pid_t pid = fork();
	if (pid == 0)
		child_exec(s->argv, 1);
	int st;
	long rss = -1;
	if (waitpid(pid, &st, 0) < 0 || !WIFSTOPPED(st))
		return -1;
	ptrace(PTRACE_SETOPTIONS, pid, NULL,
	       (void *)(long)(PTRACE_O_TRACEEXIT | PTRACE_O_EXITKILL));
	ptrace(PTRACE_CONT, pid, NULL, NULL);
	for (;;) {
		if (waitpid(pid, &st, 0) < 0)
			break;
		if (WIFEXITED(st) || WIFSIGNALED(st))
			break;
		if (WIFSTOPPED(st) && (st >> 8) == (SIGTRAP | (PTRACE_EVENT_EXIT << 8))) {
			rss = vm_hwm(pid);
			ptrace(PTRACE_CONT, pid, NULL, NULL);
			continue;
		}
		/* Pass other signals through (the exec SIGTRAP is swallowed). */
		int sig = WIFSTOPPED(st) ? WSTOPSIG(st) : 0;
		ptrace(PTRACE_CONT, pid, NULL, (void *)(long)(sig == SIGTRAP ? 0 : sig));
	}
	return rss;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;
	return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	int i = (int)(p * (n - 1) + 0.5);
	return v[i];
}

int main(int argc, char **argv)
{
	int runs = 200, rss_runs = 10, opt;
	const char *csv = NULL;
	while ((opt = getopt(argc, argv, "n:r:c:")) != -1) {
		if (opt == 'n')
			runs = atoi(optarg);
		else if (opt == 'r')
			rss_runs = atoi(optarg);
		else if (opt == 'c')
			csv = optarg;
		else
			return 2;
	}
	struct system sys[MAX_SYSTEMS];
	int nsys = 0;
	for (int i = optind; i < argc && nsys < MAX_SYSTEMS; i++) {
		/* NAME[:CODE]=CMD ARGS... with CODE the expected exit status. */
		char *eq = strchr(argv[i], '=');
		if (!eq || runs < 1 || rss_runs < 1) {
			fprintf(stderr, "usage: launch [-n RUNS] [-r RSS_RUNS] [-c CSV] "
					"NAME[:CODE]=CMD...\n");
			return 2;
		}
		*eq = 0;
		struct system *s = &sys[nsys++];
		memset(s, 0, sizeof(*s));
		char *colon = strchr(argv[i], ':');
		if (colon) {
			*colon = 0;
			s->expect_code = atoi(colon + 1);
		}
		s->name = argv[i];
		int n = 0;
		for (char *t = strtok(eq + 1, " "); t && n < MAX_ARGS - 1; t = strtok(NULL, " "))
			s->argv[n++] = t;
		s->ms = calloc((size_t)runs, sizeof(double));
		s->rss_kib = calloc((size_t)rss_runs, sizeof(long));
	}
	if (nsys == 0) {
		fprintf(stderr, "launch: no commands\n");
		return 2;
	}
	for (int i = 0; i < nsys; i++) { /* one untimed warm-up each */
		double ms;
		run_timed(&sys[i], &ms);
	}
	for (int r = 0; r < runs; r++)
		for (int k = 0; k < nsys; k++) {
			struct system *s = &sys[(r + k) % nsys];
			if (run_timed(s, &s->ms[r]) != s->expect_code)
				s->bad_code++;
		}
	for (int r = 0; r < rss_runs; r++)
		for (int k = 0; k < nsys; k++)
			sys[k].rss_kib[r] = run_rss(&sys[k]);

	FILE *out = csv ? fopen(csv, "w") : NULL;
	if (out)
		fprintf(out, "system,runs,median_ms,p99_ms,min_ms,peak_rss_kib,bad_exit_codes\n");
	printf("%-10s %6s %10s %10s %10s %12s\n", "system", "runs", "median ms", "p99 ms", "min ms",
	       "peak RSS");
	double med[MAX_SYSTEMS];
	for (int i = 0; i < nsys; i++) {
		struct system *s = &sys[i];
		med[i] = pct(s->ms, runs, 0.5);
		double p99 = pct(s->ms, runs, 0.99), mn = s->ms[0];
		qsort(s->rss_kib, (size_t)rss_runs, sizeof(long), cmp_long);
		long rss = s->rss_kib[rss_runs / 2];
		printf("%-10s %6d %10.3f %10.3f %10.3f %8.2f MiB%s\n", s->name, runs, med[i], p99,
		       mn, rss / 1024.0, s->bad_code ? "  (unexpected exit codes!)" : "");
		if (out)
			fprintf(out, "%s,%d,%.4f,%.4f,%.4f,%ld,%d\n", s->name, runs, med[i], p99,
				mn, rss, s->bad_code);
	}
	printf("ratios of medians (row / first system):\n");
	for (int i = 1; i < nsys; i++)
		printf("  %s / %s = %.2f\n", sys[i].name, sys[0].name, med[i] / med[0]);
	if (out)
		fclose(out);
	int bad = 0;
	for (int i = 0; i < nsys; i++)
		bad += sys[i].bad_code;
	return bad ? 1 : 0;
}
