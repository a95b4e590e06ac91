/* Start-up, console, exit and time for unikernel applications. Everything
 * here runs at the application's privilege level (CPL3 normally). */
#include "rt.h"

/* The PVH start info fields we read (Xen's public start_info.h layout). */
struct pvh_start_info {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
	uint32_t memmap_entries, reserved;
};
#define PVH_MAGIC 0x336ec578u

#define MAX_ARGS  64
#define COM1_LSR  (WISP_COM1_PORT + 5)
#define COM1_THRE 0x20

int rt_booted_by_wisp;
static const struct wisp_boot_info *boot_info;
static char cmdline_copy[WISP_BOOTINFO_SIZE];
static char *argv_buf[MAX_ARGS + 1];

extern const char rt_app_name[];

void rt_com1_write(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		/* Bounded wait for the transmitter; QEMU's UART is always ready. */
		for (int spin = 0; spin < 100000 && !(inb(COM1_LSR) & COM1_THRE); spin++)
			;
		outb(WISP_COM1_PORT, (uint8_t)s[i]);
	}
}

long rt_write(const void *buf, size_t len)
{
	if (!rt_booted_by_wisp) {
		rt_com1_write(buf, len);
		return (long)len;
	}
	size_t done = 0;
	while (done < len) {
		size_t n = len - done > WISP_CONSOLE_MAX ? WISP_CONSOLE_MAX : len - done;
		volatile struct wisp_hc_console c = {(uint64_t)(uintptr_t)buf + done, n, 0};
		rt_hypercall(WISP_HC_CONSOLE, (uint32_t)(uintptr_t)&c);
		if (c.ret <= 0)
			return done ? (long)done : (long)c.ret;
		done += (size_t)c.ret;
	}
	return (long)done;
}

void rt_puts(const char *s)
{
	rt_write(s, strlen(s));
	rt_write("\n", 1);
}

_Noreturn void rt_exit(int status)
{
	if (rt_booted_by_wisp)
		rt_hypercall(WISP_HC_EXIT, (uint32_t)status & 0xff);
	else
		rt_debug_exit((uint8_t)status);
	for (;;)
		__asm__ volatile("pause");
}

static void get_time(struct wisp_hc_time *t)
{
	volatile struct wisp_hc_time v = {0, 0};
	if (rt_booted_by_wisp)
		rt_hypercall(WISP_HC_TIME, (uint32_t)(uintptr_t)&v);
	t->monotonic_ns = v.monotonic_ns;
	t->wall_ns = v.wall_ns;
}

uint64_t rt_monotonic_ns(void)
{
	struct wisp_hc_time t;
	get_time(&t);
	return t.monotonic_ns;
}

uint64_t rt_wall_ns(void)
{
	struct wisp_hc_time t;
	get_time(&t);
	return t.wall_ns;
}

uint64_t rt_poll(uint64_t timeout_ns)
{
	if (!rt_booted_by_wisp)
		return 0;
	volatile struct wisp_hc_poll p = {timeout_ns, 0};
	rt_hypercall(WISP_HC_POLL, (uint32_t)(uintptr_t)&p);
	return p.events;
}

const struct wisp_boot_info *rt_boot_info(void)
{
	return boot_info;
}

/* Split the command line into words in place; "double quotes" group words. */
static int split_args(char *s, char **argv, int max)
{
	int argc = 0;
	while (*s && argc < max) {
		while (*s == ' ')
			s++;
		if (!*s)
			break;
		char *out = s;
		argv[argc++] = out;
		int quoted = 0;
		while (*s && (quoted || *s != ' ')) {
			if (*s == '"')
				quoted = !quoted;
			else
				*out++ = *s;
			s++;
		}
		if (*s)
			s++;
		*out = 0;
	}
	argv[argc] = 0;
	return argc;
}

static void copy_cmdline(const char *src, size_t max)
{
	size_t i = 0;
	for (; src && i + 1 < sizeof(cmdline_copy) && i < max && src[i]; i++)
		cmdline_copy[i] = src[i];
	cmdline_copy[i] = 0;
}

_Noreturn void rt_start(const struct wisp_boot_info *bi, const struct pvh_start_info *si)
{
	if (bi && bi->magic == WISP_BOOT_MAGIC) {
		rt_booted_by_wisp = 1;
		boot_info = bi;
		copy_cmdline((const char *)(uintptr_t)bi->cmdline, bi->cmdline_size);
	} else if (si && si->magic == PVH_MAGIC && si->cmdline_paddr) {
		copy_cmdline((const char *)(uintptr_t)si->cmdline_paddr, sizeof(cmdline_copy));
	}
	argv_buf[0] = (char *)rt_app_name;
	int argc = 1 + split_args(cmdline_copy, argv_buf + 1, MAX_ARGS - 1);
	rt_exit(main(argc, argv_buf));
}

long long rt_atoll(const char *s)
{
	int neg = 0;
	if (*s == '-') {
		neg = 1;
		s++;
	}
	unsigned base = 10;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	if (!*s)
		return -1;
	long long v = 0;
	for (; *s; s++) {
		unsigned d;
		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = (unsigned)(*s - 'a' + 10);
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = (unsigned)(*s - 'A' + 10);
		else
			return -1;
		v = v * base + d;
	}
	return neg ? -v : v;
}
