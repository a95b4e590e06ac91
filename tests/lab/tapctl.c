/* tapctl: create or remove a persistent TAP interface in the lab's L1
 * (busybox `ip` has no `tuntap`), so that Wisp and QEMU can each open it
 * in turn with the same addresses on the L1 side.
 *   tapctl add NAME    create NAME (IFF_TAP | IFF_NO_PI), persistent
 *   tapctl del NAME    remove it
 * Exit 0 on success, 1 on failure, 2 for bad usage. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 3 || (strcmp(argv[1], "add") && strcmp(argv[1], "del")) ||
	    strlen(argv[2]) >= IFNAMSIZ) {
		fprintf(stderr, "usage: tapctl add|del NAME\n");
		return 2;
	}
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "tapctl: /dev/net/tun: %s\n", strerror(errno));
		return 1;
	}
	struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", argv[2]);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0 ||
	    ioctl(fd, TUNSETPERSIST, !strcmp(argv[1], "add")) < 0) {
		fprintf(stderr, "tapctl: %s %s: %s\n", argv[1], argv[2], strerror(errno));
		return 1;
	}
	close(fd);
	return 0;
}
