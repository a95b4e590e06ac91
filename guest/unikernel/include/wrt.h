/* The Wisp unikernel runtime: what an application may call.
 *
 * An application provides `int main(int argc, char **argv)`; the runtime
 * starts it at CPL3 with the command line split into words and turns its
 * return value into the VM's exit status. Runs the same under Wisp
 * (hypercalls) and under QEMU's PVH boot (COM1 + isa-debug-exit). */
#ifndef WRT_H
#define WRT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <wisp/abi.h>

/* Write len bytes to the console; returns bytes written or -errno. */
long rt_write(const void *buf, size_t len);
/* Write a NUL-terminated string and a newline. */
void rt_puts(const char *s);
/* printf subset: %d %i %u %x %X %p %s %c %%, with l/ll/z, width, 0 and - flags. */
int rt_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* vsnprintf with the same subset; always NUL-terminates when size > 0. */
int rt_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int rt_snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* End the VM with `status` (0..255). */
_Noreturn void rt_exit(int status);
/* Host CLOCK_MONOTONIC in ns (0 when not booted by Wisp). */
uint64_t rt_monotonic_ns(void);
/* Host CLOCK_REALTIME in ns since the epoch (0 when not booted by Wisp). */
uint64_t rt_wall_ns(void);
/* Sleep until timeout_ns passes or a device has an event; returns the event mask. */
uint64_t rt_poll(uint64_t timeout_ns);
/* The boot info page, or NULL when not booted by Wisp. */
const struct wisp_boot_info *rt_boot_info(void);
/* Parse a decimal or 0x-prefixed number; returns -1 on garbage. */
long long rt_atoll(const char *s);

/* Raw hypercall: `out` of a 32-bit value to WISP_HC_BASE + nr. */
static inline void rt_hypercall(unsigned nr, uint32_t arg)
{
	__asm__ volatile("outl %0, %w1"
			 :
			 : "a"(arg), "Nd"((uint16_t)(WISP_HC_BASE + nr))
			 : "memory");
}

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %w1" : : "a"(v), "Nd"(port));
}
static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %w1" : : "a"(v), "Nd"(port));
}
static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %w1" : : "a"(v), "Nd"(port));
}
static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %w1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline uint16_t inw(uint16_t port)
{
	uint16_t v;
	__asm__ volatile("inw %w1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline uint32_t inl(uint16_t port)
{
	uint32_t v;
	__asm__ volatile("inl %w1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

/* Freestanding C library pieces (the compiler may call the first four). */
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);

int main(int argc, char **argv);

/* argv[0] of the application: its build sets WRT_APP_NAME. */
#ifdef WRT_APP_NAME
const char rt_app_name[] = WRT_APP_NAME;
#endif

#endif
