/* `wisp top`: a live view of wispd's VMs, like virt-top: state, CPU %,
 * exits per second, memory and I/O per second, refreshed every -d seconds
 * and sorted by a column chosen with a key (or -o). -b prints plain frames
 * for scripts instead of drawing on the terminal.
 *
 * Each frame is one GET /stats (the header), one GET /vms and one GET
 * /vms/ID/stats per live VM; rates are the difference between two frames
 * (the VMM's CPU time is utime + stime of its process, all threads). */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "util/util.h"

static const char usage[] =
	"usage: wisp top [-d SECS] [-o COLUMN] [-b] [-n N] [--socket PATH]\n"
	"  -d, --delay SECS   refresh every SECS (default 1; e.g. 2, 500ms)\n"
	"  -o, --sort COLUMN  sort by name, state, cpu (default), exits, mem, rss or io\n"
	"  -b, --batch        print plain frames (for scripts), not a live screen\n"
	"  -n, --iterations N stop after N frames\n"
	"keys: c cpu  e exits/s  m memory  r rss  i i/o  n name  s state  q quit\n";

enum sort_col { SORT_NAME, SORT_STATE, SORT_CPU, SORT_EXITS, SORT_MEM, SORT_RSS, SORT_IO };
static const char *const sort_names[] = {"name", "state", "cpu", "exits", "mem", "rss", "io"};

/* One VM in one frame. */
struct row {
	char id[16], name[72], state[16];
	long long pid;
	uint64_t mem, rss;
	bool live;		    /* has a VMM whose stats we read */
	bool has_cpu, has_io;	    /* the daemon could read them */
	uint64_t cpu_ns, io, exits; /* counters since the VM started */
	bool rates;		    /* the previous frame had this VM: the rates are set */
	double cpu_pct, exits_s, io_s;
};

struct frame {
	struct row *rows;
	size_t n;
	uint64_t at_ns;
	struct json_t *daemon; /* GET /stats */
};

static volatile sig_atomic_t stop_signal, resized;
static struct termios saved_tty;
static bool tty_raw;

static void on_signal(int sig)
{
	if (sig == SIGWINCH)
		resized = 1;
	else
		stop_signal = sig;
}

static void tty_enter(void)
{
	struct termios t;
	if (tcgetattr(0, &saved_tty) == 0) {
		t = saved_tty;
		t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		t.c_cc[VMIN] = 0;
		t.c_cc[VTIME] = 0;
		tty_raw = tcsetattr(0, TCSANOW, &t) == 0;
	}
	/* The alternate screen, without a cursor: the shell's screen comes back
	 * as it was when we leave. */
	fputs("\033[?1049h\033[?25l", stdout);
	fflush(stdout);
}

static void tty_leave(void)
{
	fputs("\033[?25h\033[?1049l", stdout);
	fflush(stdout);
	if (tty_raw)
		tcsetattr(0, TCSANOW, &saved_tty);
	tty_raw = false;
}

static void free_frame(struct frame *f)
{
	free(f->rows);
	jfree(f->daemon);
	memset(f, 0, sizeof(*f));
}

static int by_id(const void *a, const void *b)
{
	return strcmp(((const struct row *)a)->id, ((const struct row *)b)->id);
}

/* Sum of a stats answer's exits by kind. */
static uint64_t sum_exits(struct json_t *e)
{
	static const char *const kinds[] = {"io",   "mmio",	"hypercall", "hlt",
					    "intr", "shutdown", "unhandled", "other"};
	uint64_t s = 0;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		s += (uint64_t)jint(e, kinds[i]);
	return s;
}

