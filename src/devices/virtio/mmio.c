/* The virtio-mmio transport, virtio 1.x ("modern", Version 2) register
 * layout, and the per-VM context that places devices in the MMIO window.
 *
 * Fast paths stay out of this file: QueueNotify writes land on one ioeventfd
 * per queue (KVM matches the queue index written) and wake the I/O thread
 * without a userspace exit; interrupts leave by irqfd when the VM has an
 * in-kernel irqchip, else as POLL-hypercall events (unikernels, which poll
 * their used rings). Only setup and the rare register access trap here. */
#include <errno.h>
#include <inttypes.h>
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <wisp/abi.h>

#include "devices/virtio/virtio.h"
#include "util/util.h"
#include "vmm/ioloop.h"
#include "vmm/vmm.h"

#define VIRTIO_MMIO_MAGIC  0x74726976u /* "virt" */
#define VIRTIO_MMIO_VENDOR 0x50534957u /* "WISP" */

/* Per-VM state shared by the virtio devices: their slots and the I/O loop. */
struct virtio_ctx {
	struct vm *vm;
	bool irqfd;
	bool loop_per_device; /* WISP_IO_THREADS=device: QEMU-style thread per device */
	struct ioloop loop;   /* the shared loop (one per VM) */
	bool loop_ok;
	int nr;
	struct virtio_dev *devs[VIRTIO_MAX_DEVICES];
	/* Each device's VM device-list entry: dev_ops named after its type
	 * (virtio-blk, ...). The context is older on the list, so these outlive
	 * the devices' entries at teardown. */
	struct device_ops entry_ops[VIRTIO_MAX_DEVICES];
};

/* --- interrupts and errors ----------------------------------------------- */

static void raise_irq(struct virtio_dev *d, uint32_t why)
{
	d->t.isr |= why;
	d->interrupts++;
	if (d->irqfd >= 0) {
		uint64_t one = 1;
		while (write(d->irqfd, &one, sizeof(one)) < 0 && errno == EINTR)
			;
	} else if (d->vm) {
		vm_raise_events(d->vm, 1ull << d->slot);
	}
}

void virtio_signal_used(struct virtio_dev *d, struct virtq *q)
{
	if (virtq_need_interrupt(q))
		raise_irq(d, VIRTIO_MMIO_INT_VRING);
}

/* Count a guest error and log it: the first, then at 2, 4, 8, ... so that a
 * guest that repeats one cannot flood the log. */
static void count_guest_error(struct virtio_dev *d, const char *why)
{
	d->guest_errors++;
	d->last_error = why;
	if (!(d->guest_errors & (d->guest_errors - 1)))
		log_warn(NULL, "%s: guest error: %s (%" PRIu64 " so far)", d->ops->name, why,
			 d->guest_errors);
}

void virtio_needs_reset(struct virtio_dev *d, const char *why)
{
	count_guest_error(d, why);
	if (d->t.status & VIRTIO_CONFIG_S_NEEDS_RESET)
		return;
	d->t.status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	/* The spec asks for a configuration-change interrupt once the driver
	 * is up, so that it notices. */
	if (d->t.status & VIRTIO_CONFIG_S_DRIVER_OK)
		raise_irq(d, VIRTIO_MMIO_INT_CONFIG);
}

void virtio_guest_error(struct virtio_dev *d, const char *why)
{
	count_guest_error(d, why);
}

bool virtio_running(const struct virtio_dev *d)
{
	return (d->t.status & (VIRTIO_CONFIG_S_DRIVER_OK | VIRTIO_CONFIG_S_NEEDS_RESET |
			       VIRTIO_CONFIG_S_FAILED)) == VIRTIO_CONFIG_S_DRIVER_OK;
}

int virtio_pop(struct virtio_dev *d, int q, struct virtq_chain *c)
{
	if (!virtio_running(d))
		return 0;
	int r = virtq_pop(&d->vq[q], c);
	if (r < 0)
		virtio_needs_reset(d, d->vq[q].error);
	return r;
}

/* --- registers ------------------------------------------------------------- */

/* Let the device work on queue q (lock held). */
static void serve(struct virtio_dev *d, int q)
{
	if (q >= 0 && q < d->ops->nr_queues && d->vq[q].s.ready && virtio_running(d))
		d->ops->notify(d, q);
}

