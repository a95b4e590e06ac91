/* tinit: PID 1 of a `wisp image` guest (docs/image.md). Static, no libraries
 * beyond libc, no shell:
 *   - mounts /proc, /sys, /dev (devtmpfs), /tmp and /run;
 *   - mounts the disks wisp-oci made of a container's bind mounts
 *     (wisp.mount= on the kernel command line);
 *   - configures the network from the kernel command line (ip=, the
 *     kernel's nfsroot syntax: address, gateway, netmask, hostname, device,
 *     DNS), with ioctls: no DHCP, nothing between toolstack and guest;
 *   - runs the command of /etc/wisp-image/config with its environment,
 *     working directory and user;
 *   - forwards SIGTERM, SIGINT and SIGPWR (a poweroff request) to it as
 *     SIGTERM, reaps every zombie, and when the command exits prints
 *     "wisp-init: exit N" and reboots: `wisp run` turns that line into its
 *     own exit status (src/image/image.h: image_exit_line). The line is
 *     the one guest/linux/init prints after wisp_run. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <net/route.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define CONFIG	   "/etc/wisp-image/config"
#define MAX_ARGS   128
#define MAX_ENV	   80
#define GRACE_SECS 10 /* SIGTERM to SIGKILL */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(2, buf, (size_t)n) < 0)
		return;
}

/* The end: every process gone, disks synced, status on the console. */
static void finish(int status)
{
	kill(-1, SIGKILL);
	sync();
	say("wisp-init: exit %d", status);
	tcdrain(2);
	reboot(RB_AUTOBOOT);
	for (;;)
		pause();
}

static void mounts(void)
{
	mkdir("/proc", 0555);
	mkdir("/sys", 0555);
	mkdir("/dev", 0755);
	mkdir("/tmp", 01777);
	mkdir("/run", 0755);
	mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	if (mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, NULL) && errno != EBUSY)
		say("wisp-tinit: mount /dev: %s", strerror(errno));
	mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
	/* stdio on the console, if the kernel could not open it before /dev. */
	if (fcntl(1, F_GETFD) < 0) {
		int fd = open("/dev/console", O_RDWR);
		if (fd >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
			dup2(fd, 2);
			if (fd > 2)
				close(fd);
		}
	}
}

/* mkdir -p path (absolute); the guest's root is the container's. */
static int mkdir_p(const char *path)
{
	char buf[512];
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (char *p = buf + 1;; p++) {
		if (*p == '/' || *p == 0) {
			char c = *p;
			*p = 0;
			if (mkdir(buf, 0755) && errno != EEXIST)
				return -1;
			*p = c;
			if (!c)
				return 0;
		}
	}
}

/* The block device whose virtio serial is want: "/dev/vdX" in dev. The
 * disks are probed before init runs; a late one gets a second anyway. */
static int find_disk(const char *want, char *dev, size_t len)
{
	for (int tries = 0; tries < 100; tries++) {
		for (char c = 'a'; c <= 'z'; c++) {
			char path[64], serial[32] = "";
			snprintf(path, sizeof(path), "/sys/block/vd%c/serial", c);
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				continue;
			ssize_t n = read(fd, serial, sizeof(serial) - 1);
			close(fd);
			serial[n > 0 ? n : 0] = 0;
			serial[strcspn(serial, "\n")] = 0;
			if (!strcmp(serial, want)) {
				snprintf(dev, len, "/dev/vd%c", c);
				return 0;
			}
		}
		usleep(10000);
	}
	return -1;
}

/* wisp.mount=N:FLAGS:DEST, from wisp-oci (src/oci/vmconf.c): the disk with
 * serial wisp-mount-N (ext4) at DEST (bytes as %XX), FLAGS of r (ro),
 * s (nosuid), d (nodev), x (noexec) or "-". A mount that fails ends the
 * VM: the application would not find its data. */
