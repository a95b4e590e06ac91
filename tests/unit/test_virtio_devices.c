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
	};
	return cmocka_run_group_tests_name("virtio devices", tests, NULL, NULL);
}
