/* The structured logger of wispd, wisp-vmm and `wisp run`: one message,
 * one line on stderr, as plain text ("wispd: VM ID: message", as these
 * programs always wrote) or as a JSON object per line for log collectors.
 *
 * Each line is formatted in a buffer and written with one write(2): vCPU
 * threads and the VMMs that share wispd's log never interleave inside a
 * line (the log is opened O_APPEND; a pipe keeps writes under PIPE_BUF whole). */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/util.h"

static const char *log_component = "wisp";
static enum log_format log_fmt = LOG_FORMAT_TEXT;
static char log_vm[64]; /* the default vm field; empty: none */
static int log_fd = 2;	/* -1: lines are formatted, not written */

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_setup(const char *component, enum log_format format)
{
	log_component = component;
	log_fmt = format;
	/* Seed jansson's hash here, in one thread, before vCPU threads log. */
	json_object_seed(0);
}

void log_set_vm(const char *vm)
{
	snprintf(log_vm, sizeof(log_vm), "%s", vm ? vm : "");
}

void log_set_fd(int fd)
{
	log_fd = fd;
}

int log_parse_format(const char *s, enum log_format *out)
{
	if (!strcmp(s, "text"))
		*out = LOG_FORMAT_TEXT;
	else if (!strcmp(s, "json"))
		*out = LOG_FORMAT_JSON;
	else
		return -EINVAL;
	return 0;
}

enum log_format log_get_format(void)
{
	return log_fmt;
}

const char *log_format_name(enum log_format format)
{
	return format == LOG_FORMAT_JSON ? "json" : "text";
}

/* Write all of buf to the log (stderr) in one call if it can. */
static void write_line(const char *buf, size_t len)
{
	while (len && log_fd >= 0) {
		ssize_t n = write(log_fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

/* A JSON string of s; bytes that are not UTF-8 (a guest may choose them)
 * become '?', since JSON text must be UTF-8. */
static json_t *json_text(const char *s)
{
	json_t *j = json_string(s);
	if (j)
		return j;
	char *copy = strdup(s);
	if (!copy)
		return NULL;
	for (char *p = copy; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	j = json_string(copy);
	free(copy);
	return j;
}

/* RFC 3339 UTC time with milliseconds: 2026-12-03T12:34:56.789Z. */
static void format_time(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

static void log_json(enum log_level level, const char *vm, const char *msg)
{
	char when[40];
	format_time(when, sizeof(when));
	json_t *o = json_object();
	if (!o)
		return;
	json_object_set_new(o, "time", json_string(when));
	json_object_set_new(o, "level", json_string(level_names[level]));
	json_object_set_new(o, "component", json_string(log_component));
	json_object_set_new(o, "pid", json_integer(getpid()));
	if (vm)
		json_object_set_new(o, "vm", json_text(vm));
	json_object_set_new(o, "msg", json_text(msg));
	char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (!s)
		return;
	size_t n = strlen(s);
	char *line = realloc(s, n + 2);
	if (!line) {
		free(s);
		return;
	}
	line[n] = '\n';
	line[n + 1] = 0;
	write_line(line, n + 1);
	free(line);
}

void log_vmsg(enum log_level level, const char *vm, const char *fmt, va_list ap)
{
	char msg[4096];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (!vm && log_vm[0])
		vm = log_vm;
	if (log_fmt == LOG_FORMAT_JSON) {
		log_json(level, vm, msg);
		return;
	}
	char line[4400];
	int n = snprintf(line, sizeof(line), "%s: %s%s%s%s\n", log_component, vm ? "VM " : "",
			 vm ? vm : "", vm ? ": " : "", msg);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) { /* cut, but still one line */
		n = (int)sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	write_line(line, (size_t)n);
}

void log_msg(enum log_level level, const char *vm, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(level, vm, fmt, ap);
	va_end(ap);
}