static int disk_mounts(const char *cmdline)
{
	for (const char *p = cmdline; (p = strstr(p, "wisp.mount=")); p++) {
		if (p != cmdline && p[-1] != ' ')
			continue;
		char tok[1024], dest[512], want[32], dev[32];
		snprintf(tok, sizeof(tok), "%.*s", (int)strcspn(p + 11, " \n"), p + 11);
		char *flags = strchr(tok, ':'), *enc = flags ? strchr(flags + 1, ':') : NULL;
		if (!flags || !enc) {
			say("wisp-tinit: wisp.mount=%s: not N:FLAGS:DEST", tok);
			return -1;
		}
		*flags++ = 0;
		*enc++ = 0;
		size_t o = 0;
		for (const char *q = enc; *q && o < sizeof(dest) - 1; q++) {
			unsigned v;
			if (*q == '%' && sscanf(q + 1, "%2x", &v) == 1 && v) {
				dest[o++] = (char)v;
				q += 2;
			} else {
				dest[o++] = *q;
			}
		}
		dest[o] = 0;
		unsigned long mf = 0;
		mf |= strchr(flags, 'r') ? MS_RDONLY : 0;
		mf |= strchr(flags, 's') ? MS_NOSUID : 0;
		mf |= strchr(flags, 'd') ? MS_NODEV : 0;
		mf |= strchr(flags, 'x') ? MS_NOEXEC : 0;
		snprintf(want, sizeof(want), "wisp-mount-%.12s", tok);
		if (dest[0] != '/' || find_disk(want, dev, sizeof(dev))) {
			say("wisp-tinit: mount %s: no disk %s", dest, want);
			return -1;
		}
		if (mkdir_p(dest) || mount(dev, dest, "ext4", mf, NULL)) {
			say("wisp-tinit: mount %s on %s: %s", dev, dest, strerror(errno));
			return -1;
		}
	}
	return 0;
}

static int set_addr(int s, const char *dev, unsigned long req, const char *addr)
{
	struct ifreq ifr = {0};
	struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", dev);
	sin->sin_family = AF_INET;
	if (inet_pton(AF_INET, addr, &sin->sin_addr) != 1) {
		errno = EINVAL;
		return -1;
	}
	return ioctl(s, req, &ifr);
}

static int link_up(int s, const char *dev)
{
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", dev);
	if (ioctl(s, SIOCGIFFLAGS, &ifr))
		return -1;
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	return ioctl(s, SIOCSIFFLAGS, &ifr);
}

/* ip=CLIENT:SERVER:GATEWAY:NETMASK:HOSTNAME:DEVICE:AUTOCONF:DNS0:DNS1 */
static void network(const char *cmdline)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return; /* a kernel without INET: nothing to configure */
	link_up(s, "lo");
	const char *ip = NULL;
	for (const char *p = cmdline; (p = strstr(p, "ip=")); p += 3)
		if (p == cmdline || p[-1] == ' ')
			ip = p + 3;
	if (!ip) {
		close(s);
		return;
	}
	char buf[512], *f[9] = {0};
	snprintf(buf, sizeof(buf), "%.*s", (int)strcspn(ip, " \n"), ip);
	char *q = buf;
	for (int i = 0; i < 9 && q; i++) {
		f[i] = q;
		q = strchr(q, ':');
		if (q)
			*q++ = '\0';
	}
	const char *addr = f[0], *gw = f[2], *mask = f[3] && *f[3] ? f[3] : "255.255.255.0";
	const char *dev = f[5] && *f[5] ? f[5] : "eth0";
	if (f[4] && *f[4])
		sethostname(f[4], strlen(f[4]));
	if (!addr || !*addr || !strcmp(addr, "off") || !strcmp(addr, "none")) {
		close(s);
		return;
	}
	/* The driver has probed by now; give a late device a second anyway. */
	int tries = 0;
	while (set_addr(s, dev, SIOCSIFADDR, addr) && errno == ENODEV && tries++ < 100)
		usleep(10000);
	if (set_addr(s, dev, SIOCSIFADDR, addr) || set_addr(s, dev, SIOCSIFNETMASK, mask) ||
	    link_up(s, dev))
		say("wisp-tinit: ip=%s on %s: %s", addr, dev, strerror(errno));
	if (gw && *gw) {
		struct rtentry rt = {0};
		struct sockaddr_in *g = (struct sockaddr_in *)&rt.rt_gateway;
		((struct sockaddr_in *)&rt.rt_dst)->sin_family = AF_INET;
		((struct sockaddr_in *)&rt.rt_genmask)->sin_family = AF_INET;
		g->sin_family = AF_INET;
		rt.rt_flags = RTF_UP | RTF_GATEWAY;
		if (inet_pton(AF_INET, gw, &g->sin_addr) != 1 || ioctl(s, SIOCADDRT, &rt))
			say("wisp-tinit: gateway %s: %s", gw, strerror(errno));
	}
	close(s);
	if ((f[7] && *f[7]) || (f[8] && *f[8])) {
		mkdir("/etc", 0755);
		FILE *r = fopen("/etc/resolv.conf", "w");
		for (int i = 7; r && i < 9; i++)
			if (f[i] && *f[i])
				fprintf(r, "nameserver %s\n", f[i]);
		if (r)
			fclose(r);
	}
	say("wisp-tinit: %s %s/%s gateway %s", dev, addr, mask, gw && *gw ? gw : "none");
}

