/* virtio-console (device ID 3), one port (hvc0 in Linux): queue 0 carries
 * input to the guest, queue 1 its output. The host end is either Wisp's
 * stdin/stdout or a unix socket that one client at a time may connect to
 * (`--console virtio,sock=PATH`).
 *
 * Input is level-triggered and read once per chain: stdin stays blocking
 * (it is shared with the shell that started us), and epoll said it is
 * readable. When the guest has no buffers, input is unwatched (removed from
 * epoll, which would otherwise keep reporting it, hang-ups included) until
 * the guest's next receive notify. Output to stdout blocks like a terminal; output to a
 * socket whose client does not keep up is dropped and counted, so that a
 * stalled client cannot stall the I/O thread.
 *
 * MULTIPORT is offered for its control queues (2: to the driver, 3: from
 * it), with one port: they tell the device when the guest's port is ready
 * for input. Without them a device cannot know: Linux gives the port its
 * receive buffers before it hooks the port up, and drops whatever arrives
 * in between, so input that was waiting at boot was lost (found in the
 * lab). The exchange: driver DEVICE_READY -> device PORT_ADD 0 -> driver
 * PORT_READY 0 -> device CONSOLE_PORT 0 -> driver PORT_OPEN 0 1, and only
 * then is input delivered. A driver that does not take MULTIPORT (the
 * unikernel one) gets input as soon as it has buffers.
 *
 * Snapshots carry where that exchange stands (struct
 * virtio_console_state_v1): whether the port is open and which control
 * messages are still owed. The backend is the host's, not the guest's: a
 * restored console is the restoring process's stdio or a new listener on
 * the same socket path. No input is ever buffered in the device (it is read
 * straight into a guest buffer), so there is none to save: bytes not yet
 * read are still in the old backend. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <linux/virtio_console.h>
#include <linux/virtio_ids.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "devices/virtio/virtio.h"
#include "security/security.h"
#include "util/util.h"
#include "vmm/ioloop.h"
#include "vmm/vmm.h"

#define RXQ	 0
#define TXQ	 1
#define CTRL_RXQ 2 /* control messages to the driver (MULTIPORT) */
#define CTRL_TXQ 3 /* control messages from the driver */

/* Control messages the device owes the driver (bits of owe). */
#define OWE_PORT_ADD	 VIRTIO_CONSOLE_OWE_PORT_ADD
#define OWE_CONSOLE_PORT VIRTIO_CONSOLE_OWE_CONSOLE_PORT
#define OWE_ALL		 (OWE_PORT_ADD | OWE_CONSOLE_PORT)

#define CON_PORTS 1 /* max_nr_ports */

struct virtio_console {
	struct virtio_dev dev;
	int in_fd, out_fd; /* stdio, or both the connected client; -1 when none */
	int listen_fd;	   /* socket backend, else -1 */
	char *sock_path;
	bool in_wait;	/* input is ready but the guest had no buffer */
	bool multiport; /* the driver took VIRTIO_CONSOLE_F_MULTIPORT */
	bool port_open; /* the guest's port takes input (always, without MULTIPORT) */
	uint32_t owe;	/* control messages not yet sent (OWE_*) */
	struct virtq_chain chain, ctrl;
	struct outlet out; /* out_fd, written without blocking */
	uint64_t in_bytes, out_bytes, out_dropped;
};

static struct virtio_console *to_con(struct virtio_dev *d)
{
	return (struct virtio_console *)d;
}

static void on_input(void *opaque, uint32_t events);

/* Stop watching input until the guest gives us a buffer. */
static void input_wait(struct virtio_console *c)
{
	if (!c->in_wait) {
		c->in_wait = true;
		ioloop_del(c->dev.loop, c->in_fd);
	}
}

static void drop_client(struct virtio_console *c)
{
	ioloop_del(c->dev.loop, c->in_fd);
	c->in_wait = false;
	if (c->listen_fd < 0) { /* stdin at EOF: stop reading it */
		c->in_fd = -1;
		return;
	}
	close(c->in_fd);
	outlet_close(&c->out);
	c->in_fd = c->out_fd = -1;
}