/* From the vCPU thread: hand queue q to the I/O thread through its
 * ioeventfd, so that device work runs on one thread only. Without an I/O
 * thread (tests) serve it here. */
void virtio_kick_async(struct virtio_dev *d, int q)
{
	if (q < 0 || q >= d->ops->nr_queues)
		return;
	if (d->kick[q].fd < 0) {
		serve(d, q);
		return;
	}
	uint64_t one = 1;
	d->kick[q].internal++; /* not a guest notify: --stats must not count it */
	if (write(d->kick[q].fd, &one, sizeof(one)) < 0)
		d->kick[q].internal--;
}

static void reset(struct virtio_dev *d)
{
	if (d->ops->reset)
		d->ops->reset(d);
	for (int i = 0; i < VIRTIO_MAX_QUEUES; i++)
		virtq_reset(&d->vq[i]);
	uint32_t gen = d->t.config_generation;
	memset(&d->t, 0, sizeof(d->t));
	d->t.config_generation = gen;
}

static bool has(const struct virtio_dev *d, int bit)
{
	return d->t.driver_features & (1ull << bit);
}

static void set_status(struct virtio_dev *d, uint32_t v)
{
	uint32_t old = d->t.status;
	if (v == 0) {
		reset(d);
		return;
	}
	/* FEATURES_OK sticks only for a subset of ours that includes VERSION_1:
	 * the driver reads it back to learn whether we agreed. */
	if ((v & VIRTIO_CONFIG_S_FEATURES_OK) && !(old & VIRTIO_CONFIG_S_FEATURES_OK) &&
	    ((d->t.driver_features & ~d->device_features) || !has(d, VIRTIO_F_VERSION_1))) {
		v &= ~(uint32_t)VIRTIO_CONFIG_S_FEATURES_OK;
		virtio_guest_error(d, "driver accepted features the device does not offer");
	}
	d->t.status = v | (old & VIRTIO_CONFIG_S_NEEDS_RESET);
	if ((v & VIRTIO_CONFIG_S_DRIVER_OK) && !(old & VIRTIO_CONFIG_S_DRIVER_OK)) {
		if (!(v & VIRTIO_CONFIG_S_FEATURES_OK))
			virtio_needs_reset(d, "DRIVER_OK before FEATURES_OK");
		else if (d->ops->activate && d->ops->activate(d))
			virtio_needs_reset(d, "device could not start");
		else /* buffers may have been queued before DRIVER_OK */
			for (int q = 0; q < d->ops->nr_queues; q++)
				if (virtq_has_avail(&d->vq[q]))
					virtio_kick_async(d, q);
	}
}

static struct virtq *selected(struct virtio_dev *d)
{
	return d->t.queue_sel < d->ops->nr_queues ? &d->vq[d->t.queue_sel] : NULL;
}

static void set_ready(struct virtio_dev *d, struct virtq *q, uint32_t v)
{
	if (!v) {
		q->s.ready = false;
		return;
	}
	if (q->s.ready)
		return;
	if (virtq_setup(q, d->mem, has(d, VIRTIO_RING_F_EVENT_IDX),
			has(d, VIRTIO_RING_F_INDIRECT_DESC))) {
		virtio_needs_reset(d, q->error);
		return;
	}
	q->s.ready = true;
}

/* Set the low or high half of a 64-bit ring address. */
static void set_half(uint64_t *addr, uint32_t v, bool high)
{
	*addr = high ? (*addr & 0xffffffffull) | (uint64_t)v << 32 : (*addr & ~0xffffffffull) | v;
}