struct config {
	char *argv[MAX_ARGS];
	int argc;
	char *env[MAX_ENV];
	int nenv;
	char workdir[512];
	unsigned uid, gid;
};

static int read_config(struct config *c)
{
	FILE *f = fopen(CONFIG, "r");
	if (!f) {
		say("wisp-tinit: %s: %s", CONFIG, strerror(errno));
		return -1;
	}
	char line[8192];
	snprintf(c->workdir, sizeof(c->workdir), "/");
	c->env[c->nenv++] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	c->env[c->nenv++] = "HOME=/root";
	c->env[c->nenv++] = "TERM=linux";
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (!strncmp(line, "arg=", 4) && c->argc < MAX_ARGS - 1)
			c->argv[c->argc++] = strdup(line + 4);
		else if (!strncmp(line, "env=", 4) && c->nenv < MAX_ENV - 1)
			c->env[c->nenv++] = strdup(line + 4);
		else if (!strncmp(line, "workdir=", 8))
			snprintf(c->workdir, sizeof(c->workdir), "%.511s", line + 8);
		else if (!strncmp(line, "uid=", 4))
			c->uid = (unsigned)strtoul(line + 4, NULL, 10);
		else if (!strncmp(line, "gid=", 4))
			c->gid = (unsigned)strtoul(line + 4, NULL, 10);
	}
	fclose(f);
	if (!c->argc) {
		say("wisp-tinit: %s: no command", CONFIG);
		return -1;
	}
	return 0;
}

/* In the child: become the application. */
static void start(const struct config *c, const sigset_t *old)
{
	setsid();
	sigprocmask(SIG_SETMASK, old, NULL);
	if (chdir(c->workdir)) {
		say("wisp-tinit: workdir %s: %s", c->workdir, strerror(errno));
		_exit(126);
	}
	if (c->gid && (setgroups(0, NULL) || setgid(c->gid))) {
		say("wisp-tinit: group %u: %s", c->gid, strerror(errno));
		_exit(126);
	}
	if (c->uid && setuid(c->uid)) {
		say("wisp-tinit: user %u: %s", c->uid, strerror(errno));
		_exit(126);
	}
	clearenv();
	for (int i = 0; i < c->nenv; i++)
		putenv(c->env[i]);
	execvp(c->argv[0], c->argv);
	say("wisp-tinit: cannot run %s: %s", c->argv[0], strerror(errno));
	_exit(errno == ENOENT ? 127 : 126);
}

int main(void)
{
	if (getpid() != 1) {
		say("tinit: the init of a wisp image; it runs as PID 1 only");
		return 2;
	}
	mounts();
	char cmdline[4096] = "";
	int fd = open("/proc/cmdline", O_RDONLY);
	if (fd >= 0) {
		ssize_t n = read(fd, cmdline, sizeof(cmdline) - 1);
		cmdline[n > 0 ? n : 0] = '\0';
		close(fd);
	}
	if (disk_mounts(cmdline))
		finish(125);
	network(cmdline);
	struct config c = {0};
	if (read_config(&c))
		finish(127);
	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGPWR);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, &old);
	say("wisp-init: ready");
	say("wisp-tinit: starting %s", c.argv[0]);
	pid_t app = fork();
	if (app < 0) {
		say("wisp-tinit: fork: %s", strerror(errno));
		finish(126);
	}
	if (app == 0)
		start(&c, &old);
	int status = -1;
	time_t kill_at = 0;
	for (;;) {
		struct timespec ts = {1, 0};
		siginfo_t si;
		int sig = sigtimedwait(&set, &si, &ts);
		if (sig == SIGTERM || sig == SIGINT || sig == SIGPWR) {
			/* A poweroff: the application first, SIGKILL after the grace. */
			kill(app, SIGTERM);
			if (!kill_at)
				kill_at = time(NULL) + GRACE_SECS;
		}
		if (kill_at && time(NULL) >= kill_at)
			kill(app, SIGKILL);
		int st;
		pid_t p;
		while ((p = waitpid(-1, &st, WNOHANG)) > 0)
			if (p == app)
				status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		if (status >= 0)
			break;
	}
	/* The application is gone: its leftovers get a short grace too. */
	kill(-1, SIGTERM);
	for (int i = 0; i < 20 && waitpid(-1, NULL, WNOHANG) >= 0; i++)
		usleep(10000);
	finish(status);
}
