/* The wispd <-> VMM protocol (ctl_proto.h): whole messages over a
 * SOCK_SEQPACKET socket, an optional file descriptor riding along, and the
 * small shared vocabulary (states, ids, names, the runtime directory). */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control/ctl_proto.h"
#include "vmm/config.h"

int ctl_send(int sock, const void *msg, size_t len, int fd)
{
	return util_send_fd(sock, msg, len, fd);
}

ssize_t ctl_recv(int sock, void *buf, size_t cap, int *fd)
{
	return util_recv_fd(sock, buf, cap, fd, 0);
}

/* Is the array a NUL-terminated string? */
static bool terminated(const char *s, size_t cap)
{
	return memchr(s, 0, cap) != NULL;
}

static int bad_info(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int bad_info(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -EPROTO;
}

int ctl_check_info(const void *msg, size_t len, char *why, size_t whylen)
{
	const struct ctl_info *in = msg;
	char err[WISP_ERRLEN];
	if (len != sizeof(*in))
		return bad_info(why, whylen, "%zu bytes, not a report (%zu)", len, sizeof(*in));
	if (in->type < CTL_READY || in->type > CTL_STATE)
		return bad_info(why, whylen, "unknown message type %u", in->type);
	if (in->state > CTL_STATE_LAST)
		return bad_info(why, whylen, "state %u out of range", in->state);
	if (in->type == CTL_EXIT && in->state != CTL_STATE_EXITED && in->state != CTL_STATE_CRASHED)
		return bad_info(why, whylen, "an exit report with the live state %s",
				ctl_state_name((enum ctl_state)in->state));
	if (in->flags & ~CTL_FLAG_FROM_POOL)
		return bad_info(why, whylen, "unknown flags %#x", in->flags);
	if (in->pid < 0)
		return bad_info(why, whylen, "pid %d", in->pid);
	if (in->error > 0 || in->error < -4095)
		return bad_info(why, whylen, "error %d is not an errno", in->error);
	if (!terminated(in->id, sizeof(in->id)) || (in->id[0] && !ctl_valid_id(in->id)))
		return bad_info(why, whylen, "malformed id");
	if (!terminated(in->name, sizeof(in->name)) || (in->name[0] && !ctl_valid_name(in->name)))
		return bad_info(why, whylen, "malformed name");
	if (!terminated(in->reason, sizeof(in->reason)))
		return bad_info(why, whylen, "reason not terminated");
	if (in->mem && vm_check_mem(in->mem, "memory size", "reported", err, sizeof(err)))
		return bad_info(why, whylen, "%s", err);
	if (in->mig_state > CTL_MIG_FAILED)
		return bad_info(why, whylen, "migration state %u out of range", in->mig_state);
	if (in->nr_devs > CTL_DEV_MAX)
		return bad_info(why, whylen, "%u devices (at most %d)", in->nr_devs, CTL_DEV_MAX);
	for (uint32_t i = 0; i < in->nr_devs; i++) {
		const struct ctl_dev_stats *d = &in->devs[i];
		if (!terminated(d->type, sizeof(d->type)) || !d->type[0] ||
		    strspn(d->type, "abcdefghijklmnopqrstuvwxyz-") != strlen(d->type))
			return bad_info(why, whylen, "device %u: malformed type", i);
		if (d->slot >= CTL_DEV_MAX)
			return bad_info(why, whylen, "device %u: slot %u out of range", i, d->slot);
	}
	return 0;
}

const char *ctl_state_name(enum ctl_state s)
{
	switch (s) {
	case CTL_STATE_SHELL:
		return "shell";
	case CTL_STATE_STARTING:
		return "starting";
	case CTL_STATE_RUNNING:
		return "running";
	case CTL_STATE_PAUSED:
		return "paused";
	case CTL_STATE_EXITED:
		return "exited";
	case CTL_STATE_CRASHED:
		return "crashed";
	case CTL_STATE_RECEIVING:
		return "receiving";
	}
	return "unknown";
}

void ctl_new_id(char id[CTL_ID_LEN + 1])
{
	uint8_t r[CTL_ID_LEN / 2];
	size_t got = 0;
	while (got < sizeof(r)) {
		ssize_t n = getrandom(r + got, sizeof(r) - got, 0);
		if (n > 0)
			got += (size_t)n;
		else if (errno != EINTR)
			break;
	}
	if (got < sizeof(r)) { /* no getrandom: still unique enough with the clock */
		uint64_t t = util_now_ns() ^ (uint64_t)getpid() << 40;
		memcpy(r, &t, sizeof(r));
	}
	for (size_t i = 0; i < sizeof(r); i++)
		snprintf(id + 2 * i, 3, "%02x", r[i]);
}

bool ctl_valid_id(const char *s)
{
	return util_is_vm_id(s);
}

bool ctl_valid_name(const char *s)
{
	return vm_name_valid(s);
}

void ctl_default_runtime_dir(char *buf, size_t len)
{
	util_runtime_dir(buf, len);
}