static void reg_write(struct virtio_dev *d, uint64_t off, uint32_t v)
{
	struct virtq *q = selected(d);
	/* Ring configuration is frozen while the queue is live. */
	struct virtq *cq = q && !q->s.ready ? q : NULL;
	switch (off) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
		d->t.dev_features_sel = v;
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
		d->t.drv_features_sel = v;
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		if (d->t.status & VIRTIO_CONFIG_S_FEATURES_OK)
			break;
		if (d->t.drv_features_sel == 0)
			set_half(&d->t.driver_features, v, false);
		else if (d->t.drv_features_sel == 1)
			set_half(&d->t.driver_features, v, true);
		break;
	case VIRTIO_MMIO_QUEUE_SEL:
		d->t.queue_sel = v;
		break;
	case VIRTIO_MMIO_QUEUE_NUM:
		if (cq)
			cq->s.num = v <= 0xffff ? (uint16_t)v : 0;
		break;
	case VIRTIO_MMIO_QUEUE_READY:
		if (q)
			set_ready(d, q, v);
		break;
	case VIRTIO_MMIO_QUEUE_NOTIFY:
		/* Only a 4-byte notify the ioeventfd did not match comes here
		 * (no ioeventfd, a queue that does not exist); other widths were
		 * refused above as guest errors (docs/virtio.md). */
		if (v < d->ops->nr_queues)
			virtio_kick_async(d, (int)v);
		else
			virtio_guest_error(d, "notify of a queue that does not exist");
		break;
	case VIRTIO_MMIO_INTERRUPT_ACK:
		d->t.isr &= ~v;
		break;
	case VIRTIO_MMIO_STATUS:
		set_status(d, v);
		break;
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
		if (cq)
			set_half(&cq->s.desc_gpa, v, off == VIRTIO_MMIO_QUEUE_DESC_HIGH);
		break;
	case VIRTIO_MMIO_QUEUE_AVAIL_LOW:
	case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
		if (cq)
			set_half(&cq->s.avail_gpa, v, off == VIRTIO_MMIO_QUEUE_AVAIL_HIGH);
		break;
	case VIRTIO_MMIO_QUEUE_USED_LOW:
	case VIRTIO_MMIO_QUEUE_USED_HIGH:
		if (cq)
			set_half(&cq->s.used_gpa, v, off == VIRTIO_MMIO_QUEUE_USED_HIGH);
		break;
	default: /* read-only or unknown: ignored */
		break;
	}
}

static uint32_t reg_read(struct virtio_dev *d, uint64_t off)
{
	struct virtq *q = selected(d);
	switch (off) {
	case VIRTIO_MMIO_MAGIC_VALUE:
		return VIRTIO_MMIO_MAGIC;
	case VIRTIO_MMIO_VERSION:
		return 2;
	case VIRTIO_MMIO_DEVICE_ID:
		return d->ops->device_id;
	case VIRTIO_MMIO_VENDOR_ID:
		return VIRTIO_MMIO_VENDOR;
	case VIRTIO_MMIO_DEVICE_FEATURES:
		return d->t.dev_features_sel == 0   ? (uint32_t)d->device_features
		       : d->t.dev_features_sel == 1 ? (uint32_t)(d->device_features >> 32)
						    : 0;
	case VIRTIO_MMIO_QUEUE_NUM_MAX:
		return q ? VIRTQ_MAX_SIZE : 0;
	case VIRTIO_MMIO_QUEUE_READY:
		return q ? q->s.ready : 0;
	case VIRTIO_MMIO_INTERRUPT_STATUS:
		return d->t.isr;
	case VIRTIO_MMIO_STATUS:
		return d->t.status;
	case VIRTIO_MMIO_SHM_LEN_LOW:
	case VIRTIO_MMIO_SHM_LEN_HIGH:
		return 0xffffffffu; /* no shared memory regions */
	case VIRTIO_MMIO_CONFIG_GENERATION:
		return d->t.config_generation;
	default:
		return 0;
	}
}

void virtio_mmio_access(void *opaque, struct vcpu *vcpu, uint64_t off, uint8_t *data, uint32_t len,
			bool is_write)
{
	struct virtio_dev *d = opaque;
	(void)vcpu;
	pthread_mutex_lock(&d->lock);
	d->mmio_accesses++;
	if (off >= VIRTIO_MMIO_CONFIG) {
		/* Config space: any width; bytes past the end read as zero, and no
		 * device here has writable configuration. */
		uint64_t c = off - VIRTIO_MMIO_CONFIG;
		if (!is_write)
			for (uint32_t i = 0; i < len; i++)
				data[i] = c + i < d->config_len ? d->config[c + i] : 0;
	} else if (len != 4 || off % 4) {
		/* The spec allows only aligned 32-bit register accesses. */
		virtio_guest_error(d, "register access not 32-bit aligned");
		if (!is_write)
			memset(data, 0, len);
	} else if (is_write) {
		uint32_t v;
		memcpy(&v, data, 4);
		reg_write(d, off, v);
	} else {
		uint32_t v = reg_read(d, off);
		memcpy(data, &v, 4);
	}
	pthread_mutex_unlock(&d->lock);
}

