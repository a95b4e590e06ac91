/* Parsing and opening of the virtio device options of `wisp run`. Each
 * value is PRIMARY[,key=value...]; every mistake gets a message naming the
 * option, the value and the accepted form. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/virtio_args.h"

#define IFNAME_MAX 15 /* IFNAMSIZ - 1 */

static const char *const forms[] = {
	[VARG_RNG] = "--rng",
	[VARG_DISK] = "--disk PATH[,ro][,id=ID]",
	[VARG_NET] = "--net tap=NAME[,mac=XX:XX:XX:XX:XX:XX]",
	[VARG_CONSOLE] = "--console virtio[,sock=PATH]",
	[VARG_VSOCK] = "--vsock PATH[,cid=N]",
};

static int bad(struct virtio_arg *a, char *err, size_t errlen, const char *orig, const char *why)
{
	snprintf(err, errlen, "%.*s '%s': %s (use %s)", (int)strcspn(forms[a->kind], " "),
		 forms[a->kind], orig, why, forms[a->kind]);
	return -1;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	for (int i = 0; i < 6; i++) {
		if (!isxdigit((unsigned char)s[0]) || !isxdigit((unsigned char)s[1]))
			return -1;
		char hex[3] = {s[0], s[1], 0};
		mac[i] = (uint8_t)strtoul(hex, NULL, 16);
		s += 2;
		if (*s != (i < 5 ? ':' : 0))
			return -1;
		s++;
	}
	return 0;
}

static int count(const struct virtio_args *va, enum virtio_arg_kind k)
{
	int n = 0;
	for (int i = 0; i < va->n; i++)
		n += va->a[i].kind == k;
	return n;
}