/* Read one frame from the daemon; -1 if it did not answer (printed). */
static int take_frame(struct frame *f)
{
	memset(f, 0, sizeof(*f));
	struct api_reply r;
	if (api_call("GET", "/stats", NULL, &r))
		return -1;
	f->daemon = r.json;
	r.json = NULL;
	api_reply_free(&r);
	if (api_call("GET", "/vms", NULL, &r))
		return -1;
	size_t n = jlen(r.json);
	f->rows = calloc(n ? n : 1, sizeof(*f->rows));
	if (!f->rows) {
		api_reply_free(&r);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		struct json_t *v = jat(r.json, i);
		struct row *w = &f->rows[f->n++];
		snprintf(w->id, sizeof(w->id), "%s", jstr(v, "id"));
		snprintf(w->name, sizeof(w->name), "%s", jstr(v, "name"));
		snprintf(w->state, sizeof(w->state), "%s", jstr(v, "state"));
		w->pid = jint(v, "pid");
		w->mem = (uint64_t)jint(v, "mem");
		w->live = !strcmp(w->state, "running") || !strcmp(w->state, "paused");
	}
	api_reply_free(&r);
	for (size_t i = 0; i < f->n; i++) {
		struct row *w = &f->rows[i];
		char path[128];
		if (!w->live || client_vm_path(w->id, "stats", path, sizeof(path)))
			continue;
		/* A VM destroyed since the list is no error: it just has no row data. */
		if (api_call_quiet("GET", path, &r))
			continue;
		struct json_t *m = jget(r.json, "memory"), *io = jget(r.json, "io");
		w->rss = (uint64_t)jint(m, "vmm_rss");
		w->exits = sum_exits(jget(r.json, "exits"));
		w->has_cpu = jhas(r.json, "cpu_ns");
		w->cpu_ns = (uint64_t)jint(r.json, "cpu_ns");
		w->has_io = io != NULL;
		w->io = (uint64_t)jint(io, "read_bytes") + (uint64_t)jint(io, "write_bytes");
		api_reply_free(&r);
	}
	f->at_ns = util_now_ns();
	return 0;
}

/* Rates of cur against prev (sorted by id here). */
static void compute_rates(struct frame *cur, struct frame *prev)
{
	if (!prev->rows || cur->at_ns <= prev->at_ns)
		return;
	qsort(prev->rows, prev->n, sizeof(*prev->rows), by_id);
	double dt = (double)(cur->at_ns - prev->at_ns) / 1e9;
	for (size_t i = 0; i < cur->n; i++) {
		struct row *w = &cur->rows[i];
		const struct row *p = bsearch(w, prev->rows, prev->n, sizeof(*prev->rows), by_id);
		if (!w->live || !p || !p->live)
			continue;
		w->rates = true;
		if (w->has_cpu && p->has_cpu && w->cpu_ns >= p->cpu_ns)
			w->cpu_pct = (double)(w->cpu_ns - p->cpu_ns) / 1e9 / dt * 100;
		if (w->exits >= p->exits)
			w->exits_s = (double)(w->exits - p->exits) / dt;
		if (w->has_io && p->has_io && w->io >= p->io)
			w->io_s = (double)(w->io - p->io) / dt;
	}
}

static enum sort_col sort_by = SORT_CPU;

/* Numbers sort biggest first, words alphabetically; ties by name. */
static int compare_rows(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	double dx = 0, dy = 0;
	switch (sort_by) {
	case SORT_NAME:
		break;
	case SORT_STATE: {
		int c = strcmp(x->state, y->state);
		if (c)
			return c;
		break;
	}
	case SORT_CPU:
		dx = x->cpu_pct, dy = y->cpu_pct;
		break;
	case SORT_EXITS:
		dx = x->exits_s, dy = y->exits_s;
		break;
	case SORT_MEM:
		dx = (double)x->mem, dy = (double)y->mem;
		break;
	case SORT_RSS:
		dx = (double)x->rss, dy = (double)y->rss;
		break;
	case SORT_IO:
		dx = x->io_s, dy = y->io_s;
		break;
	}
	if (dx != dy)
		return dx < dy ? 1 : -1;
	int c = strcmp(x->name, y->name);
	return c ? c : strcmp(x->id, y->id);
}

/* 33554432 -> "32.0M"; rates and sizes alike, in powers of 1024. */
static void human(double v, char *buf, size_t len)
{
	static const char units[] = "BKMGTP";
	int u = 0;
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%.0f", v);
	else
		snprintf(buf, len, "%.1f%c", v, units[u]);
}

/* One frame as text lines into out (at most max_rows VM rows); eol ends each
 * line ("\n", or "erase to the end of line" + "\r\n" on the live screen). */