/* --- queue notifications --------------------------------------------------- */

void virtio_kick(struct virtio_dev *d, int q)
{
	pthread_mutex_lock(&d->lock);
	serve(d, q);
	pthread_mutex_unlock(&d->lock);
}

/* An ioeventfd fired: its counter is the number of guest notifies since we
 * last looked (each one an in-kernel exit), which --stats reports. */
static void on_kick(void *opaque, uint32_t events)
{
	struct virtio_kick *k = opaque;
	uint64_t n;
	(void)events;
	if (read(k->fd, &n, sizeof(n)) != sizeof(n))
		return;
	pthread_mutex_lock(&k->d->lock);
	uint64_t internal = n < k->internal ? n : k->internal;
	k->internal -= internal;
	k->d->notifies += n - internal;
	serve(k->d, k->q);
	pthread_mutex_unlock(&k->d->lock);
}

/* --- life cycle ------------------------------------------------------------ */

int virtio_dev_init(struct virtio_dev *d, const struct virtio_dev_ops *ops, uint64_t features,
		    uint32_t config_len)
{
	if (config_len > VIRTIO_CONFIG_MAX || ops->nr_queues > VIRTIO_MAX_QUEUES)
		return -EINVAL;
	d->ops = ops;
	/* The transport and virtq.c implement these for every device. */
	d->device_features = features | 1ull << VIRTIO_F_VERSION_1 |
			     1ull << VIRTIO_RING_F_INDIRECT_DESC | 1ull << VIRTIO_RING_F_EVENT_IDX;
	d->config_len = config_len;
	d->irqfd = -1;
	d->slot = -1;
	for (int i = 0; i < VIRTIO_MAX_QUEUES; i++)
		d->kick[i] = (struct virtio_kick){.d = d, .q = i, .fd = -1};
	return -pthread_mutex_init(&d->lock, NULL);
}

void virtio_dev_free(struct virtio_dev *d)
{
	if (!d)
		return;
	if (d->own_loop) {
		ioloop_destroy(d->loop);
		free(d->loop);
	}
	for (int i = 0; i < VIRTIO_MAX_QUEUES; i++)
		if (d->kick[i].fd >= 0)
			close(d->kick[i].fd);
	if (d->irqfd >= 0)
		close(d->irqfd);
	pthread_mutex_destroy(&d->lock);
	d->ops->destroy(d); /* frees the containing struct */
}

static void dev_destroy(void *opaque)
{
	virtio_dev_free(opaque);
}

static void dev_stats(void *opaque, int fd);

/* A device's entry; virtio_attach gives each a copy named after it. */
static const struct device_ops dev_ops = {
	.destroy = dev_destroy,
	.save = virtio_dev_save,
	.restore = virtio_dev_restore,
	.stats = dev_stats,
};

/* --- snapshots ---------------------------------------------------------------
 * Called with the VM paused and the I/O loops quiesced (ctx_quiesce), so no
 * handler touches the device or guest memory meanwhile. */
int virtio_dev_save(void *opaque, struct wbuf *out, uint32_t *version)
{
	struct virtio_dev *d = opaque;
	if (!d->ops->snapshot)
		return -ENOTSUP;
	struct wbuf own = {0};
	uint32_t own_version = 0;
	pthread_mutex_lock(&d->lock);
	int r = d->ops->prepare_save ? d->ops->prepare_save(d) : 0;
	struct virtio_state_v1 st;
	memset(&st, 0, sizeof(st));
	st.t = d->t;
	st.device_features = d->device_features;
	st.device_id = d->ops->device_id;
	st.nr_queues = d->ops->nr_queues;
	for (int i = 0; i < VIRTIO_MAX_QUEUES; i++)
		st.vq[i] = d->vq[i].s;
	if (!r && d->ops->save_state && !(r = d->ops->save_state(d, &own, &own_version)))
		r = wbuf_error(&own);
	pthread_mutex_unlock(&d->lock);
	if (!r && own.len > UINT32_MAX)
		r = -E2BIG;
	if (!r) {
		wbuf_put(out, &st, sizeof(st));
		if (d->ops->save_state) {
			struct virtio_dev_state h = {.version = own_version,
						     .len = (uint32_t)own.len};
			wbuf_put(out, &h, sizeof(h));
			wbuf_put(out, own.p, own.len);
		}
		*version = 1;
	}
	wbuf_free(&own);
	return r;
}

