/* Progress of long work (migrations, saves, restores, image builds): on a
 * terminal, one line redrawn in place with the bytes done, the rate and the
 * time left; elsewhere (a log, a pipe) nothing until the end, then one
 * summary line; with quiet, nothing at all. Always on stderr, so that what
 * a verb prints on stdout stays the same for scripts. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/util.h"

/* Redraw at most this often: a terminal needs no more, and a caller may
 * report every few KiB. */
#define REDRAW_NS 100000000ull

void progress_start(struct progress *p, const char *what, uint64_t total, bool quiet)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->what, sizeof(p->what), "%s", what);
	p->total = total;
	p->quiet = quiet;
	p->tty = !quiet && isatty(2);
	p->start_ns = util_now_ns();
}

/* 1536 -> "1.5 KiB". */
static void human_bytes(double b, char *buf, size_t len)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	int u = 0;
	while (b >= 1024 && u < 4) {
		b /= 1024;
		u++;
	}
	snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", b, units[u]);
}

static void draw(struct progress *p, uint64_t now)
{
	double secs = (double)(now - p->start_ns) / 1e9;
	double rate = secs > 0 ? (double)p->done / secs : 0;
	char done[32], total[32], rb[32], line[256];
	human_bytes((double)p->done, done, sizeof(done));
	human_bytes(rate, rb, sizeof(rb));
	int n;
	if (p->total) {
		human_bytes((double)p->total, total, sizeof(total));
		uint64_t left = p->total > p->done ? p->total - p->done : 0;
		char eta[32] = "--:--";
		if (rate > 0) {
			unsigned long s = (unsigned long)((double)left / rate + 0.5);
			snprintf(eta, sizeof(eta), "%lu:%02lu", s / 60, s % 60);
		}
		n = snprintf(line, sizeof(line), "\r%s: %s / %s (%.0f%%), %s/s, ETA %s\033[K",
			     p->what, done, total,
			     100.0 * (double)(p->done < p->total ? p->done : p->total) /
				     (double)p->total,
			     rb, eta);
	} else {
		n = snprintf(line, sizeof(line), "\r%s: %s, %s/s, %.1f s\033[K", p->what, done, rb,
			     secs);
	}
	if (n > 0 && write(2, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1) > 0)
		p->drawn = true;
	p->drawn_ns = now;
}

void progress_set_total(struct progress *p, uint64_t total)
{
	p->total = total;
}

void progress_update(struct progress *p, uint64_t done)
{
	p->done = done;
	if (!p->tty)
		return;
	uint64_t now = util_now_ns();
	if (!p->drawn || now - p->drawn_ns >= REDRAW_NS)
		draw(p, now);
}

void progress_add(struct progress *p, uint64_t n)
{
	progress_update(p, p->done + n);
}

void progress_step(struct progress *p, const char *text)
{
	if (!p->tty)
		return;
	char line[400];
	int n = snprintf(line, sizeof(line), "\r%s: %s (%.1f s)\033[K", p->what, text,
			 (double)(util_now_ns() - p->start_ns) / 1e9);
	if (n > 0 && write(2, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1) > 0)
		p->drawn = true;
}

void progress_clear(struct progress *p)
{
	if (p->tty && p->drawn && write(2, "\r\033[K", 4) > 0)
		p->drawn = false;
}

void progress_end(struct progress *p, bool ok)
{
	if (p->quiet)
		return;
	uint64_t now = util_now_ns();
	if (p->tty) {
		if (!ok && !p->drawn)
			return;
		draw(p, now); /* the final numbers, then leave the line */
		if (write(2, "\n", 1) < 0)
			return;
		return;
	}
	if (!ok)
		return; /* the caller says what failed */
	double secs = (double)(now - p->start_ns) / 1e9;
	char done[32], rb[32], line[256];
	human_bytes((double)p->done, done, sizeof(done));
	human_bytes(secs > 0 ? (double)p->done / secs : 0, rb, sizeof(rb));
	int n = snprintf(line, sizeof(line), "%s: %s in %.2f s (%s/s)\n", p->what, done, secs, rb);
	if (n > 0 && write(2, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1) < 0)
		return;
}
