/* An 8250/16550A UART (COM1 at 0x3f8, IRQ 4): the Linux console. Output goes
 * to a host fd as the guest writes it; host input is fed to the receive FIFO
 * by a thread, and only while the guest has receive interrupts enabled, so
 * that bytes typed or piped in before a shell listens are not thrown away by
 * the driver's FIFO reset at open. The last console lines are kept in a
 * ring for crash reports, and each completed line can be handed to a hook
 * (the Linux runner watches for the panic banner there).
 *
 * Transmission is instant: THR is always empty again by the time the guest
 * looks, which is why LSR always reports THRE|TEMT. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/devices.h"
#include "security/security.h"
#include "util/util.h"
#include "vmm/vmm.h"

#define UART_RX_FIFO 64

/* Register offsets and bits (16550A data sheet). */
#define REG_RBR_THR 0 /* DLAB=1: DLL */
#define REG_IER	    1 /* DLAB=1: DLM */
#define REG_IIR_FCR 2
#define REG_LCR	    3
#define REG_MCR	    4
#define REG_LSR	    5
#define REG_MSR	    6
#define REG_SCR	    7

#define IER_RDI	     0x01 /* receive data available */
#define IER_THRI     0x02 /* transmitter holding register empty */
#define IER_MASK     0x0f
#define IIR_NONE     0x01
#define IIR_THRI     0x02
#define IIR_RDI	     0x04
#define IIR_FIFO     0xc0 /* FIFOs enabled: reads as a 16550A */
#define FCR_ENABLE   0x01
#define FCR_CLEAR_RX 0x02
#define LCR_DLAB     0x80
#define MCR_DTR	     0x01
#define MCR_RTS	     0x02
#define MCR_OUT1     0x04
#define MCR_OUT2     0x08
#define MCR_LOOP     0x10
#define MCR_MASK     0x1f
#define LSR_DR	     0x01
#define LSR_THRE     0x20
#define LSR_TEMT     0x40
#define MSR_CTS	     0x10
#define MSR_DSR	     0x20
#define MSR_RI	     0x40
#define MSR_DCD	     0x80

#define CTRL_A 0x01 /* escape: Ctrl-A x quits, Ctrl-A Ctrl-A sends Ctrl-A */

struct serial {
	struct vm *vm;
	struct serial_config cfg;
	struct outlet out; /* cfg.out_fd, written without blocking */
	pthread_mutex_t lock;
	pthread_cond_t room; /* the guest made room in the FIFO or enabled RX */

	uint8_t dll, dlm, ier, fcr, lcr, mcr, scr;
	bool thre_pending; /* THR-empty interrupt raised and not yet taken */
	bool irq_level;
	uint8_t rx[UART_RX_FIFO];
	unsigned rx_head, rx_count;

	/* console history */
	char line[SERIAL_LINE_MAX];
	size_t line_len;
	char ring[SERIAL_RING_LINES][SERIAL_LINE_MAX];
	unsigned ring_next, ring_count;
	serial_line_hook hook;
	void *hook_opaque;

	/* input thread */
	pthread_t thread;
	bool registered, thread_started, stopping, escape_pending;
	int wake[2]; /* pipe: wakes the input thread's poll() */
};

static uint8_t iir_locked(const struct serial *s)
{
	uint8_t fifo = (s->fcr & FCR_ENABLE) ? IIR_FIFO : 0;
	if ((s->ier & IER_RDI) && s->rx_count)
		return fifo | IIR_RDI;
	if ((s->ier & IER_THRI) && s->thre_pending)
		return fifo | IIR_THRI;
	return fifo | IIR_NONE;
}

/* Drive the IRQ line to match IIR; only edges cost an ioctl. */
static void update_irq_locked(struct serial *s)
{
	bool level = !(iir_locked(s) & IIR_NONE);
	if (level != s->irq_level) {
		s->irq_level = level;
		vm_irq_line(s->vm, s->cfg.irq, level);
	}
}