/* Move input into one guest buffer; called when the input fd is readable. */
static void con_rx(struct virtio_console *c)
{
	struct virtio_dev *d = &c->dev;
	struct virtq *q = &d->vq[RXQ];
	if (c->in_fd < 0)
		return;
	int r = virtio_pop(d, RXQ, &c->chain);
	if (r == 0 && virtq_enable_notify(q))
		r = virtio_pop(d, RXQ, &c->chain);
	if (r <= 0) {
		if (r == 0)
			input_wait(c); /* resume on the guest's next notify */
		return;
	}
	if (c->chain.nr_r) {
		virtio_needs_reset(d, "console receive buffer is device-readable");
		return;
	}
	ssize_t k = c->chain.w_len ? readv(c->in_fd, c->chain.iov, c->chain.nr_w) : 0;
	if (k < 0 && (errno == EAGAIN || errno == EINTR)) {
		virtq_unpop(q);
		return;
	}
	if (k <= 0) {
		virtq_unpop(q);
		drop_client(c);
		return;
	}
	c->in_bytes += (uint64_t)k;
	virtq_push(q, c->chain.head, (uint32_t)k);
	virtio_signal_used(d, q);
}

static void con_tx(struct virtio_console *c)
{
	struct virtio_dev *d = &c->dev;
	struct virtq *q = &d->vq[TXQ];
	for (;;) {
		int r = virtio_pop(d, TXQ, &c->chain);
		if (r == 0 && virtq_enable_notify(q))
			continue;
		if (r <= 0)
			break;
		if (c->chain.nr_w) {
			virtio_needs_reset(d, "console transmit buffer is device-writable");
			break;
		}
		/* Never blocks: a stalled consumer costs at most OUTLET_STALL_MS
		 * once, then its output is dropped and counted (security.h). */
		uint64_t left = c->chain.r_len;
		if (c->out_fd >= 0) {
			uint64_t before = c->out.dropped;
			int64_t k = outlet_writev(&c->out, c->chain.iov, c->chain.nr_r,
						  c->dev.vm ? &c->dev.vm->stop : NULL);
			if (k > 0) {
				uint64_t lost = c->out.dropped - before;
				c->out_bytes += (uint64_t)k - lost;
				left = lost + (c->chain.r_len - (uint64_t)k);
			}
		}
		c->out_dropped += left;
		virtq_push(q, c->chain.head, 0);
	}
	virtio_signal_used(d, q);
}

/* Watch input again after a wait, if the guest can take it now. */
static void input_resume(struct virtio_console *c)
{
	if (c->in_wait && c->in_fd >= 0 && c->port_open) {
		c->in_wait = false;
		if (ioloop_add(c->dev.loop, c->in_fd, EPOLLIN, on_input, c) == 0)
			con_rx(c);
	}
}

/* Send the control messages owed, as far as the driver has buffers. */
static void ctrl_send(struct virtio_console *c)
{
	struct virtio_dev *d = &c->dev;
	struct virtq *q = &d->vq[CTRL_RXQ];
	while (c->owe && q->s.ready) {
		int r = virtio_pop(d, CTRL_RXQ, &c->ctrl);
		if (r == 0 && virtq_enable_notify(q))
			r = virtio_pop(d, CTRL_RXQ, &c->ctrl);
		if (r <= 0)
			break; /* the driver's next notify of this queue resumes us */
		if (c->ctrl.nr_r || c->ctrl.w_len < sizeof(struct virtio_console_control)) {
			virtio_needs_reset(d, c->ctrl.nr_r
						      ? "console control buffer is device-readable"
						      : "console control buffer too small");
			break;
		}
		struct virtio_console_control m = {.id = 0, .value = 1};
		if (c->owe & OWE_PORT_ADD) {
			m.event = VIRTIO_CONSOLE_PORT_ADD;
			c->owe &= ~OWE_PORT_ADD;
		} else {
			m.event = VIRTIO_CONSOLE_CONSOLE_PORT;
			c->owe &= ~OWE_CONSOLE_PORT;
		}
		virtq_write(&c->ctrl, 0, &m, sizeof(m));
		virtq_push(q, c->ctrl.head, sizeof(m));
	}
	virtio_signal_used(d, q);
}

/* Control messages from the driver. Unknown or malformed ones are counted
 * and ignored: they concern only this guest's own console. */
