/* PID 1 of `make bench-linux-create`'s initramfs: one marker line on the
 * console as soon as it runs, then nothing (the benchmark ends the VM).
 * No libc start-up beyond the static binary's own, no mounts: the line's
 * arrival on the console is the moment /init runs. */
#include <fcntl.h>
#include <unistd.h>

int main(void)
{
	static const char line[] = "wisp-bench-init: /init running\n";
	/* The kernel opens /dev/console as fds 0-2 when the archive has it. */
	if (write(1, line, sizeof(line) - 1) < 0) {
		int fd = open("/dev/console", O_WRONLY);
		if (fd >= 0 && write(fd, line, sizeof(line) - 1) < 0)
			return 1;
	}
	for (;;)
		pause();
}