static void rx_push_locked(struct serial *s, uint8_t c)
{
	if (s->rx_count == UART_RX_FIFO)
		return; /* overrun: the byte is lost, as on hardware */
	s->rx[(s->rx_head + s->rx_count) % UART_RX_FIFO] = c;
	s->rx_count++;
}

static uint8_t rx_pop_locked(struct serial *s)
{
	if (!s->rx_count)
		return 0;
	uint8_t c = s->rx[s->rx_head];
	s->rx_head = (s->rx_head + 1) % UART_RX_FIFO;
	s->rx_count--;
	pthread_cond_signal(&s->room);
	return c;
}

/* Keep a copy of the console, line by line, and hand each line to the hook. */
static void history_put_locked(struct serial *s, uint8_t c)
{
	if (c == '\r')
		return;
	if (c != '\n' && s->line_len < SERIAL_LINE_MAX - 1) {
		s->line[s->line_len++] = (char)c;
		return;
	}
	if (c != '\n')
		return; /* over-long line: keep its start */
	s->line[s->line_len] = 0;
	memcpy(s->ring[s->ring_next], s->line, s->line_len + 1);
	s->ring_next = (s->ring_next + 1) % SERIAL_RING_LINES;
	if (s->ring_count < SERIAL_RING_LINES)
		s->ring_count++;
	if (s->hook)
		s->hook(s->hook_opaque, s->line);
	s->line_len = 0;
}

/* True if c is to be written out, which the caller does after dropping the
 * lock: a slow consumer must never hold the UART (security.h). */
static bool transmit_locked(struct serial *s, uint8_t c)
{
	if (s->mcr & MCR_LOOP) {
		rx_push_locked(s, c);
		return false;
	}
	history_put_locked(s, c);
	return s->cfg.out_fd >= 0;
}

static uint8_t msr_locked(const struct serial *s)
{
	if (!(s->mcr & MCR_LOOP))
		return MSR_DCD | MSR_DSR | MSR_CTS; /* a cable is always plugged in */
	/* Loopback: modem outputs show up on the modem inputs. */
	return (uint8_t)(((s->mcr & MCR_RTS) ? MSR_CTS : 0) | ((s->mcr & MCR_DTR) ? MSR_DSR : 0) |
			 ((s->mcr & MCR_OUT1) ? MSR_RI : 0) | ((s->mcr & MCR_OUT2) ? MSR_DCD : 0));
}