int virtio_args_parse(struct virtio_args *va, const char *flag, const char *value, char *err,
		      size_t errlen)
{
	static const char *const names[] = {"rng", "disk", "net", "console", "vsock"};
	int kind = -1;
	for (int i = 0; i < 5; i++)
		if (!strcmp(flag, names[i]))
			kind = i;
	if (kind < 0) {
		snprintf(err, errlen, "unknown device option --%s", flag);
		return -1;
	}
	if (va->n == VIRTIO_MAX_DEVICES) {
		snprintf(err, errlen, "--%s: too many virtio devices (at most %d)", flag,
			 VIRTIO_MAX_DEVICES);
		return -1;
	}
	if (kind != VARG_DISK && kind != VARG_NET && count(va, (enum virtio_arg_kind)kind)) {
		snprintf(err, errlen, "--%s given twice (a VM has at most one)", flag);
		return -1;
	}
	struct virtio_arg *a = &va->a[va->n];
	memset(a, 0, sizeof(*a));
	a->kind = (enum virtio_arg_kind)kind;
	if (kind == VARG_RNG) {
		va->n++;
		return 0;
	}
	a->value = strdup(value);
	if (!a->value) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	/* Split on commas in place. --net has only key=value fields; the others
	 * start with a positional one (a path, or the console kind). */
	char *field[16];
	int nf = 0;
	for (char *p = a->value; nf < 16; p++) {
		field[nf++] = p;
		p = strchr(p, ',');
		if (!p)
			break;
		*p = 0;
	}
	int r = 0, k = a->kind == VARG_NET ? 0 : 1;
	if (!*field[0])
		r = bad(a, err, errlen, value, "empty value");
	else if (nf == 16)
		r = bad(a, err, errlen, value, "too many fields");
	switch (a->kind) {
	case VARG_DISK:
		a->blk.path = field[0];
		break;
	case VARG_NET:
		a->net.tap_fd = -1;
		/* Locally administered, different for each NIC: 02:57:49:53:50:n ("WISP"). */
		memcpy(a->net.mac, (uint8_t[6]){0x02, 0x57, 0x49, 0x53, 0x50, 0}, 6);
		a->net.mac[5] = (uint8_t)count(va, VARG_NET);
		break;
	case VARG_CONSOLE:
		a->con.in_fd = a->con.out_fd = -1;
		if (!r && strcmp(field[0], "virtio"))
			r = bad(a, err, errlen, value, "only 'virtio' is known");
		break;
	case VARG_VSOCK:
		a->vsock.uds_path = field[0];
		a->vsock.cid = 3;
		break;
	default:
		break;
	}
	for (; !r && k < nf; k++) {
		char *opt = field[k], *eq = strchr(opt, '=');
		const char *v = eq ? eq + 1 : NULL;
		if (eq)
			*eq = 0;
		if (a->kind == VARG_DISK && !strcmp(opt, "ro") && !v) {
			a->blk.ro = true;
		} else if (a->kind == VARG_DISK && !strcmp(opt, "id") && v) {
			if (!*v || strlen(v) > 20)
				r = bad(a, err, errlen, value, "id must be 1 to 20 bytes");
			a->blk.id = v;
		} else if (a->kind == VARG_NET && !strcmp(opt, "tap") && v) {
			if (!*v || strlen(v) > IFNAME_MAX || strpbrk(v, "/ :"))
				r = bad(a, err, errlen, value,
					"interface name must be 1 to 15 bytes, without '/', ':' or "
					"spaces");
			a->net.tap = v;
		} else if (a->kind == VARG_NET && !strcmp(opt, "mac") && v) {
			if (parse_mac(v, a->net.mac))
				r = bad(a, err, errlen, value, "bad MAC address");
			else if (a->net.mac[0] & 1)
				r = bad(a, err, errlen, value, "MAC address is multicast");
		} else if (a->kind == VARG_CONSOLE && !strcmp(opt, "sock") && v && *v) {
			a->con.sock_path = v;
		} else if (a->kind == VARG_VSOCK && !strcmp(opt, "cid") && v) {
			uint64_t cid = 0;
			/* 0-2 are reserved (hypervisor, local, host), -1U means "any". */
			if (opt_parse_uint(v, 3, 0xfffffffeu, &cid))
				r = bad(a, err, errlen, value,
					"cid must be a number from 3 to 4294967294");
			a->vsock.cid = cid;
		} else {
			char why[96];
			snprintf(why, sizeof(why), "unknown option '%s'", opt);
			r = bad(a, err, errlen, value, why);
		}
	}
	if (!r && a->kind == VARG_NET && !a->net.tap)
		r = bad(a, err, errlen, value, "tap=NAME is required");
	if (r) {
		free(a->value);
		a->value = NULL;
		return r;
	}
	va->n++;
	return 0;
}

int virtio_args_open(struct virtio_args *va, char *err, size_t errlen)
{
	for (int i = 0; i < va->n; i++) {
		struct virtio_arg *a = &va->a[i];
		switch (a->kind) {
		case VARG_RNG:
			va->dev[i] = virtio_rng_create(err, errlen);
			break;
		case VARG_DISK:
			va->dev[i] = virtio_blk_create(&a->blk, err, errlen);
			break;
		case VARG_NET:
			va->dev[i] = virtio_net_create(&a->net, err, errlen);
			break;
		case VARG_CONSOLE:
			va->dev[i] = virtio_console_create(&a->con, err, errlen);
			break;
		case VARG_VSOCK:
			va->dev[i] = virtio_vsock_create(&a->vsock, err, errlen);
			break;
		}
		if (!va->dev[i])
			return -1;
	}
	return 0;
}

int virtio_args_attach(struct virtio_args *va, struct vm *vm, char *err, size_t errlen)
{
	for (int i = 0; i < va->n; i++) {
		struct virtio_dev *d = va->dev[i];
		int r = virtio_attach(vm, d, err, errlen);
		if (d->attached) /* the VM owns it now, even if starting it failed */
			va->dev[i] = NULL;
		if (r)
			return -1;
	}
	return 0;
}

void virtio_args_free(struct virtio_args *va)
{
	for (int i = 0; i < va->n; i++) {
		if (va->dev[i])
			virtio_dev_free(va->dev[i]);
		va->dev[i] = NULL;
		free(va->a[i].value);
		va->a[i].value = NULL;
	}
	va->n = 0;
}