/* A bool in untrusted bytes: 0 or 1, checked before it is loaded as one. */
static bool bool_ok(const void *buf, size_t off)
{
	uint8_t b;
	memcpy(&b, (const uint8_t *)buf + off, 1);
	return b <= 1;
}

/* Check the transport and queue part of a saved state (untrusted). */
static int check_state(const struct virtio_dev *d, const void *buf, struct virtio_state_v1 *st,
		       char *err, size_t errlen)
{
	for (int i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		size_t q = offsetof(struct virtio_state_v1, vq) +
			   (size_t)i * sizeof(struct virtq_state);
		if (!bool_ok(buf, q + offsetof(struct virtq_state, ready)) ||
		    !bool_ok(buf, q + offsetof(struct virtq_state, signalled_valid))) {
			snprintf(err, errlen, "queue %d: a flag is neither 0 nor 1", i);
			return -EINVAL;
		}
	}
	memcpy(st, buf, sizeof(*st));
	if (st->device_id != d->ops->device_id || st->nr_queues != d->ops->nr_queues ||
	    st->device_features != d->device_features) {
		snprintf(err, errlen, "the snapshot's device offered other features");
		return -EINVAL;
	}
	/* What set_status lets through: once FEATURES_OK is set, the driver's
	 * features are a subset of ours and include VERSION_1. */
	if ((st->t.status & VIRTIO_CONFIG_S_FEATURES_OK) &&
	    ((st->t.driver_features & ~d->device_features) ||
	     !(st->t.driver_features & 1ull << VIRTIO_F_VERSION_1))) {
		snprintf(err, errlen, "the driver's features are not a subset of the device's");
		return -EINVAL;
	}
	if (st->t.isr & ~(uint32_t)(VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG)) {
		snprintf(err, errlen, "interrupt status 0x%x has unknown bits", st->t.isr);
		return -EINVAL;
	}
	for (int i = d->ops->nr_queues; i < VIRTIO_MAX_QUEUES; i++)
		if (st->vq[i].num || st->vq[i].ready) {
			snprintf(err, errlen, "queue %d is set up, and the device has %u queues", i,
				 d->ops->nr_queues);
			return -EINVAL;
		}
	return 0;
}