static void serial_io(void *opaque, struct vcpu *vcpu, uint64_t off, uint8_t *data, uint32_t len,
		      bool is_write)
{
	(void)vcpu;
	struct serial *s = opaque;
	if (len != 1) { /* the UART has byte registers only */
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pthread_mutex_lock(&s->lock);
	bool dlab = s->lcr & LCR_DLAB, out = false;
	if (is_write) {
		uint8_t v = data[0];
		switch (off) {
		case REG_RBR_THR:
			if (dlab) {
				s->dll = v;
			} else {
				out = transmit_locked(s, v);
				s->thre_pending = true;
			}
			break;
		case REG_IER:
			if (dlab) {
				s->dlm = v;
				break;
			}
			/* Enabling the THRE interrupt while THR is empty raises it. */
			if ((v & IER_THRI) && !(s->ier & IER_THRI))
				s->thre_pending = true;
			s->ier = v & IER_MASK;
			if (s->ier & IER_RDI)
				pthread_cond_signal(&s->room);
			break;
		case REG_IIR_FCR:
			s->fcr = v;
			if (v & FCR_CLEAR_RX)
				s->rx_head = s->rx_count = 0;
			break;
		case REG_LCR:
			s->lcr = v;
			break;
		case REG_MCR:
			s->mcr = v & MCR_MASK;
			break;
		case REG_SCR:
			s->scr = v;
			break;
		default: /* LSR and MSR are read-only */
			break;
		}
	} else {
		uint8_t v = 0;
		switch (off) {
		case REG_RBR_THR:
			v = dlab ? s->dll : rx_pop_locked(s);
			break;
		case REG_IER:
			v = dlab ? s->dlm : s->ier;
			break;
		case REG_IIR_FCR:
			v = iir_locked(s);
			if ((v & 0x0f) == IIR_THRI)
				s->thre_pending = false; /* reading IIR acknowledges THRE */
			break;
		case REG_LCR:
			v = s->lcr;
			break;
		case REG_MCR:
			v = s->mcr;
			break;
		case REG_LSR:
			v = LSR_THRE | LSR_TEMT | (s->rx_count ? LSR_DR : 0);
			break;
		case REG_MSR:
			v = msr_locked(s);
			break;
		default:
			v = s->scr;
			break;
		}
		data[0] = v;
	}
	update_irq_locked(s);
	pthread_mutex_unlock(&s->lock);
	if (out)
		outlet_write(&s->out, data, 1, &s->vm->stop);
}

/* Take one byte typed by the user; false if it asked to quit. */
static bool input_byte_locked(struct serial *s, uint8_t c)
{
	if (s->cfg.escape) {
		if (s->escape_pending) {
			s->escape_pending = false;
			if (c == 'x' || c == 'X')
				return false;
			if (c != CTRL_A)
				return true; /* unknown escape: dropped */
		} else if (c == CTRL_A) {
			s->escape_pending = true;
			return true;
		}
	}
	rx_push_locked(s, c);
	return true;
}

static void *input_thread(void *arg)
{
	struct serial *s = arg;
	uint8_t buf[UART_RX_FIFO];
	for (;;) {
		pthread_mutex_lock(&s->lock);
		while (!s->stopping && !((s->ier & IER_RDI) && s->rx_count < UART_RX_FIFO))
			pthread_cond_wait(&s->room, &s->lock);
		size_t room = UART_RX_FIFO - s->rx_count;
		bool stop = s->stopping;
		pthread_mutex_unlock(&s->lock);
		if (stop)
			break;
		sec_seccomp_thread(SEC_THREAD_IO); /* as an I/O loop (security.h) */
		struct pollfd p[2] = {{.fd = s->cfg.in_fd, .events = POLLIN},
				      {.fd = s->wake[0], .events = POLLIN}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			continue; /* woken to look at `stopping` */
		ssize_t n = read(s->cfg.in_fd, buf, room);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break; /* end of input: the guest just gets no more */
		bool quit = false;
		pthread_mutex_lock(&s->lock);
		for (ssize_t i = 0; i < n && !quit; i++)
			quit = !input_byte_locked(s, buf[i]);
		update_irq_locked(s);
		pthread_mutex_unlock(&s->lock);
		if (quit) {
			if (atomic_load(&s->vm->stop) == VM_RUNNING)
				s->vm->stop_signal = SIGINT;
			vm_request_stop(s->vm, VM_STOP_SIGNAL);
			break;
		}
	}
	return NULL;
}

/* The UART's snapshot state (version 1): its registers and receive FIFO.
 * The console history and the input thread are the host's, not the guest's. */
struct serial_state_v1 {
	uint8_t dll, dlm, ier, fcr, lcr, mcr, scr;
	uint8_t thre_pending, irq_level;
	uint8_t pad[3];
	uint32_t rx_head, rx_count;
	uint8_t rx[UART_RX_FIFO];
};

static int serial_save(void *opaque, struct wbuf *out, uint32_t *version)
{
	struct serial *s = opaque;
	struct serial_state_v1 st = {0};
	pthread_mutex_lock(&s->lock);
	st.dll = s->dll;
	st.dlm = s->dlm;
	st.ier = s->ier;
	st.fcr = s->fcr;
	st.lcr = s->lcr;
	st.mcr = s->mcr;
	st.scr = s->scr;
	st.thre_pending = s->thre_pending;
	st.irq_level = s->irq_level;
	st.rx_head = s->rx_head;
	st.rx_count = s->rx_count;
	memcpy(st.rx, s->rx, sizeof(st.rx));
	pthread_mutex_unlock(&s->lock);
	wbuf_put(out, &st, sizeof(st));
	*version = 1;
	return 0;
}

static int serial_restore(void *opaque, const void *buf, size_t len, uint32_t version, char *err,
			  size_t errlen)
{
	struct serial *s = opaque;
	struct serial_state_v1 st;
	int r = device_state_check("state", version, len, 1, sizeof(st), false, err, errlen);
	if (r)
		return r;
	memcpy(&st, buf, sizeof(st));
	if (st.rx_head >= UART_RX_FIFO || st.rx_count > UART_RX_FIFO) {
		snprintf(err, errlen, "receive FIFO out of range");
		return -EINVAL;
	}
	pthread_mutex_lock(&s->lock);
	s->dll = st.dll;
	s->dlm = st.dlm;
	s->ier = st.ier & IER_MASK;
	s->fcr = st.fcr;
	s->lcr = st.lcr;
	s->mcr = st.mcr & MCR_MASK;
	s->scr = st.scr;
	s->thre_pending = st.thre_pending;
	s->rx_head = st.rx_head;
	s->rx_count = st.rx_count;
	memcpy(s->rx, st.rx, sizeof(s->rx));
	/* Drive the line to what the registers say (the irqchip's own state
	 * comes back with the VM's). */
	s->irq_level = false;
	update_irq_locked(s);
	pthread_cond_broadcast(&s->room);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* On the VM's device list for snapshots only: serial_destroy frees it. */
static const struct device_ops serial_ops = {
	.name = "serial",
	.save = serial_save,
	.restore = serial_restore,
};

int serial_create(struct vm *vm, const struct serial_config *cfg, struct serial **out)
{
	struct serial *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->vm = vm;
	s->cfg = *cfg;
	outlet_init(&s->out, cfg->out_fd);
	s->wake[0] = s->wake[1] = -1;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->room, NULL);
	int r = bus_register(&vm->pio, cfg->base, 8, serial_io, s, "serial");
	if (r) {
		serial_destroy(s);
		return r;
	}
	s->registered = true;
	if (cfg->in_fd >= 0) {
		if (pipe2(s->wake, O_CLOEXEC) < 0) {
			r = -errno;
			serial_destroy(s);
			return r;
		}
		/* The thread must not take the vCPU kick signal. */
		sigset_t all, old;
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		r = -pthread_create(&s->thread, NULL, input_thread, s);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (r) {
			serial_destroy(s);
			return r;
		}
		s->thread_started = true;
	}
	/* On the VM's device list for snapshots only: the caller destroys it. */
	if (!vm_add_device(vm, &serial_ops, s)) {
		serial_destroy(s);
		return -ENOMEM;
	}
	*out = s;
	return 0;
}

void serial_set_line_hook(struct serial *s, serial_line_hook fn, void *opaque)
{
	pthread_mutex_lock(&s->lock);
	s->hook = fn;
	s->hook_opaque = opaque;
	pthread_mutex_unlock(&s->lock);
}

void serial_print_tail(struct serial *s, int fd, int max_lines)
{
	pthread_mutex_lock(&s->lock);
	unsigned n = s->ring_count < (unsigned)max_lines ? s->ring_count : (unsigned)max_lines;
	for (unsigned i = 0; i < n; i++) {
		unsigned idx = (s->ring_next + SERIAL_RING_LINES - n + i) % SERIAL_RING_LINES;
		dprintf(fd, "  | %s\n", s->ring[idx]);
	}
	pthread_mutex_unlock(&s->lock);
}

void serial_destroy(struct serial *s)
{
	if (!s)
		return;
	if (s->thread_started) {
		pthread_mutex_lock(&s->lock);
		s->stopping = true;
		pthread_cond_broadcast(&s->room);
		pthread_mutex_unlock(&s->lock);
		ssize_t r = write(s->wake[1], "x", 1);
		(void)r;
		pthread_join(s->thread, NULL);
	}
	if (s->wake[0] >= 0)
		close(s->wake[0]);
	if (s->wake[1] >= 0)
		close(s->wake[1]);
	if (s->registered)
		bus_unregister(&s->vm->pio, s->cfg.base);
	vm_remove_device(s->vm, s);
	pthread_cond_destroy(&s->room);
	pthread_mutex_destroy(&s->lock);
	outlet_close(&s->out);
	free(s);
}