static void ctrl_receive(struct virtio_console *c)
{
	struct virtio_dev *d = &c->dev;
	struct virtq *q = &d->vq[CTRL_TXQ];
	for (;;) {
		int r = virtio_pop(d, CTRL_TXQ, &c->ctrl);
		if (r == 0 && virtq_enable_notify(q))
			continue;
		if (r <= 0)
			break;
		if (c->ctrl.nr_w) {
			virtio_needs_reset(d, "console control message is device-writable");
			break;
		}
		struct virtio_console_control m;
		if (virtq_read(&c->ctrl, 0, &m, sizeof(m)) < sizeof(m)) {
			virtio_guest_error(d, "console control message too short");
		} else if (m.event == VIRTIO_CONSOLE_DEVICE_READY) {
			if (m.value == 1)
				c->owe |= OWE_PORT_ADD;
		} else if (m.id != 0) {
			virtio_guest_error(
				d, "console control message for a port that does not exist");
		} else if (m.event == VIRTIO_CONSOLE_PORT_READY) {
			if (m.value == 1)
				c->owe |= OWE_CONSOLE_PORT;
		} else if (m.event == VIRTIO_CONSOLE_PORT_OPEN) {
			c->port_open = m.value != 0;
		} else {
			virtio_guest_error(d, "console control message unknown");
		}
		virtq_push(q, c->ctrl.head, 0);
	}
	virtio_signal_used(d, q);
	ctrl_send(c);
	input_resume(c);
}

static void con_notify(struct virtio_dev *d, int q)
{
	struct virtio_console *c = to_con(d);
	if (q == TXQ)
		con_tx(c);
	else if (q == RXQ)
		input_resume(c);
	else if (q == CTRL_TXQ && c->multiport)
		ctrl_receive(c);
	else if (q == CTRL_RXQ && c->multiport)
		ctrl_send(c);
}

static int con_activate(struct virtio_dev *d)
{
	struct virtio_console *c = to_con(d);
	c->multiport = d->t.driver_features & 1ull << VIRTIO_CONSOLE_F_MULTIPORT;
	c->port_open = !c->multiport;
	return 0;
}

/* Status 0 (vCPU thread): the port is gone until the driver sets up again. */
static void con_reset(struct virtio_dev *d)
{
	struct virtio_console *c = to_con(d);
	c->multiport = c->port_open = false;
	c->owe = 0;
}

static void on_input(void *opaque, uint32_t events)
{
	struct virtio_console *c = opaque;
	pthread_mutex_lock(&c->dev.lock);
	if (c->in_fd < 0 || c->in_wait)
		; /* a stale event */
	else if (!virtio_running(&c->dev) || !c->dev.vq[RXQ].s.ready || !c->port_open)
		input_wait(c); /* not ready for input yet: wait for the first notify */
	else if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		con_rx(c);
	pthread_mutex_unlock(&c->dev.lock);
}