int virtio_dev_restore(void *opaque, const void *buf, size_t len, uint32_t version, char *err,
		       size_t errlen)
{
	struct virtio_dev *d = opaque;
	struct virtio_state_v1 st;
	int r = device_state_check("state", version, len, 1, sizeof(st), true, err, errlen);
	if (!r)
		r = check_state(d, buf, &st, err, errlen);
	if (r)
		return r;
	/* The device's own struct, if it has one, and nothing else. */
	const uint8_t *own = (const uint8_t *)buf + sizeof(st);
	size_t rest = len - sizeof(st);
	struct virtio_dev_state h = {0};
	if (d->ops->restore_state) {
		if (rest < sizeof(h)) {
			snprintf(err, errlen, "the device's own state is missing");
			return -EINVAL;
		}
		memcpy(&h, own, sizeof(h));
		own += sizeof(h);
		rest -= sizeof(h);
		if (h.len != rest) {
			snprintf(err, errlen,
				 "the device's own state says %u bytes, the record has %zu", h.len,
				 rest);
			return -EINVAL;
		}
	} else if (rest) {
		snprintf(err, errlen, "%zu bytes of state this device does not have", rest);
		return -EINVAL;
	}
	pthread_mutex_lock(&d->lock);
	/* From a reset device, as if the driver had written status 0: nothing
	 * the device held before (vsock streams, say) outlives the restore. */
	reset(d);
	d->t = st.t;
	for (int i = 0; i < d->ops->nr_queues && !r; i++) {
		d->vq[i].s = st.vq[i];
		d->vq[i].s.ready = false;
		if (st.vq[i].ready) {
			if (virtq_setup(&d->vq[i], d->mem, has(d, VIRTIO_RING_F_EVENT_IDX),
					has(d, VIRTIO_RING_F_INDIRECT_DESC))) {
				snprintf(err, errlen, "queue %d: %s", i, d->vq[i].error);
				r = -EINVAL;
				break;
			}
			d->vq[i].s.ready = true;
		}
	}
	/* As set_status: the device started only with FEATURES_OK. */
	uint32_t started = VIRTIO_CONFIG_S_DRIVER_OK | VIRTIO_CONFIG_S_FEATURES_OK;
	if (!r && (d->t.status & started) == started && d->ops->activate && d->ops->activate(d)) {
		snprintf(err, errlen, "the device could not start again");
		r = -EIO;
	}
	if (!r && d->ops->restore_state)
		r = d->ops->restore_state(d, own, rest, h.version, err, errlen);
	/* Buffers the driver made available that the source had not taken
	 * yet: nobody will notify for them again. */
	if (!r && virtio_running(d))
		for (int q = 0; q < d->ops->nr_queues; q++)
			if (virtq_has_avail(&d->vq[q]))
				virtio_kick_async(d, q);
	pthread_mutex_unlock(&d->lock);
	return r;
}

static void ctx_stop(void *opaque)
{
	struct virtio_ctx *c = opaque;
	if (c->loop_ok)
		ioloop_stop(&c->loop);
	for (int i = 0; i < c->nr; i++)
		if (c->devs[i]->own_loop)
			ioloop_stop(c->devs[i]->loop);
}

/* The I/O threads must not touch devices or guest memory while a snapshot
 * is taken. */
static void ctx_quiesce(void *opaque, bool pause)
{
	struct virtio_ctx *c = opaque;
	if (c->loop_ok)
		pause ? ioloop_pause(&c->loop) : ioloop_resume(&c->loop);
	for (int i = 0; i < c->nr; i++)
		if (c->devs[i]->own_loop)
			pause ? ioloop_pause(c->devs[i]->loop) : ioloop_resume(c->devs[i]->loop);
}

static int ctx_save(void *opaque, struct wbuf *out, uint32_t *version)
{
	(void)opaque;
	(void)out;
	*version = 1; /* the slots are rebuilt by attaching the same devices */
	return 0;
}

static int ctx_restore(void *opaque, const void *buf, size_t len, uint32_t version, char *err,
		       size_t errlen)
{
	(void)opaque;
	(void)buf;
	return device_state_check("state", version, len, 1, 0, false, err, errlen);
}

static void ctx_destroy(void *opaque)
{
	struct virtio_ctx *c = opaque;
	if (c->loop_ok)
		ioloop_destroy(&c->loop);
	free(c);
}

/* The transport's own entry, before any device's: the I/O loop they share
 * and the irqfd choice. Its stats are its devices' (dev_stats). */
static const struct device_ops ctx_ops = {
	.name = "virtio",
	.destroy = ctx_destroy,
	.stop = ctx_stop,
	.quiesce = ctx_quiesce,
	.save = ctx_save,
	.restore = ctx_restore,
};

static struct virtio_ctx *ctx_get(struct vm *vm)
{
	struct device *dev = vm_find_device(vm, "virtio");
	if (dev)
		return dev->opaque;
	struct virtio_ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->vm = vm;
	const char *mode = getenv("WISP_IO_THREADS");
	c->loop_per_device = mode && !strcmp(mode, "device");
	if (!vm_add_device(vm, &ctx_ops, c)) {
		free(c);
		return NULL;
	}
	return c;
}

void virtio_use_irqfd(struct vm *vm, bool on)
{
	struct virtio_ctx *c = ctx_get(vm);
	if (c)
		c->irqfd = on;
}

