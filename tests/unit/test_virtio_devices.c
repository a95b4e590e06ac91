/* The device request parsers and backends, driven as a guest driver would,
 * without KVM: virtio-blk (io_uring and synchronous) on a temporary file,
 * virtio-net on a datagram socketpair standing in for the TAP,
 * virtio-console on pipes, virtio-vsock on unix sockets. */
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_console.h>
#include <linux/virtio_net.h>
#include <linux/virtio_vsock.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "../virtio_harness.h"
#include "util/util.h"

static struct vh h;
static char err[256];
static char path[64];

static struct vring_used_elem used(int q)
{
	struct vring_used_elem e = {0xffff, 0};
	for (int i = 0; i < 200 && !vh_take_used(&h, q, &e); i++)
		vh_pump(&h, 10); /* io_uring completions arrive through the loop */
	return e;
}

/* --- virtio-blk --------------------------------------------------------------- */

#define HDR_GPA	   VH_DATA
#define DATA_GPA   (VH_DATA + 0x1000)
#define STATUS_GPA (VH_DATA + 0x100)

static int blk_open(bool ro, bool no_uring)
{
	if (vh_init(&h, VH_RAM))
		return -1;
	snprintf(path, sizeof(path), "/tmp/wisp-blk-XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0)
		return -1;
	char sector[512];
	for (int i = 0; i < 16; i++) { /* sector i is filled with byte i */
		memset(sector, i, sizeof(sector));
		if (write(fd, sector, sizeof(sector)) != sizeof(sector))
			return -1;
	}
	close(fd);
	struct virtio_blk_opts o = {
		.path = path, .ro = ro, .id = "test-disk", .no_uring = no_uring};
	struct virtio_dev *d = virtio_blk_create(&o, err, sizeof(err));
	if (!d || vh_bind(&h, d))
		return -1;
	vh_setup(&h, 0, 1, 16);
	return 0;
}

static int setup_blk(void **state)
{
	return blk_open(false, *state != NULL);
}

static int setup_blk_ro(void **state)
{
	(void)state;
	return blk_open(true, true);
}

static int teardown_blk(void **state)
{
	(void)state;
	vh_destroy(&h);
	unlink(path);
	return 0;
}

/* Send a request: header, optional data of len bytes (writable or not), status. */
static uint8_t blk(uint32_t type, uint64_t sector, uint32_t len, bool data_writable, uint32_t *ulen)
{
	struct virtio_blk_outhdr hd = {.type = type, .sector = sector};
	memcpy(vh_ptr(&h, HDR_GPA), &hd, sizeof(hd));
	*(uint8_t *)vh_ptr(&h, STATUS_GPA) = 0xee;
	struct vh_buf b[3] = {{HDR_GPA, sizeof(hd), false}};
	int n = 1;
	if (len)
		b[n++] = (struct vh_buf){DATA_GPA, len, data_writable};
	b[n++] = (struct vh_buf){STATUS_GPA, 1, true};
	vh_chain(&h, 0, 0, b, n);
	virtio_kick(h.d, 0);
	struct vring_used_elem e = used(0);
	if (ulen)
		*ulen = e.len;
	return *(uint8_t *)vh_ptr(&h, STATUS_GPA);
}

static void test_blk_read_write(void **state)
{
	(void)state;
	uint32_t ulen;
	assert_int_equal(blk(VIRTIO_BLK_T_IN, 3, 1024, true, &ulen), VIRTIO_BLK_S_OK);
	assert_int_equal(ulen, 1025);
	uint8_t *p = vh_ptr(&h, DATA_GPA);
	assert_int_equal(p[0], 3);
	assert_int_equal(p[1023], 4);
	memset(p, 0xab, 512);
	assert_int_equal(blk(VIRTIO_BLK_T_OUT, 15, 512, false, &ulen), VIRTIO_BLK_S_OK);
	assert_int_equal(ulen, 1);
	assert_int_equal(blk(VIRTIO_BLK_T_FLUSH, 0, 0, false, NULL), VIRTIO_BLK_S_OK);
	memset(p, 0, 512);
	assert_int_equal(blk(VIRTIO_BLK_T_IN, 15, 512, true, NULL), VIRTIO_BLK_S_OK);
	assert_int_equal(p[511], 0xab);
	int fd = open(path, O_RDONLY);
	uint8_t c = 0;
	assert_int_equal(pread(fd, &c, 1, 15 * 512 + 7), 1);
	close(fd);
	assert_int_equal(c, 0xab);
	assert_int_equal(blk(VIRTIO_BLK_T_GET_ID, 0, 20, true, &ulen), VIRTIO_BLK_S_OK);
	assert_string_equal((char *)p, "test-disk");
}

static void test_blk_errors(void **state)
{
	(void)state;
	assert_int_equal(blk(VIRTIO_BLK_T_IN, 16, 512, true, NULL), VIRTIO_BLK_S_IOERR); /* end */
	assert_int_equal(blk(VIRTIO_BLK_T_IN, 15, 1024, true, NULL), VIRTIO_BLK_S_IOERR);
	assert_int_equal(blk(VIRTIO_BLK_T_IN, UINT64_MAX / 2, 512, true, NULL), VIRTIO_BLK_S_IOERR);
	assert_int_equal(blk(VIRTIO_BLK_T_IN, 0, 100, true, NULL),
			 VIRTIO_BLK_S_IOERR); /* partial */
	assert_int_equal(blk(VIRTIO_BLK_T_IN, 0, 512, false, NULL), VIRTIO_BLK_S_IOERR); /* dir */
	assert_int_equal(blk(VIRTIO_BLK_T_OUT, 0, 512, true, NULL), VIRTIO_BLK_S_IOERR);
	assert_int_equal(blk(42, 0, 0, false, NULL), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(h.d->t.status & VIRTIO_CONFIG_S_NEEDS_RESET, 0); /* all answered */
	assert_int_equal(blk(VIRTIO_BLK_T_IN, 0, 512, true, NULL), VIRTIO_BLK_S_OK);
}

static void test_blk_split_header(void **state)
{
	(void)state;
	/* Any layout is legal: header split in two, data and status together. */
	struct virtio_blk_outhdr hd = {.type = VIRTIO_BLK_T_IN, .sector = 2};
	memcpy(vh_ptr(&h, HDR_GPA), &hd, sizeof(hd));
	struct vh_buf b[] = {{HDR_GPA, 5, false}, {HDR_GPA + 5, 11, false}, {DATA_GPA, 513, true}};
	vh_chain(&h, 0, 0, b, 3);
	virtio_kick(h.d, 0);
	struct vring_used_elem e = used(0);
	assert_int_equal(e.len, 513);
	assert_int_equal(*(uint8_t *)vh_ptr(&h, DATA_GPA + 511), 2);
	assert_int_equal(*(uint8_t *)vh_ptr(&h, DATA_GPA + 512), VIRTIO_BLK_S_OK);
}

static void test_blk_no_status(void **state)
{
	(void)state;
	struct vh_buf b[] = {{HDR_GPA, 16, false}};
	vh_chain(&h, 0, 0, b, 1);
	virtio_kick(h.d, 0);
	assert_true(h.d->t.status & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_string_equal(h.d->last_error, "blk request without a writable status byte");
}

static void test_blk_reused_chain(void **state)
{
	(void)state;
	if (*state) /* synchronous: the first request is done before the second */
		skip();
	struct virtio_blk_outhdr hd = {.type = VIRTIO_BLK_T_IN, .sector = 1};
	memcpy(vh_ptr(&h, HDR_GPA), &hd, sizeof(hd));
	struct vh_buf b[] = {{HDR_GPA, 16, false}, {DATA_GPA, 512, true}, {STATUS_GPA, 1, true}};
	vh_chain(&h, 0, 0, b, 3);
	vh_publish(&h, 0, 0); /* the same chain again while it is in flight */
	virtio_kick(h.d, 0);
	assert_true(h.d->t.status & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_string_equal(h.d->last_error, "blk request reuses a chain still in flight");
	vh_setup(&h, 0, 1, 16); /* the reset waits for the request in flight */
	assert_int_equal(blk(VIRTIO_BLK_T_IN, 1, 512, true, NULL), VIRTIO_BLK_S_OK);
}

static void test_blk_ro(void **state)
{
	(void)state;
	assert_true(h.d->device_features & 1ull << VIRTIO_BLK_F_RO);
	assert_int_equal(blk(VIRTIO_BLK_T_OUT, 0, 512, false, NULL), VIRTIO_BLK_S_IOERR);
	assert_int_equal(blk(VIRTIO_BLK_T_FLUSH, 0, 0, false, NULL), VIRTIO_BLK_S_OK);
	assert_int_equal(blk(VIRTIO_BLK_T_IN, 0, 512, true, NULL), VIRTIO_BLK_S_OK);
}

static void test_blk_open_errors(void **state)
{
	(void)state;
	struct virtio_blk_opts o = {.path = "/nonexistent/disk.img"};
	assert_null(virtio_blk_create(&o, err, sizeof(err)));
	assert_string_equal(err, "disk '/nonexistent/disk.img': No such file or directory");
	o.path = "/dev/null";
	assert_null(virtio_blk_create(&o, err, sizeof(err)));
	assert_string_equal(err, "disk '/dev/null': not a regular file or block device");
}

/* --- virtio-net ----------------------------------------------------------------- */

static int tap_peer = -1;

static int setup_net(void **state)
{
	(void)state;
	int sv[2];
	if (vh_init(&h, VH_RAM) || socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, sv))
		return -1;
	tap_peer = sv[1];
	struct virtio_net_opts o = {.tap = "test", .mac = {2, 0, 0, 0, 0, 9}, .tap_fd = sv[0]};
	struct virtio_dev *d = virtio_net_create(&o, err, sizeof(err));
	if (!d || vh_bind(&h, d))
		return -1;
	vh_setup(&h, 0, 2, 16);
	return 0;
}

static int teardown_net(void **state)
{
	(void)state;
	vh_destroy(&h);
	close(tap_peer);
	return 0;
}

static void test_net_tx(void **state)
{
	(void)state;
	uint8_t mac[6];
	virtio_mmio_access(h.d, NULL, VIRTIO_MMIO_CONFIG, mac, 6, false);
	assert_int_equal(mac[5], 9);
	memset(vh_ptr(&h, VH_DATA), 0, 12);
	memcpy(vh_ptr(&h, VH_DATA + 12), "a frame of 20 bytes.", 20);
	struct vh_buf b[] = {{VH_DATA, 12, false}, {VH_DATA + 12, 20, false}};
	vh_chain(&h, 1, 0, b, 2);
	virtio_kick(h.d, 1);
	struct vring_used_elem e = used(1);
	assert_int_equal(e.id, 0);
	char got[64];
	assert_int_equal(recv(tap_peer, got, sizeof(got), 0), 32);
	assert_memory_equal(got + 12, "a frame of 20 bytes.", 20);
}

static void test_net_tx_bad(void **state)
{
	(void)state;
	struct vh_buf runt = {VH_DATA, 8, false};
	vh_chain(&h, 1, 0, &runt, 1);
	virtio_kick(h.d, 1);
	assert_int_equal(used(1).id, 0); /* dropped, but given back */
	char got[64];
	assert_true(recv(tap_peer, got, sizeof(got), 0) < 0);
	struct vh_buf w = {VH_DATA, 64, true};
	vh_chain(&h, 1, 1, &w, 1);
	virtio_kick(h.d, 1);
	assert_true(h.d->t.status & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_string_equal(h.d->last_error, "net transmit buffer is device-writable");
}

static void test_net_rx(void **state)
{
	(void)state;
	char frame[12 + 60] = {0};
	memcpy(frame + 12, "incoming", 8);
	/* A frame before any receive buffer waits in the "TAP". */
	assert_int_equal(send(tap_peer, frame, sizeof(frame), 0), (ssize_t)sizeof(frame));
	vh_pump(&h, 10);
	struct vring_used_elem e;
	assert_int_equal(vh_take_used(&h, 0, &e), 0);
	struct vh_buf b = {VH_DATA, 1526, true};
	vh_chain(&h, 0, 3, &b, 1);
	virtio_kick(h.d, 0); /* the guest's receive notify resumes delivery */
	assert_int_equal(vh_take_used(&h, 0, &e), 1);
	assert_int_equal(e.id, 3);
	assert_int_equal(e.len, sizeof(frame));
	assert_memory_equal(vh_ptr(&h, VH_DATA + 12), "incoming", 8);
	assert_int_equal(*(uint16_t *)vh_ptr(&h, VH_DATA + 10), 1); /* num_buffers */
	/* With a buffer posted, a new frame arrives through the loop. */
	vh_chain(&h, 0, 4, &b, 1);
	virtio_kick(h.d, 0);
	assert_int_equal(send(tap_peer, frame, 40, 0), 40);
	vh_pump(&h, 100);
	assert_int_equal(vh_take_used(&h, 0, &e), 1);
	assert_int_equal(e.len, 40);
}

static void test_net_rx_small_buffer(void **state)
{
	(void)state;
	struct vh_buf b = {VH_DATA, 8, true}; /* smaller than the header */
	vh_chain(&h, 0, 0, &b, 1);
	char frame[40] = {0};
	send(tap_peer, frame, sizeof(frame), 0);
	vh_pump(&h, 100);
	assert_true(h.d->t.status & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_string_equal(h.d->last_error, "net receive buffer smaller than the header");
}

/* --- virtio-console ------------------------------------------------------------- */

static int con_in[2], con_out[2];

static int setup_console(void **state)
{
	(void)state;
	if (vh_init(&h, VH_RAM) || pipe(con_in) || pipe(con_out))
		return -1;
	fcntl(con_out[0], F_SETFL, O_NONBLOCK);
	struct virtio_console_opts o = {.in_fd = con_in[0], .out_fd = con_out[1]};
	struct virtio_dev *d = virtio_console_create(&o, err, sizeof(err));
	if (!d || vh_bind(&h, d))
		return -1;
	vh_setup(&h, 0, 2, 8);
	return 0;
}

static int teardown_console(void **state)
{
	(void)state;
	vh_destroy(&h);
	close(con_in[0]);
	close(con_in[1]);
	close(con_out[0]);
	close(con_out[1]);
	return 0;
}

static void test_console(void **state)
{
	(void)state;
	memcpy(vh_ptr(&h, VH_DATA), "out!", 4);
	struct vh_buf t = {VH_DATA, 4, false};
	vh_chain(&h, 1, 0, &t, 1);
	virtio_kick(h.d, 1);
	char buf[16] = {0};
	assert_int_equal(read(con_out[0], buf, sizeof(buf)), 4);
	assert_string_equal(buf, "out!");
	/* Input with no buffer waits; the receive notify delivers it. */
	assert_int_equal(write(con_in[1], "typed\n", 6), 6);
	vh_pump(&h, 10);
	struct vh_buf r = {VH_DATA + 0x100, 64, true};
	vh_chain(&h, 0, 0, &r, 1);
	virtio_kick(h.d, 0);
	vh_pump(&h, 10);
	struct vring_used_elem e = used(0);
	assert_int_equal(e.len, 6);
	assert_memory_equal(vh_ptr(&h, VH_DATA + 0x100), "typed\n", 6);
}

/* With MULTIPORT the device holds input until the driver says, through the
 * control queues, that its port is hooked up: Linux drops input that
 * arrives before (seen in the lab: a command sent to hvc0 at boot was
 * lost). The exchange, as Linux's driver does it. */
static int setup_console_multiport(void **state)
{
	(void)state;
	if (vh_init(&h, VH_RAM) || pipe(con_in) || pipe(con_out))
		return -1;
	fcntl(con_out[0], F_SETFL, O_NONBLOCK);
	struct virtio_console_opts o = {.in_fd = con_in[0], .out_fd = con_out[1]};
	struct virtio_dev *d = virtio_console_create(&o, err, sizeof(err));
	if (!d || vh_bind(&h, d))
		return -1;
	vh_setup(&h, 1ull << VIRTIO_CONSOLE_F_MULTIPORT, 4, 8);
	return 0;
}

static uint16_t ctrl_tx_next;

/* The driver sends a control message of len bytes (8 is the real size). */
static void ctrl_to_device(uint32_t id, uint16_t event, uint16_t value, uint32_t len)
{
	struct virtio_console_control m = {.id = id, .event = event, .value = value};
	uint64_t gpa = VH_DATA + 0x300 + ctrl_tx_next * 0x10u;
	memcpy(vh_ptr(&h, gpa), &m, sizeof(m));
	struct vh_buf b = {gpa, len, false};
	vh_chain(&h, 3, ctrl_tx_next++, &b, 1);
	virtio_kick(h.d, 3);
	assert_int_equal(used(3).len, 0);
}

/* The next control message the device sent, from the buffers at 0x200. */
static struct virtio_console_control ctrl_from_device(void)
{
	struct virtio_console_control m = {0xffff, 0xffff, 0xffff};
	struct vring_used_elem e = used(2);
	if (e.id < 4 && e.len == sizeof(m))
		memcpy(&m, vh_ptr(&h, VH_DATA + 0x200 + e.id * 0x10u), sizeof(m));
	return m;
}

static void test_console_multiport(void **state)
{
	(void)state;
	ctrl_tx_next = 0;
	uint32_t ports = 0;
	virtio_mmio_access(h.d, NULL, VIRTIO_MMIO_CONFIG + 4, (uint8_t *)&ports, 4, false);
	assert_int_equal(ports, 1);	   /* max_nr_ports */
	for (uint16_t i = 0; i < 4; i++) { /* control receive buffers */
		struct vh_buf b = {VH_DATA + 0x200 + i * 0x10u, 8, true};
		vh_chain(&h, 2, i, &b, 1);
	}
	virtio_kick(h.d, 2);
	/* Input typed at boot, and port 0's receive buffer: held back. */
	assert_int_equal(write(con_in[1], "early\n", 6), 6);
	struct vh_buf r = {VH_DATA + 0x100, 64, true};
	vh_chain(&h, 0, 0, &r, 1);
	virtio_kick(h.d, 0);
	vh_pump(&h, 10);
	struct vring_used_elem e;
	assert_int_equal(vh_take_used(&h, 0, &e), 0);

	ctrl_to_device(VIRTIO_CONSOLE_BAD_ID, VIRTIO_CONSOLE_DEVICE_READY, 1, 8);
	struct virtio_console_control m = ctrl_from_device();
	assert_int_equal(m.event, VIRTIO_CONSOLE_PORT_ADD);
	assert_int_equal(m.id, 0);
	ctrl_to_device(0, VIRTIO_CONSOLE_PORT_READY, 1, 8);
	m = ctrl_from_device();
	assert_int_equal(m.event, VIRTIO_CONSOLE_CONSOLE_PORT);
	assert_int_equal(m.id, 0);
	assert_int_equal(m.value, 1);
	vh_pump(&h, 10);
	assert_int_equal(vh_take_used(&h, 0, &e), 0); /* not open yet */
	assert_int_equal(h.d->guest_errors, 0);

	/* Malformed messages are counted and ignored. */
	ctrl_to_device(5, VIRTIO_CONSOLE_PORT_READY, 1, 8);
	assert_string_equal(h.d->last_error,
			    "console control message for a port that does not exist");
	ctrl_to_device(0, VIRTIO_CONSOLE_PORT_OPEN, 1, 4);
	assert_string_equal(h.d->last_error, "console control message too short");
	ctrl_to_device(0, 99, 1, 8);
	assert_string_equal(h.d->last_error, "console control message unknown");
	assert_int_equal(h.d->guest_errors, 3);
	assert_false(h.d->t.status & VIRTIO_CONFIG_S_NEEDS_RESET);

	/* The port opens: the input waiting since boot arrives. */
	ctrl_to_device(0, VIRTIO_CONSOLE_PORT_OPEN, 1, 8);
	vh_pump(&h, 10);
	e = used(0);
	assert_int_equal(e.len, 6);
	assert_memory_equal(vh_ptr(&h, VH_DATA + 0x100), "early\n", 6);

	/* A reset forgets the port: input waits for the exchange again. */
	vh_setup(&h, 1ull << VIRTIO_CONSOLE_F_MULTIPORT, 4, 8);
	assert_int_equal(write(con_in[1], "late\n", 5), 5);
	vh_chain(&h, 0, 0, &r, 1);
	virtio_kick(h.d, 0);
	vh_pump(&h, 10);
	assert_int_equal(vh_take_used(&h, 0, &e), 0);
}

/* --- virtio-vsock --------------------------------------------------------------- */

#define VHDR sizeof(struct virtio_vsock_hdr)

static int setup_vsock(void **state)
{
	(void)state;
	if (vh_init(&h, VH_RAM))
		return -1;
	snprintf(path, sizeof(path), "/tmp/wisp-vsock-%d.sock", getpid());
	unlink(path);
	struct virtio_vsock_opts o = {.cid = 7, .uds_path = path};
	struct virtio_dev *d = virtio_vsock_create(&o, err, sizeof(err));
	if (!d || vh_bind(&h, d))
		return -1;
	vh_setup(&h, 0, 3, 16);
	/* Receive buffers 0..7 at VH_DATA + i * 0x1000. */
	for (uint16_t i = 0; i < 8; i++) {
		struct vh_buf b = {VH_DATA + i * 0x1000u, 0x1000, true};
		vh_chain(&h, 0, i, &b, 1);
	}
	return 0;
}

static int teardown_vsock(void **state)
{
	(void)state;
	vh_destroy(&h);
	assert_int_equal(access(path, F_OK), -1); /* the device removed its socket */
	return 0;
}

static uint16_t next_tx = 0;

/* The guest sends one packet. */
static void guest_send(uint16_t op, uint32_t src, uint32_t dst, const char *data, uint32_t len,
		       uint32_t hdr_len)
{
	uint64_t gpa = VH_DATA + 0x10000 + (next_tx % 8) * 0x1000u;
	struct virtio_vsock_hdr hd = {.src_cid = 7,
				      .dst_cid = 2,
				      .src_port = src,
				      .dst_port = dst,
				      .len = hdr_len,
				      .type = VIRTIO_VSOCK_TYPE_STREAM,
				      .op = op,
				      .buf_alloc = 65536};
	memcpy(vh_ptr(&h, gpa), &hd, VHDR);
	if (len)
		memcpy(vh_ptr(&h, gpa + VHDR), data, len);
	struct vh_buf b = {gpa, (uint32_t)VHDR + len, false};
	vh_chain(&h, 1, next_tx++ % 8, &b, 1);
	virtio_kick(h.d, 1);
}

/* The next packet the device gave the guest. */
static struct virtio_vsock_hdr guest_recv(char *payload)
{
	struct virtio_vsock_hdr hd = {0};
	struct vring_used_elem e = used(0);
	if (e.id >= 8)
		return hd;
	memcpy(&hd, vh_ptr(&h, VH_DATA + e.id * 0x1000u), VHDR);
	if (payload)
		memcpy(payload, vh_ptr(&h, VH_DATA + e.id * 0x1000u + VHDR), hd.len);
	struct vh_buf b = {VH_DATA + e.id * 0x1000u, 0x1000, true}; /* repost */
	vh_chain(&h, 0, (uint16_t)e.id, &b, 1);
	virtio_kick(h.d, 0);
	return hd;
}

static int host_connect(const char *p)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", p);
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(connect(s, (struct sockaddr *)&a, sizeof(a)), 0);
	return s;
}

static void test_vsock_host_connect(void **state)
{
	(void)state;
	uint8_t cfg[8];
	virtio_mmio_access(h.d, NULL, VIRTIO_MMIO_CONFIG, cfg, 8, false);
	assert_int_equal(cfg[0], 7);
	int s = host_connect(path);
	assert_int_equal(write(s, "CONNECT 99\nearly", 16), 16);
	vh_pump(&h, 100);
	struct virtio_vsock_hdr r = guest_recv(NULL);
	assert_int_equal(r.op, VIRTIO_VSOCK_OP_REQUEST);
	assert_int_equal(r.dst_port, 99);
	assert_int_equal(r.dst_cid, 7);
	guest_send(VIRTIO_VSOCK_OP_RESPONSE, 99, r.src_port, NULL, 0, 0);
	char buf[64] = {0};
	assert_true(read(s, buf, sizeof(buf)) > 0);
	assert_int_equal(strncmp(buf, "OK ", 3), 0);
	/* The bytes written right after the CONNECT line reach the guest. */
	char data[4096] = {0};
	struct virtio_vsock_hdr d = guest_recv(data);
	assert_int_equal(d.op, VIRTIO_VSOCK_OP_RW);
	assert_int_equal(d.len, 5);
	assert_memory_equal(data, "early", 5);
	guest_send(VIRTIO_VSOCK_OP_RW, 99, r.src_port, "reply", 5, 5);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(read(s, buf, sizeof(buf)), 5);
	assert_string_equal(buf, "reply");
	/* The host closes: the guest hears it can send no more. */
	close(s);
	vh_pump(&h, 100);
	assert_int_equal(guest_recv(NULL).op, VIRTIO_VSOCK_OP_SHUTDOWN);
}

static void test_vsock_guest_connect(void **state)
{
	(void)state;
	char lp[80];
	snprintf(lp, sizeof(lp), "%s_1234", path);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", lp);
	int l = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(l, 1), 0);
	guest_send(VIRTIO_VSOCK_OP_REQUEST, 5000, 1234, NULL, 0, 0);
	int c = accept(l, NULL, NULL);
	assert_true(c >= 0);
	assert_int_equal(guest_recv(NULL).op, VIRTIO_VSOCK_OP_RESPONSE);
	guest_send(VIRTIO_VSOCK_OP_RW, 5000, 1234, "hi", 2, 2);
	char buf[8] = {0};
	assert_int_equal(read(c, buf, sizeof(buf)), 2);
	/* No listener on another port: refused with RST. */
	guest_send(VIRTIO_VSOCK_OP_REQUEST, 5001, 4321, NULL, 0, 0);
	struct virtio_vsock_hdr r = guest_recv(NULL);
	assert_int_equal(r.op, VIRTIO_VSOCK_OP_RST);
	assert_int_equal(r.dst_port, 5001);
	close(c);
	close(l);
	unlink(lp);
}

static void test_vsock_lying_length(void **state)
{
	(void)state;
	/* CVE-2019-18960's shape: the header claims more payload than there is. */
	guest_send(VIRTIO_VSOCK_OP_RW, 5000, 1234, "abc", 3, 60000);
	assert_string_equal(h.d->last_error, "vsock payload length beyond the buffer");
	assert_int_equal(guest_recv(NULL).op, VIRTIO_VSOCK_OP_RST);
	guest_send(VIRTIO_VSOCK_OP_RW, 5000, 1234, "abc", 3, 3); /* no such stream */
	assert_int_equal(guest_recv(NULL).op, VIRTIO_VSOCK_OP_RST);
	guest_send(VIRTIO_VSOCK_OP_RST, 5000, 1234, NULL, 0, 0); /* never answered */
	struct vring_used_elem e;
	assert_int_equal(vh_take_used(&h, 0, &e), 0);
	assert_int_equal(h.d->t.status & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
}

static void test_vsock_bad_cid(void **state)
{
	(void)state;
	struct virtio_vsock_hdr hd = {.src_cid = 8, .dst_cid = 2, .type = 1, .op = 1};
	memcpy(vh_ptr(&h, VH_DATA + 0x10000), &hd, VHDR);
	struct vh_buf b = {VH_DATA + 0x10000, (uint32_t)VHDR, false};
	vh_chain(&h, 1, 0, &b, 1);
	virtio_kick(h.d, 1);
	assert_string_equal(h.d->last_error, "vsock packet with bad addresses or type");
}

/* --- snapshots: each device's state through save and restore ----------------------
 * A restore, as `wisp run --restore` does it: guest RAM goes on (here a copy,
 * there the snapshot's memory section), the old device is gone (with its
 * process), a new one is made from the same options and takes the state. */

/* The record h's device saves (virtio_dev_save, version 1). */
static struct wbuf snap_save(void)
{
	struct wbuf b = {0};
	uint32_t v = 0;
	assert_int_equal(virtio_dev_save(h.d, &b, &v), 0);
	assert_int_equal(wbuf_error(&b), 0);
	assert_int_equal(v, 1);
	return b;
}

/* Move to a new device made by make() (after the old one is destroyed, so
 * that it can bind the same socket) on a copy of guest RAM, and restore
 * len bytes of p with record version `version` into it. */
static int snap_move(struct virtio_dev *(*make)(void), const void *p, size_t len, uint32_t version,
		     char *why)
{
	uint8_t *ram = malloc(VH_RAM);
	assert_non_null(ram);
	memcpy(ram, h.ram, VH_RAM);
	uint16_t num = h.num, avail[VIRTIO_MAX_QUEUES], seen[VIRTIO_MAX_QUEUES];
	memcpy(avail, h.avail_idx, sizeof(avail));
	memcpy(seen, h.used_seen, sizeof(seen));
	vh_destroy(&h);
	assert_int_equal(vh_init(&h, VH_RAM), 0);
	memcpy(h.ram, ram, VH_RAM);
	free(ram);
	h.num = num;
	memcpy(h.avail_idx, avail, sizeof(avail));
	memcpy(h.used_seen, seen, sizeof(seen));
	struct virtio_dev *d = make();
	assert_non_null(d);
	assert_int_equal(vh_bind(&h, d), 0);
	why[0] = 0;
	return virtio_dev_restore(h.d, p, len, version, why, 256);
}

#define OWN (sizeof(struct virtio_state_v1) + sizeof(struct virtio_dev_state))

/* Restoring b with n bytes at off replaced by v (and `len` bytes of it,
 * record version `version`) is refused, saying `want`. */
static void refuse(struct virtio_dev *(*make)(void), const struct wbuf *b, size_t len,
		   uint32_t version, size_t off, const void *v, size_t n, const char *want)
{
	uint8_t *m = malloc(b->len + 16);
	assert_non_null(m);
	memcpy(m, b->p, b->len);
	memset(m + b->len, 0, 16);
	if (n)
		memcpy(m + off, v, n);
	char why[256];
	if (snap_move(make, m, len, version, why) == 0)
		fail_msg("a restore of %zu bytes (changed at %zu) was taken, wanted '%s'", len, off,
			 want);
	if (!strstr(why, want))
		fail_msg("error '%s' lacks '%s'", why, want);
	free(m);
}

static struct virtio_dev *make_console(void)
{
	struct virtio_console_opts o = {.in_fd = con_in[0], .out_fd = con_out[1]};
	return virtio_console_create(&o, err, sizeof(err));
}

/* Linux's way (MULTIPORT): a snapshot in the middle of the control
 * exchange owes the same message after the restore, and one taken with the
 * port open delivers input at once after it (without the console's own
 * state, the port would be closed and input held for ever). */
static void test_console_snapshot(void **state)
{
	(void)state;
	ctrl_tx_next = 0;
	/* DEVICE_READY before any control buffer: PORT_ADD is owed. */
	ctrl_to_device(VIRTIO_CONSOLE_BAD_ID, VIRTIO_CONSOLE_DEVICE_READY, 1, 8);
	struct vring_used_elem e;
	assert_int_equal(vh_take_used(&h, 2, &e), 0);
	struct wbuf b = snap_save();
	assert_int_equal(b.len, OWN + sizeof(struct virtio_console_state_v1));
	char why[256];
	assert_int_equal(snap_move(make_console, b.p, b.len, 1, why), 0);
	wbuf_free(&b);
	for (uint16_t i = 0; i < 4; i++) {
		struct vh_buf c = {VH_DATA + 0x200 + i * 0x10u, 8, true};
		vh_chain(&h, 2, i, &c, 1);
	}
	virtio_kick(h.d, 2);
	struct virtio_console_control m = ctrl_from_device();
	assert_int_equal(m.event, VIRTIO_CONSOLE_PORT_ADD);
	ctrl_to_device(0, VIRTIO_CONSOLE_PORT_READY, 1, 8);
	assert_int_equal(ctrl_from_device().event, VIRTIO_CONSOLE_CONSOLE_PORT);
	ctrl_to_device(0, VIRTIO_CONSOLE_PORT_OPEN, 1, 8);

	/* Saved with the port open. */
	b = snap_save();
	assert_int_equal(snap_move(make_console, b.p, b.len, 1, why), 0);
	wbuf_free(&b);
	assert_int_equal(write(con_in[1], "after\n", 6), 6);
	struct vh_buf r = {VH_DATA + 0x100, 64, true};
	vh_chain(&h, 0, 0, &r, 1);
	virtio_kick(h.d, 0);
	vh_pump(&h, 10);
	e = used(0);
	assert_int_equal(e.len, 6);
	assert_memory_equal(vh_ptr(&h, VH_DATA + 0x100), "after\n", 6);
	/* Output goes to the new backend. */
	memcpy(vh_ptr(&h, VH_DATA + 0x400), "out", 3);
	struct vh_buf t = {VH_DATA + 0x400, 3, false};
	vh_chain(&h, 1, 0, &t, 1);
	virtio_kick(h.d, 1);
	char buf[8] = {0};
	assert_int_equal(read(con_out[0], buf, sizeof(buf)), 3);
	assert_string_equal(buf, "out");
	assert_int_equal(h.d->guest_errors, 0);
}

/* The unikernel's way (no MULTIPORT): a receive buffer made available
 * before the save is the one input fills after the restore. */
static void test_console_snapshot_plain(void **state)
{
	(void)state;
	struct vh_buf r = {VH_DATA + 0x100, 64, true};
	vh_chain(&h, 0, 0, &r, 1);
	virtio_kick(h.d, 0);
	vh_pump(&h, 10);
	struct wbuf b = snap_save();
	char why[256];
	assert_int_equal(snap_move(make_console, b.p, b.len, 1, why), 0);
	wbuf_free(&b);
	assert_int_equal(write(con_in[1], "typed\n", 6), 6);
	vh_pump(&h, 10);
	struct vring_used_elem e = used(0);
	assert_int_equal(e.id, 0);
	assert_int_equal(e.len, 6);
	assert_memory_equal(vh_ptr(&h, VH_DATA + 0x100), "typed\n", 6);
}

/* Every field a console record carries is checked. */
static void test_console_snapshot_malformed(void **state)
{
	(void)state;
	ctrl_tx_next = 0;
	ctrl_to_device(VIRTIO_CONSOLE_BAD_ID, VIRTIO_CONSOLE_DEVICE_READY, 1, 8); /* owes */
	struct wbuf b = snap_save();
	size_t n = b.len, own = OWN;
	uint32_t v2 = 2, four = 4, one = 1, zero = 0;
	uint8_t two = 2;
	refuse(make_console, &b, n, 2, 0, NULL, 0, "state version 2");
	refuse(make_console, &b, sizeof(struct virtio_state_v1) - 1, 1, 0, NULL, 0,
	       "is not one this device knows");
	refuse(make_console, &b, sizeof(struct virtio_state_v1), 1, 0, NULL, 0,
	       "own state is missing");
	refuse(make_console, &b, n - 1, 1, 0, NULL, 0, "says 16 bytes, the record has 15");
	refuse(make_console, &b, n + 8, 1, 0, NULL, 0, "says 16 bytes, the record has 24");
	refuse(make_console, &b, n, 1, own - 8, &v2, 4, "console state version 2");
	uint32_t eight = 8;
	refuse(make_console, &b, own + 8, 1, own - 4, &eight, 4, "(8 bytes) is not one");
	refuse(make_console, &b, n, 1, own + offsetof(struct virtio_console_state_v1, nr_ports),
	       &v2, 4, "has 2 ports, this one 1");
	refuse(make_console, &b, n, 1, own + offsetof(struct virtio_console_state_v1, port_open),
	       &v2, 4, "values no console has");
	refuse(make_console, &b, n, 1, own + offsetof(struct virtio_console_state_v1, owe), &four,
	       4, "values no console has");
	refuse(make_console, &b, n, 1, own + offsetof(struct virtio_console_state_v1, reserved),
	       &one, 4, "values no console has");
	/* The driver's features without MULTIPORT, but a control message owed. */
	uint64_t f;
	size_t foff = offsetof(struct virtio_state_v1, t.driver_features);
	memcpy(&f, b.p + foff, 8);
	assert_true(f & 1ull << VIRTIO_CONSOLE_F_MULTIPORT);
	f &= ~(1ull << VIRTIO_CONSOLE_F_MULTIPORT);
	refuse(make_console, &b, n, 1, foff, &f, 8, "does not match the driver's features");
	/* The transport's part. */
	f |= 1ull << 40; /* never offered */
	refuse(make_console, &b, n, 1, foff, &f, 8, "not a subset of the device's");
	refuse(make_console, &b, n, 1, offsetof(struct virtio_state_v1, device_features), &zero, 4,
	       "offered other features");
	refuse(make_console, &b, n, 1, offsetof(struct virtio_state_v1, t.isr), &four, 4,
	       "unknown bits");
	refuse(make_console, &b, n, 1, offsetof(struct virtio_state_v1, vq[1].ready), &two, 1,
	       "queue 1: a flag is neither 0 nor 1");
	refuse(make_console, &b, n, 1, offsetof(struct virtio_state_v1, vq[0].signalled_valid),
	       &two, 1, "a flag is neither 0 nor 1");
	uint64_t far = 1ull << 40;
	refuse(make_console, &b, n, 1, offsetof(struct virtio_state_v1, vq[0].desc_gpa), &far, 8,
	       "queue 0: ring outside guest RAM");
	uint16_t odd = 6;
	refuse(make_console, &b, n, 1, offsetof(struct virtio_state_v1, vq[0].num), &odd, 2,
	       "queue 0: queue size is not a power of two");
	/* Every truncation is refused; the whole record is taken. */
	for (size_t k = 0; k < n; k++) {
		char why[256];
		assert_int_not_equal(snap_move(make_console, b.p, k, 1, why), 0);
	}
	char why[256];
	assert_int_equal(snap_move(make_console, b.p, n, 1, why), 0);
	wbuf_free(&b);
}

static struct virtio_dev *make_vsock(void)
{
	struct virtio_vsock_opts o = {.cid = 7, .uds_path = path};
	return virtio_vsock_create(&o, err, sizeof(err));
}

#define EVT_GPA (VH_DATA + 0x30000)

/* Event buffers 0..n-1 for the driver's event queue (queue 2). */
static void post_events(int n)
{
	for (uint16_t i = 0; i < n; i++) {
		struct vh_buf b = {EVT_GPA + i * 0x10u, sizeof(struct virtio_vsock_event), true};
		vh_chain(&h, 2, i, &b, 1);
	}
}

/* The next event the device gave the driver, or 0xffffffff. */
static uint32_t event_from_device(void)
{
	struct vring_used_elem e;
	if (!vh_take_used(&h, 2, &e) || e.id >= 16 || e.len != sizeof(struct virtio_vsock_event))
		return 0xffffffffu;
	struct virtio_vsock_event ev;
	memcpy(&ev, vh_ptr(&h, EVT_GPA + e.id * 0x10u), sizeof(ev));
	return ev.id;
}

/* An established stream from a host client to guest port 99; returns the
 * client's socket and the stream's host port. */
static int host_stream(uint32_t *host_port)
{
	int s = host_connect(path);
	assert_int_equal(write(s, "CONNECT 99\n", 11), 11);
	vh_pump(&h, 100);
	struct virtio_vsock_hdr r = guest_recv(NULL);
	assert_int_equal(r.op, VIRTIO_VSOCK_OP_REQUEST);
	*host_port = r.src_port;
	guest_send(VIRTIO_VSOCK_OP_RESPONSE, 99, r.src_port, NULL, 0, 0);
	char ok[32] = {0};
	assert_true(read(s, ok, sizeof(ok) - 1) > 0);
	assert_int_equal(strncmp(ok, "OK ", 3), 0);
	return s;
}

/* A stream with bytes and credit used both ways is saved; the restored
 * device has none: the old host end sees EOF (its process is gone), the
 * driver gets TRANSPORT_RESET once, a packet on the old stream is answered
 * with RST and goes nowhere, and a new stream works from fresh credit on a
 * host port the old one never had. */
static void test_vsock_snapshot(void **state)
{
	(void)state;
	uint32_t old_port;
	int s = host_stream(&old_port);
	guest_send(VIRTIO_VSOCK_OP_RW, 99, old_port, "to host", 7, 7);
	char buf[64] = {0};
	assert_int_equal(read(s, buf, sizeof(buf)), 7);
	assert_int_equal(write(s, "to guest", 8), 8);
	vh_pump(&h, 100);
	char data[4096] = {0};
	struct virtio_vsock_hdr d = guest_recv(data);
	assert_int_equal(d.op, VIRTIO_VSOCK_OP_RW);
	assert_int_equal(d.len, 8);
	post_events(4);
	virtio_kick(h.d, 2);
	assert_int_equal(event_from_device(), 0xffffffffu); /* none while it runs */

	struct wbuf b = snap_save();
	assert_int_equal(b.len, OWN + sizeof(struct virtio_vsock_state_v1));
	char why[256];
	assert_int_equal(snap_move(make_vsock, b.p, b.len, 1, why), 0);
	wbuf_free(&b);
	assert_int_equal(read(s, buf, sizeof(buf)), 0);
	close(s);
	assert_int_equal(event_from_device(), VIRTIO_VSOCK_EVENT_TRANSPORT_RESET);
	assert_int_equal(event_from_device(), 0xffffffffu);

	guest_send(VIRTIO_VSOCK_OP_RW, 99, old_port, "stale", 5, 5);
	struct virtio_vsock_hdr r = guest_recv(NULL);
	assert_int_equal(r.op, VIRTIO_VSOCK_OP_RST);
	assert_int_equal(r.src_port, old_port);
	assert_int_equal(r.dst_port, 99);

	uint32_t new_port;
	int s2 = host_stream(&new_port);
	assert_int_not_equal(new_port, old_port);
	assert_int_equal(write(s2, "fresh", 5), 5);
	vh_pump(&h, 100);
	d = guest_recv(data);
	assert_int_equal(d.op, VIRTIO_VSOCK_OP_RW);
	assert_int_equal(d.src_port, new_port);
	assert_int_equal(d.fwd_cnt, 0); /* nothing of the old stream's count */
	assert_memory_equal(data, "fresh", 5);
	guest_send(VIRTIO_VSOCK_OP_RW, 99, new_port, "back", 4, 4);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(read(s2, buf, sizeof(buf)), 4);
	assert_string_equal(buf, "back");
	close(s2);
	assert_int_equal(h.d->guest_errors, 0);
}

/* Restored over a live device (the transport resets it first): its streams
 * close, and an RST it owed the driver for an unknown stream is not sent
 * after the restore: only the TRANSPORT_RESET event is. */
static void test_vsock_snapshot_over_live_device(void **state)
{
	(void)state;
	post_events(2);
	uint32_t port;
	int s = host_stream(&port);
	/* Use up the driver's receive buffers, then owe it an RST. */
	char chunk[4000];
	memset(chunk, 'x', sizeof(chunk));
	struct vring_used_elem e;
	int full = 0;
	for (int i = 0; i < 16 && !full; i++) {
		assert_int_equal(write(s, chunk, sizeof(chunk)), (ssize_t)sizeof(chunk));
		vh_pump(&h, 50);
		full = !virtq_has_avail(&h.d->vq[0]);
	}
	assert_true(full);
	guest_send(VIRTIO_VSOCK_OP_RW, 5001, 4321, "?", 1, 1); /* no such stream */
	struct wbuf b = snap_save();
	char why[256];
	assert_int_equal(virtio_dev_restore(h.d, b.p, b.len, 1, why, sizeof(why)), 0);
	wbuf_free(&b);
	char c;
	assert_int_equal(read(s, &c, 1), 0);
	close(s);
	assert_int_equal(event_from_device(), VIRTIO_VSOCK_EVENT_TRANSPORT_RESET);
	/* The driver takes what was delivered before the save and gives its
	 * buffers back: nothing else arrives. */
	while (vh_take_used(&h, 0, &e)) {
		struct virtio_vsock_hdr hd;
		memcpy(&hd, vh_ptr(&h, VH_DATA + e.id * 0x1000u), VHDR);
		assert_int_equal(hd.op, VIRTIO_VSOCK_OP_RW);
		struct vh_buf rb = {VH_DATA + e.id * 0x1000u, 0x1000, true};
		vh_chain(&h, 0, (uint16_t)e.id, &rb, 1);
	}
	virtio_kick(h.d, 0);
	vh_pump(&h, 50);
	assert_int_equal(vh_take_used(&h, 0, &e), 0);
}

/* The event waits for a buffer; a device the driver had not started owes
 * none. */
static void test_vsock_snapshot_event_later(void **state)
{
	(void)state;
	struct wbuf b = snap_save();
	char why[256];
	assert_int_equal(snap_move(make_vsock, b.p, b.len, 1, why), 0);
	wbuf_free(&b);
	assert_int_equal(event_from_device(), 0xffffffffu);
	post_events(1);
	virtio_kick(h.d, 2);
	assert_int_equal(event_from_device(), VIRTIO_VSOCK_EVENT_TRANSPORT_RESET);

	vh_write(&h, VIRTIO_MMIO_STATUS, 0); /* the driver resets the device */
	b = snap_save();
	assert_int_equal(snap_move(make_vsock, b.p, b.len, 1, why), 0);
	wbuf_free(&b);
	vh_setup(&h, 0, 3, 16);
	post_events(1);
	virtio_kick(h.d, 2);
	assert_int_equal(event_from_device(), 0xffffffffu);
}

static void test_vsock_snapshot_malformed(void **state)
{
	(void)state;
	struct wbuf b = snap_save();
	size_t n = b.len, own = OWN;
	uint64_t cid = 8;
	uint32_t low = 5, one = 1, v2 = 2;
	uint16_t num = 8;
	{ /* a clone: the saved CID is its source's; the device keeps its own */
		char why[256];
		struct wbuf c = snap_save();
		memcpy(c.p + own + offsetof(struct virtio_vsock_state_v1, guest_cid), &cid, 8);
		assert_int_equal(snap_move(make_vsock, c.p, c.len, 1, why), 0);
		wbuf_free(&c);
	}
	refuse(make_vsock, &b, n, 1, own + offsetof(struct virtio_vsock_state_v1, next_port), &low,
	       4, "values no vsock device has");
	refuse(make_vsock, &b, n, 1, own + offsetof(struct virtio_vsock_state_v1, reserved), &one,
	       4, "values no vsock device has");
	refuse(make_vsock, &b, n, 1, own - 8, &v2, 4, "vsock state version 2");
	refuse(make_vsock, &b, sizeof(struct virtio_state_v1), 1, 0, NULL, 0,
	       "own state is missing");
	refuse(make_vsock, &b, n, 1, offsetof(struct virtio_state_v1, vq[3].num), &num, 2,
	       "queue 3 is set up, and the device has 3 queues");
	refuse(make_vsock, &b, n, 1, offsetof(struct virtio_state_v1, device_id), &v2, 4,
	       "offered other features");
	for (size_t k = 0; k < n; k++) {
		char why[256];
		assert_int_not_equal(snap_move(make_vsock, b.p, k, 1, why), 0);
	}
	wbuf_free(&b);
}

int main(void)
{
	static int sync_mode = 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_blk_read_write, setup_blk, teardown_blk),
		cmocka_unit_test_prestate_setup_teardown(test_blk_read_write, setup_blk,
							 teardown_blk, &sync_mode),
		cmocka_unit_test_setup_teardown(test_blk_errors, setup_blk, teardown_blk),
		cmocka_unit_test_prestate_setup_teardown(test_blk_errors, setup_blk, teardown_blk,
							 &sync_mode),
		cmocka_unit_test_setup_teardown(test_blk_split_header, setup_blk, teardown_blk),
		cmocka_unit_test_setup_teardown(test_blk_no_status, setup_blk, teardown_blk),
		cmocka_unit_test_setup_teardown(test_blk_reused_chain, setup_blk, teardown_blk),
		cmocka_unit_test_setup_teardown(test_blk_ro, setup_blk_ro, teardown_blk),
		cmocka_unit_test(test_blk_open_errors),
		cmocka_unit_test_setup_teardown(test_net_tx, setup_net, teardown_net),
		cmocka_unit_test_setup_teardown(test_net_tx_bad, setup_net, teardown_net),
		cmocka_unit_test_setup_teardown(test_net_rx, setup_net, teardown_net),
		cmocka_unit_test_setup_teardown(test_net_rx_small_buffer, setup_net, teardown_net),
		cmocka_unit_test_setup_teardown(test_console, setup_console, teardown_console),
		cmocka_unit_test_setup_teardown(test_console_multiport, setup_console_multiport,
						teardown_console),
		cmocka_unit_test_setup_teardown(test_vsock_host_connect, setup_vsock,
						teardown_vsock),
		cmocka_unit_test_setup_teardown(test_vsock_guest_connect, setup_vsock,
						teardown_vsock),
		cmocka_unit_test_setup_teardown(test_vsock_lying_length, setup_vsock,
						teardown_vsock),
		cmocka_unit_test_setup_teardown(test_vsock_bad_cid, setup_vsock, teardown_vsock),
		cmocka_unit_test_setup_teardown(test_console_snapshot, setup_console_multiport,
						teardown_console),
		cmocka_unit_test_setup_teardown(test_console_snapshot_plain, setup_console,
						teardown_console),
		cmocka_unit_test_setup_teardown(test_console_snapshot_malformed,
						setup_console_multiport, teardown_console),
		cmocka_unit_test_setup_teardown(test_vsock_snapshot, setup_vsock, teardown_vsock),
		cmocka_unit_test_setup_teardown(test_vsock_snapshot_over_live_device, setup_vsock,
						teardown_vsock),
		cmocka_unit_test_setup_teardown(test_vsock_snapshot_event_later, setup_vsock,
						teardown_vsock),
		cmocka_unit_test_setup_teardown(test_vsock_snapshot_malformed, setup_vsock,
						teardown_vsock),
	};
	return cmocka_run_group_tests_name("virtio devices", tests, NULL, NULL);
}