static void render(FILE *out, const struct frame *f, uint64_t delay_ms, size_t max_rows,
		   const char *eol)
{
	struct json_t *d = f->daemon, *st = jget(d, "states");
	time_t now = time(NULL);
	struct tm tm;
	char clock[16];
	localtime_r(&now, &tm);
	strftime(clock, sizeof(clock), "%H:%M:%S", &tm);
	fprintf(out, "wisp top - %s  wispd %s, pid %lld, up %llds, refresh %.1fs, sorted by %s%s",
		clock, jstr(d, "version"), jint(d, "pid"), jint(d, "uptime_ms") / 1000,
		(double)delay_ms / 1000, sort_names[sort_by], eol);
	double cpu = 0, exits = 0, io = 0;
	for (size_t i = 0; i < f->n; i++) {
		cpu += f->rows[i].cpu_pct;
		exits += f->rows[i].exits_s;
		io += f->rows[i].io_s;
	}
	char iob[16];
	human(io, iob, sizeof(iob));
	fprintf(out,
		"VMs: %zu, %lld running, %lld paused, %lld exited, %lld crashed; CPU %.1f%%, %.0f "
		"exits/s, I/O %s/s%s",
		f->n, jint(st, "running"), jint(st, "paused"), jint(st, "exited"),
		jint(st, "crashed"), cpu, exits, iob, eol);
	fprintf(out, "%s", eol);
	fprintf(out, "%-20s %-12s %-8s %8s %6s %9s %7s %7s %8s%s", "NAME", "ID", "STATE", "PID",
		"CPU%", "EXITS/s", "MEM", "RSS", "IO/s", eol);
	for (size_t i = 0; i < f->n && i < max_rows; i++) {
		const struct row *w = &f->rows[i];
		char pid[24] = "-", cpub[16] = "-", exb[16] = "-", mem[16], rss[16] = "-",
		     iobuf[16] = "-";
		if (w->live && w->pid > 0)
			snprintf(pid, sizeof(pid), "%lld", w->pid);
		human((double)w->mem, mem, sizeof(mem));
		if (w->rss)
			human((double)w->rss, rss, sizeof(rss));
		if (w->rates) {
			if (w->has_cpu)
				snprintf(cpub, sizeof(cpub), "%.1f", w->cpu_pct);
			snprintf(exb, sizeof(exb), "%.0f", w->exits_s);
			if (w->has_io)
				human(w->io_s, iobuf, sizeof(iobuf));
		}
		fprintf(out, "%-20.20s %-12s %-8s %8s %6s %9s %7s %7s %8s%s", w->name, w->id,
			w->state, pid, cpub, exb, mem, rss, iobuf, eol);
	}
	if (f->n > max_rows)
		fprintf(out, "(%zu more)%s", f->n - max_rows, eol);
}

static int parse_sort(const char *s, enum sort_col *out)
{
	for (size_t i = 0; i < sizeof(sort_names) / sizeof(sort_names[0]); i++)
		if (!strcmp(s, sort_names[i])) {
			*out = (enum sort_col)i;
			return 0;
		}
	return -1;
}

/* A key pressed on the live screen: a sort column, or -1. */
static int key_sort(char k)
{
	switch (k) {
	case 'n':
		return SORT_NAME;
	case 's':
		return SORT_STATE;
	case 'c':
	case 'P': /* as in top */
		return SORT_CPU;
	case 'e':
		return SORT_EXITS;
	case 'm':
	case 'M':
		return SORT_MEM;
	case 'r':
		return SORT_RSS;
	case 'i':
		return SORT_IO;
	}
	return -1;
}

static void draw(const struct frame *f, uint64_t delay_ms)
{
	struct winsize ws = {0};
	size_t rows = 24;
	if (ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0)
		rows = ws.ws_row;
	fputs("\033[H", stdout);
	/* Four lines of header, one left for "(N more)". */
	render(stdout, f, delay_ms, rows > 6 ? rows - 6 : 1, "\033[K\r\n");
	fputs("\033[J", stdout);
	fflush(stdout);
}

/* Wait delay_ms for keys on the live screen; returns 1 to quit, 2 to redraw now. */
static int wait_keys(uint64_t delay_ms)
{
	uint64_t end = util_now_ns() + delay_ms * 1000000;
	for (;;) {
		if (stop_signal)
			return 1;
		if (resized) {
			resized = 0;
			return 2;
		}
		uint64_t now = util_now_ns();
		if (now >= end)
			return 0;
		struct pollfd p = {.fd = 0, .events = POLLIN};
		int n = poll(&p, 1, (int)((end - now + 999999) / 1000000));
		if (n <= 0 || !(p.revents & POLLIN))
			continue;
		char keys[16];
		ssize_t k = read(0, keys, sizeof(keys));
		if (k <= 0) /* the terminal went away */
			return 1;
		int redraw = 0;
		for (ssize_t i = 0; i < k; i++) {
			if (keys[i] == 'q' || keys[i] == 'Q' || keys[i] == 3 /* ^C */)
				return 1;
			int s = key_sort(keys[i]);
			if (s >= 0) {
				sort_by = (enum sort_col)s;
				redraw = 2;
			}
		}
		if (redraw)
			return redraw;
	}
}