static int wire_kvm(struct vm *vm, struct virtio_dev *d, bool irqfd, char *err, size_t errlen)
{
	for (int q = 0; q < d->ops->nr_queues; q++) {
		d->kick[q].fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (d->kick[q].fd < 0)
			goto fail;
		struct kvm_ioeventfd io = {
			.datamatch = (uint64_t)q,
			.addr = d->base + VIRTIO_MMIO_QUEUE_NOTIFY,
			.len = 4,
			.fd = d->kick[q].fd,
			.flags = KVM_IOEVENTFD_FLAG_DATAMATCH,
		};
		if (ioctl(vm->fd, KVM_IOEVENTFD, &io) < 0) {
			snprintf(err, errlen, "%s: KVM_IOEVENTFD: %s", d->ops->name,
				 strerror(errno));
			return -errno;
		}
	}
	if (irqfd) {
		d->irqfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (d->irqfd < 0)
			goto fail;
		struct kvm_irqfd f = {.fd = (uint32_t)d->irqfd, .gsi = d->irq};
		if (ioctl(vm->fd, KVM_IRQFD, &f) < 0) {
			snprintf(err, errlen, "%s: KVM_IRQFD on GSI %u: %s", d->ops->name, d->irq,
				 strerror(errno));
			return -errno;
		}
	}
	return 0;
fail:
	snprintf(err, errlen, "%s: eventfd: %s", d->ops->name, strerror(errno));
	return -errno;
}

