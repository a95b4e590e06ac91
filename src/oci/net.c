/* Networking from the container's network namespace (as Kata, urunc and
 * firecracker-containerd do it): a TAP beside eth0, every frame of one
 * redirected to the other by tc mirred, and the guest takes eth0's MAC and
 * address, so the engine's network (CNI bridge, port forwards) reaches the
 * VM unchanged. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "oci/oci.h"

/* Run tc (iproute2) with argv, its output discarded; 0 if it exited 0. */
static int run_tc(char *const argv[])
{
	pid_t pid = fork();
	int st;
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR);
		if (fd >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
		}
		execvp("tc", argv);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) < 0)
		return -errno;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

/* Enter the network namespace at path. */
int oci_netns_enter(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "network namespace '%.200s': %s", path, strerror(e));
		return -e;
	}
	if (setns(fd, CLONE_NEWNET)) {
		int e = errno;
		close(fd);
		snprintf(err, errlen, "network namespace '%.200s': setns: %s", path, strerror(e));
		return -e;
	}
	close(fd);
	return 0;
}

/* The default gateway of eth0, from /proc/net/route (this namespace's). */
static uint32_t default_gateway(void)
{
	FILE *f = fopen("/proc/net/route", "re");
	char line[256], ifname[32];
	unsigned dst, gw, flags;
	uint32_t r = 0;
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%31s %x %x %x", ifname, &dst, &gw, &flags) == 4 && dst == 0 &&
		    (flags & 2) && !strcmp(ifname, "eth0")) {
			r = gw;
			break;
		}
	fclose(f);
	return r;
}

/* Up to two IPv4 "nameserver" lines of the resolv.conf at path, as
 * ":A" or ":A:B" (empty if none): anything else in the file is skipped. */
static void read_dns(const char *path, char *out, size_t len)
{
	char line[256];
	int n = 0;
	out[0] = 0;
	FILE *f = path ? fopen(path, "re") : NULL;
	if (!f)
		return;
	while (n < 2 && fgets(line, sizeof(line), f)) {
		char ns[64];
		struct in_addr a;
		if (sscanf(line, " nameserver %63s", ns) == 1 && inet_pton(AF_INET, ns, &a) == 1) {
			size_t o = strlen(out);
			snprintf(out + o, len - o, ":%s", ns);
			n++;
		}
	}
	fclose(f);
}

/* Make the TAP, redirect both ways, read eth0's addresses. */
int oci_net_setup(const char *tap, const char *hostname, const char *resolv, struct oci_net *net,
		  char *err, size_t errlen)
{
	struct ifreq ifr;
	int s, t;
	char addr[INET_ADDRSTRLEN] = "", mask[INET_ADDRSTRLEN] = "", gw[INET_ADDRSTRLEN] = "";

	memset(net, 0, sizeof(*net));
	snprintf(net->tap, sizeof(net->tap), "%s", tap);
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "eth0");
	if (ioctl(s, SIOCGIFHWADDR, &ifr)) {
		int e = errno;
		close(s);
		snprintf(err, errlen, "network namespace: eth0: %s", strerror(e));
		return -e;
	}
	unsigned char *m = (unsigned char *)ifr.ifr_hwaddr.sa_data;
	snprintf(net->mac, sizeof(net->mac), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2],
		 m[3], m[4], m[5]);
	if (!ioctl(s, SIOCGIFADDR, &ifr))
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr, addr,
			  sizeof(addr));
	if (!ioctl(s, SIOCGIFNETMASK, &ifr))
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ifr.ifr_netmask)->sin_addr, mask,
			  sizeof(mask));
	uint32_t g = default_gateway();
	if (g)
		inet_ntop(AF_INET, &g, gw, sizeof(gw));

	/* The TAP, persistent so it outlives this process until delete. */
	t = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (t < 0) {
		int e = errno;
		close(s);
		snprintf(err, errlen, "/dev/net/tun: %s", strerror(e));
		return -e;
	}
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", tap);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	if (ioctl(t, TUNSETIFF, &ifr) || ioctl(t, TUNSETPERSIST, 1)) {
		int e = errno;
		close(t);
		close(s);
		snprintf(err, errlen, "TAP '%s': %s", tap, strerror(e));
		return -e;
	}
	close(t);
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", tap);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP;
		ioctl(s, SIOCSIFFLAGS, &ifr);
	}
	close(s);

	char *q1[] = {"tc", "qdisc", "add", "dev", "eth0", "ingress", NULL};
	char *q2[] = {"tc", "qdisc", "add", "dev", (char *)tap, "ingress", NULL};
	char *f1[] = {"tc",	  "filter", "add",    "dev",	  "eth0", "parent",    "ffff:",
		      "protocol", "all",    "u32",    "match",	  "u8",	  "0",	       "0",
		      "action",	  "mirred", "egress", "redirect", "dev",  (char *)tap, NULL};
	char *f2[] = {"tc",	  "filter", "add",    "dev",	  (char *)tap, "parent", "ffff:",
		      "protocol", "all",    "u32",    "match",	  "u8",	       "0",	 "0",
		      "action",	  "mirred", "egress", "redirect", "dev",       "eth0",	 NULL};
	if (run_tc(q1) || run_tc(q2) || run_tc(f1) || run_tc(f2)) {
		snprintf(err, errlen,
			 "tc: redirecting eth0 <-> %s failed (is iproute2's tc installed?)", tap);
		return -EIO;
	}
	if (addr[0]) {
		char dns[160];
		read_dns(resolv, dns, sizeof(dns));
		snprintf(net->cmdline, sizeof(net->cmdline), "ip=%s::%s:%s:%s:eth0:off%s", addr, gw,
			 mask, hostname ? hostname : "", dns);
	}
	return 0;
}

/* Undo oci_net_setup in the namespace at netns. */
int oci_net_teardown(const char *netns, const char *tap, char *err, size_t errlen)
{
	pid_t pid = fork();
	int st;
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		if (oci_netns_enter(netns, err, errlen))
			_exit(0); /* the namespace is gone, and the TAP with it */
		char *q[] = {"tc", "qdisc", "del", "dev", "eth0", "ingress", NULL};
		run_tc(q);
		int t = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
		struct ifreq ifr;
		memset(&ifr, 0, sizeof(ifr));
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", tap);
		ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
		if (t >= 0 && ioctl(t, TUNSETIFF, &ifr) == 0)
			ioctl(t, TUNSETPERSIST, 0); /* the TAP goes when t closes */
		_exit(0);
	}
	if (waitpid(pid, &st, 0) < 0)
		return -errno;
	return 0;
}