static void on_accept(void *opaque, uint32_t events)
{
	struct virtio_console *c = opaque;
	(void)events;
	int fd = accept4(c->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	pthread_mutex_lock(&c->dev.lock);
	if (c->in_fd >= 0 || ioloop_add(c->dev.loop, fd, EPOLLIN, on_input, c)) {
		close(fd); /* one client at a time */
	} else {
		c->in_fd = c->out_fd = fd;
		outlet_init(&c->out, fd);
		c->in_wait = false;
	}
	pthread_mutex_unlock(&c->dev.lock);
}

static int con_start(struct virtio_dev *d)
{
	struct virtio_console *c = to_con(d);
	if (c->listen_fd >= 0)
		return ioloop_add(d->loop, c->listen_fd, EPOLLIN, on_accept, c);
	/* stdin may be a file or /dev/null, which epoll refuses: no input then. */
	if (c->in_fd >= 0 && ioloop_add(d->loop, c->in_fd, EPOLLIN, on_input, c))
		c->in_fd = -1;
	return 0;
}

static void con_destroy(struct virtio_dev *d)
{
	struct virtio_console *c = to_con(d);
	if (c->listen_fd >= 0) {
		if (c->in_fd >= 0)
			close(c->in_fd);
		close(c->listen_fd);
		unlink(c->sock_path);
	}
	outlet_close(&c->out);
	free(c->sock_path);
	free(c);
}

static void con_stats(struct virtio_dev *d, int fd)
{
	struct virtio_console *c = to_con(d);
	dprintf(fd,
		"wisp: virtio-console: input %" PRIu64 " bytes, output %" PRIu64
		" bytes, output dropped %" PRIu64 " bytes%s\n",
		c->in_bytes, c->out_bytes, c->out_dropped,
		c->multiport ? (c->port_open ? ", port open" : ", port not open") : "");
}

static int con_save_state(struct virtio_dev *d, struct wbuf *out, uint32_t *version)
{
	struct virtio_console *c = to_con(d);
	struct virtio_console_state_v1 s = {
		.nr_ports = CON_PORTS, .port_open = c->port_open, .owe = c->owe};
	wbuf_put(out, &s, sizeof(s));
	*version = 1;
	return 0;
}

/* After the transport's restore: c->multiport and c->port_open are what
 * activate (or the reset before it) made of the restored features. */
static int con_restore_state(struct virtio_dev *d, const void *buf, size_t len, uint32_t version,
			     char *err, size_t errlen)
{
	struct virtio_console *c = to_con(d);
	struct virtio_console_state_v1 s;
	int r = device_state_check("console state", version, len, 1, sizeof(s), false, err, errlen);
	if (r)
		return r;
	memcpy(&s, buf, sizeof(s));
	if (s.nr_ports != CON_PORTS) {
		snprintf(err, errlen, "the snapshot's console has %u ports, this one %u",
			 s.nr_ports, CON_PORTS);
		return -EINVAL;
	}
	if (s.port_open > 1 || (s.owe & ~OWE_ALL) || s.reserved) {
		snprintf(err, errlen, "console state holds values no console has");
		return -EINVAL;
	}
	/* Without MULTIPORT (or before the driver started the device) there
	 * is no control exchange: nothing is owed, and the port is open
	 * exactly when the device runs. */
	if (!c->multiport && (s.owe || s.port_open != c->port_open)) {
		snprintf(err, errlen, "console state does not match the driver's features");
		return -EINVAL;
	}
	c->port_open = s.port_open;
	c->owe = s.owe;
	/* Input set aside while the device was not running resumes on the
	 * receive queue's kick, which the transport's restore gives when the
	 * driver has buffers there (else its next notify does). */
	return 0;
}

static const struct virtio_dev_ops con_ops = {
	.name = "virtio-console",
	.snapshot = true,
	.save_state = con_save_state,
	.restore_state = con_restore_state,
	.device_id = VIRTIO_ID_CONSOLE,
	.nr_queues = 4,
	.notify = con_notify,
	.activate = con_activate,
	.reset = con_reset,
	.start = con_start,
	.destroy = con_destroy,
	.stats = con_stats,
};

/* Listen on a unix socket at path; -1 with err set on failure. */
static int listen_unix(const char *what, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(a.sun_path)) {
		snprintf(err, errlen, "%s '%s': path longer than %zu bytes", what, path,
			 sizeof(a.sun_path) - 1);
		return -1;
	}
	strcpy(a.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	/* The mode is set between bind and listen, where no one can connect
	 * yet: 0600 whatever the umask (it is the guest's console). */
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || chmod(path, 0600) < 0 ||
	    listen(fd, 8) < 0) {
		snprintf(err, errlen, "%s '%s': %s%s", what, path, strerror(errno),
			 errno == EADDRINUSE ? " (remove the stale file if no VM uses it)" : "");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

struct virtio_dev *virtio_console_create(const struct virtio_console_opts *o, char *err,
					 size_t errlen)
{
	struct virtio_console *c = calloc(1, sizeof(*c));
	/* Config space: cols, rows (no SIZE: zero) and max_nr_ports. */
	if (!c || virtio_dev_init(&c->dev, &con_ops, 1ull << VIRTIO_CONSOLE_F_MULTIPORT,
				  offsetof(struct virtio_console_config, emerg_wr))) {
		free(c);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	struct virtio_console_config cfg = {.max_nr_ports = 1};
	memcpy(c->dev.config, &cfg, c->dev.config_len);
	c->listen_fd = -1;
	if (o->sock_path) {
		c->in_fd = c->out_fd = -1;
		c->sock_path = strdup(o->sock_path);
		c->listen_fd = c->sock_path
				       ? listen_unix("console socket", o->sock_path, err, errlen)
				       : -1;
		if (c->listen_fd < 0) {
			free(c->sock_path);
			free(c);
			return NULL;
		}
	} else {
		c->in_fd = o->in_fd >= 0 ? o->in_fd : 0;
		c->out_fd = o->out_fd >= 0 ? o->out_fd : 1;
	}
	outlet_init(&c->out, c->out_fd);
	return &c->dev;
}