int virtio_attach(struct vm *vm, struct virtio_dev *d, char *err, size_t errlen)
{
	struct virtio_ctx *c = ctx_get(vm);
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (c->nr == VIRTIO_MAX_DEVICES) {
		snprintf(err, errlen, "%s: too many virtio devices (at most %d)", d->ops->name,
			 VIRTIO_MAX_DEVICES);
		return -ENOSPC;
	}
	int r;
	if (c->loop_per_device) {
		d->loop = calloc(1, sizeof(*d->loop));
		if (!d->loop || (r = ioloop_init(d->loop, d->ops->name))) {
			free(d->loop);
			d->loop = NULL;
			snprintf(err, errlen, "%s: I/O loop: out of resources", d->ops->name);
			return -ENOMEM;
		}
		d->own_loop = true;
	} else {
		if (!c->loop_ok) {
			if ((r = ioloop_init(&c->loop, "virtio"))) {
				snprintf(err, errlen, "I/O loop: %s", strerror(-r));
				return r;
			}
			c->loop_ok = true;
		}
		d->loop = &c->loop;
	}
	d->vm = vm;
	d->mem = &vm->mem;
	d->slot = c->nr;
	d->base = VIRTIO_MMIO_BASE + (uint64_t)d->slot * VIRTIO_MMIO_SLOT_SIZE;
	d->irq = VIRTIO_IRQ_BASE + (uint32_t)d->slot;
	if ((r = wire_kvm(vm, d, c->irqfd, err, errlen)))
		return r;
	for (int q = 0; q < d->ops->nr_queues; q++)
		if ((r = ioloop_add(d->loop, d->kick[q].fd, EPOLLIN, on_kick, &d->kick[q])))
			goto loop_fail;
	if (d->ops->start && (r = d->ops->start(d)))
		goto loop_fail;
	if ((r = bus_register(&vm->mmio, d->base, VIRTIO_MMIO_SLOT_SIZE, virtio_mmio_access, d,
			      d->ops->name))) {
		snprintf(err, errlen, "%s: MMIO range 0x%" PRIx64 " busy", d->ops->name, d->base);
		return r;
	}
	c->entry_ops[c->nr] = dev_ops;
	c->entry_ops[c->nr].name = d->ops->name;
	if (!vm_add_device(vm, &c->entry_ops[c->nr], d)) {
		bus_unregister(&vm->mmio, d->base);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	c->devs[c->nr++] = d;
	d->attached = true;
	r = ioloop_start(d->loop);
	if (r) /* the device is the VM's now; it will be freed with it */
		snprintf(err, errlen, "%s: cannot start the I/O thread: %s", d->ops->name,
			 strerror(-r));
	return r;
loop_fail:
	for (int q = 0; q < d->ops->nr_queues; q++)
		ioloop_del(d->loop, d->kick[q].fd);
	snprintf(err, errlen, "%s: cannot watch its fds: %s", d->ops->name, strerror(-r));
	return r;
}

/* --- discovery -------------------------------------------------------------- */

int virtio_mmio_cmdline(struct vm *vm, char *buf, size_t size)
{
	struct device *dev = vm_find_device(vm, "virtio");
	struct virtio_ctx *c = dev ? dev->opaque : NULL;
	size_t start = strlen(buf), len = start;
	for (int i = 0; c && i < c->nr; i++) {
		int n = snprintf(buf + len, size - len, " virtio_mmio.device=4K@0x%" PRIx64 ":%u",
				 c->devs[i]->base, c->devs[i]->irq);
		if (n < 0 || (size_t)n >= size - len) {
			buf[start] = 0; /* all or nothing */
			return -ENOSPC;
		}
		len += (size_t)n;
	}
	return 0;
}

int virtio_device_table(struct vm *vm, struct wisp_device *out, int max)
{
	struct device *dev = vm_find_device(vm, "virtio");
	struct virtio_ctx *c = dev ? dev->opaque : NULL;
	int n = 0;
	for (int i = 0; c && i < c->nr && n < max; i++, n++)
		out[n] = (struct wisp_device){
			.base = c->devs[i]->base,
			.size = VIRTIO_MMIO_SLOT_SIZE,
			.type = WISP_DEV_VIRTIO_MMIO,
			.event = (uint8_t)c->devs[i]->slot,
			.virtio_id = (uint8_t)c->devs[i]->ops->device_id,
		};
	return n;
}

int virtio_io_stats(struct vm *vm, struct virtio_io_stats *out, int max)
{
	struct device *dev = vm_find_device(vm, "virtio");
	struct virtio_ctx *c = dev ? dev->opaque : NULL;
	int n = 0;
	for (int i = 0; c && i < c->nr && n < max; i++, n++) {
		struct virtio_dev *d = c->devs[i];
		struct virtio_io_stats *o = &out[n];
		pthread_mutex_lock(&d->lock); /* the I/O thread may be serving it */
		*o = (struct virtio_io_stats){.type = d->ops->name,
					      .slot = d->slot,
					      .notifies = d->notifies,
					      .interrupts = d->interrupts,
					      .guest_errors = d->guest_errors};
		for (int q = 0; q < d->ops->nr_queues; q++) {
			o->ops += d->vq[q].chains;
			o->tx_bytes += d->vq[q].tx_bytes;
			o->rx_bytes += d->vq[q].rx_bytes;
		}
		pthread_mutex_unlock(&d->lock);
	}
	return n;
}

/* `wisp run --stats`: the device's line; the last device on the shared I/O
 * loop also reports the loop. */
static void dev_stats(void *opaque, int fd)
{
	struct virtio_dev *d = opaque;
	/* The I/O thread still runs until vm_destroy. */
	pthread_mutex_lock(&d->lock);
	uint64_t chains = 0, tx = 0, rx = 0;
	for (int q = 0; q < d->ops->nr_queues; q++) {
		chains += d->vq[q].chains;
		tx += d->vq[q].tx_bytes;
		rx += d->vq[q].rx_bytes;
	}
	dprintf(fd,
		"wisp: %s@0x%" PRIx64 ": mmio exits %" PRIu64 " notifies %" PRIu64
		" interrupts %" PRIu64 " chains %" PRIu64 " bytes tx %" PRIu64 " rx %" PRIu64
		" guest errors %" PRIu64 "%s%s%s\n",
		d->ops->name, d->base, d->mmio_accesses, d->notifies, d->interrupts, chains, tx, rx,
		d->guest_errors, d->last_error ? " (last: " : "",
		d->last_error ? d->last_error : "", d->last_error ? ")" : "");
	if (d->ops->stats)
		d->ops->stats(d, fd);
	pthread_mutex_unlock(&d->lock);
	struct device *dev = vm_find_device(d->vm, "virtio");
	struct virtio_ctx *c = dev ? dev->opaque : NULL;
	if (c && c->loop_ok && d->slot == c->nr - 1)
		dprintf(fd, "wisp: virtio I/O loop: %" PRIu64 " wakeups\n", c->loop.wakeups);
}