int cmd_top(int argc, char **argv)
{
	static const struct option opts[] = {
		{"delay", required_argument, NULL, 'd'},
		{"sort", required_argument, NULL, 'o'},
		{"batch", no_argument, NULL, 'b'},
		{"iterations", required_argument, NULL, 'n'},
		CLIENT_OPTIONS,
		{0},
	};
	uint64_t delay_ms = 1000, iterations = 0;
	bool batch = false;
	int c;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+d:o:bn:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			if (opt_parse_duration_ms(optarg, &delay_ms) || delay_ms < 100) {
				fprintf(stderr,
					"wisp: top: -d '%s': not a duration of at least 100ms (use "
					"e.g. 2 or 500ms)\n",
					optarg);
				return WISP_EXIT_ERROR;
			}
			break;
		case 'o':
			if (parse_sort(optarg, &sort_by)) {
				fprintf(stderr,
					"wisp: top: -o '%s': not a column (name, state, cpu, "
					"exits, "
					"mem, rss or io)\n",
					optarg);
				return WISP_EXIT_ERROR;
			}
			break;
		case 'b':
			batch = true;
			break;
		case 'n':
			if (opt_parse_uint(optarg, 1, 1000000000, &iterations)) {
				fprintf(stderr, "wisp: top: -n '%s': must be a number from 1\n",
					optarg);
				return WISP_EXIT_ERROR;
			}
			break;
		case 'S':
			client_set_socket(optarg);
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			return client_bad_option("top", argv, usage);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "wisp: top: unexpected argument '%s'\n%s", argv[optind], usage);
		return WISP_EXIT_ERROR;
	}
	/* Not on a terminal: frames for a script, as with -b. */
	if (!isatty(0) || !isatty(1))
		batch = true;
	struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: poll wakes */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGWINCH, &sa, NULL);

	struct frame prev = {0}, cur = {0};
	/* The first frame is the baseline of the rates. */
	if (take_frame(&prev)) {
		free_frame(&prev);
		client_close();
		return WISP_EXIT_ERROR;
	}
	if (!batch)
		tty_enter();
	int code = 0;
	uint64_t shown = 0;
	uint64_t wait_ms = batch ? delay_ms : 200; /* a live screen appears at once */
	for (;;) {
		int w;
		if (batch) {
			struct timespec ts = {(time_t)(wait_ms / 1000),
					      (long)(wait_ms % 1000) * 1000000};
			while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !stop_signal)
				;
			w = stop_signal ? 1 : 0;
		} else {
			w = wait_keys(wait_ms);
		}
		if (w == 1)
			break;
		if (w == 2 && cur.rows) { /* a new sort or size: redraw what we have */
			qsort(cur.rows, cur.n, sizeof(*cur.rows), compare_rows);
			draw(&cur, delay_ms);
			wait_ms = delay_ms;
			continue;
		}
		if (cur.rows) {
			free_frame(&prev);
			prev = cur;
		}
		if (take_frame(&cur)) {
			code = WISP_EXIT_ERROR;
			break;
		}
		compute_rates(&cur, &prev);
		qsort(cur.rows, cur.n, sizeof(*cur.rows), compare_rows);
		if (batch) {
			if (shown)
				printf("\n");
			render(stdout, &cur, delay_ms, (size_t)-1, "\n");
			fflush(stdout);
		} else {
			draw(&cur, delay_ms);
		}
		wait_ms = delay_ms;
		if (iterations && ++shown >= iterations)
			break;
		if (!iterations)
			shown++;
	}
	if (!batch)
		tty_leave();
	if (code)
		fprintf(stderr, "wisp: top: wispd stopped answering\n");
	free_frame(&prev);
	free_frame(&cur);
	client_close();
	return code;
}
