/* The VM configuration (config.h): its defaults and checks, its command-line
 * spelling (one option per device, PRIMARY[,key=value...]) and its JSON
 * form (docs/config.md). Every mistake is one line that names the field or
 * option, the value and what is accepted. */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/util.h"
#include "security/security.h"
#include "vmm/config.h"
#include "vmm/vmm.h"

#define IFNAME_MAX    15 /* IFNAMSIZ - 1 */
#define VIRTIO_MAX    8	 /* VIRTIO_MAX_DEVICES */
#define BLK_ID_MAX    20
#define CMDLINE_LIMIT 3839	    /* unikernel boot info: WISP_BOOTINFO_SIZE - 256 - 1 */
#define BW_MAX	      (1ull << 50)  /* bytes per second, or bytes of burst: 1 PiB */
#define OPS_MAX	      1000000000ull /* operations per second, or of burst */

/* One row per device kind: adding a device is a row here and a create in
 * build.c. */
static const struct vm_dev_type types[VM_DEV_KINDS] = {
	[VM_DEV_RNG_DEVICE] = {"rng-device", "rng-device", "--rng-device[=SEED]", 1, false},
	[VM_DEV_RNG] = {"virtio-rng", "rng", "--rng", 1, true},
	[VM_DEV_BLK] = {"virtio-blk", "disk", "--disk PATH[,ro][,id=ID][,bw=RATE][,ops=N]",
			VIRTIO_MAX, true},
	[VM_DEV_NET] = {"virtio-net", "net",
			"--net tap=NAME[,mac=XX:XX:XX:XX:XX:XX][,bw=RATE][,ops=N]", VIRTIO_MAX,
			true},
	[VM_DEV_CONSOLE] = {"virtio-console", "console", "--console virtio[,sock=PATH]", 1, true},
	[VM_DEV_VSOCK] = {"virtio-vsock", "vsock", "--vsock PATH[,cid=N]", 1, true},
};

const struct vm_dev_type *vm_dev_type(enum vm_dev_kind k)
{
	return (unsigned)k < VM_DEV_KINDS ? &types[k] : NULL;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

void vm_config_init(struct vm_config *c)
{
	memset(c, 0, sizeof(*c));
	c->version = VM_CONFIG_VERSION;
	c->kind = VM_KIND_UNIKERNEL;
	c->cpus = 1;
}

static void dev_free(struct vm_dev_config *d)
{
	free(d->path);
	free(d->id);
	free(d->tap);
	memset(d, 0, sizeof(*d));
}

void vm_config_free(struct vm_config *c)
{
	free(c->name);
	free(c->image);
	for (int i = 0; i < c->nargs; i++)
		free(c->args[i]);
	free(c->args);
	free(c->kernel);
	free(c->initrd);
	free(c->cmdline);
	for (int i = 0; i < c->ndev; i++)
		dev_free(&c->dev[i]);
	vm_config_init(c);
}

int vm_check_mem(uint64_t mem, const char *field, const char *shown, char *err, size_t errlen)
{
	if (mem < WISP_MIN_MEM || mem > WISP_MAX_MEM)
		return fail(err, errlen, "%s '%s': must be between %llu MiB and %llu GiB", field,
			    shown, WISP_MIN_MEM >> 20, WISP_MAX_MEM >> 30);
	if (mem % 4096)
		return fail(err, errlen, "%s '%s': must be a multiple of 4 KiB", field, shown);
	return 0;
}

bool vm_name_valid(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > VM_NAME_MAX || !isalnum((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("_.-", s[i]))
			return false;
	return true;
}

int vm_config_set_mem(struct vm_config *c, const char *s, const char *field, char *err,
		      size_t errlen)
{
	uint64_t v;
	if (opt_parse_size(s, &v))
		return fail(err, errlen, "%s '%s': not a size (use e.g. 64M or 1G)", field, s);
	int r = vm_check_mem(v, field, s, err, errlen);
	if (!r)
		c->mem = v;
	return r;
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

static int count(const struct vm_config *c, enum vm_dev_kind k)
{
	int n = 0;
	for (int i = 0; i < c->ndev; i++)
		n += c->dev[i].kind == k;
	return n;
}

static int count_virtio(const struct vm_config *c)
{
	int n = 0;
	for (int i = 0; i < c->ndev; i++)
		n += types[c->dev[i].kind].virtio;
	return n;
}

/* A new device of kind k at the end of c's list, with its defaults; NULL
 * (err set, naming what) if the VM has no room for it. */
static struct vm_dev_config *dev_new(struct vm_config *c, enum vm_dev_kind k, const char *what,
				     char *err, size_t errlen)
{
	const struct vm_dev_type *t = &types[k];
	if (t->virtio && count_virtio(c) >= VIRTIO_MAX) {
		fail(err, errlen, "%s: too many virtio devices (at most %d)", what, VIRTIO_MAX);
		return NULL;
	}
	if (count(c, k) >= t->max) {
		if (t->max == 1)
			fail(err, errlen, "%s given twice (a VM has at most one)", what);
		else
			fail(err, errlen, "%s: too many %s devices (at most %d)", what, t->type,
			     t->max);
		return NULL;
	}
	struct vm_dev_config *d = &c->dev[c->ndev];
	memset(d, 0, sizeof(*d));
	d->kind = k;
	if (k == VM_DEV_NET) {
		/* Locally administered, different for each NIC: 02:57:49:53:50:n ("WISP"). */
		memcpy(d->mac, (uint8_t[6]){0x02, 0x57, 0x49, 0x53, 0x50, 0}, 6);
		d->mac[5] = (uint8_t)count(c, VM_DEV_NET);
	} else if (k == VM_DEV_VSOCK) {
		d->cid = 3;
	}
	return d;
}

/* Is s valid UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF)? The JSON form can hold nothing else: a string it cannot hold
 * would vanish from a snapshot's or a daemon VM's configuration. */
static bool utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		unsigned c = *p++, n = c < 0x80		       ? 0
				       : c >= 0xc2 && c < 0xe0 ? 1
				       : c >= 0xe0 && c < 0xf0 ? 2
				       : c >= 0xf0 && c < 0xf5 ? 3
							       : 4;
		if (n == 4)
			return false;
		uint32_t cp = c & (0x3fu >> n);
		for (unsigned i = 0; i < n; i++, p++) {
			if ((*p & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (*p & 0x3fu);
		}
		if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp < 0xe000))) ||
		    (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return false;
	}
	return true;
}

/* A byte count or rate: a number with an optional K, M or G suffix (powers
 * of 1024); a bare number is bytes. */
static int parse_bytes(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	size_t n = strlen(s);
	unsigned shift = 0;
	char buf[32];
	if (n && strchr("KMG", s[n - 1])) {
		shift = s[n - 1] == 'K' ? 10 : s[n - 1] == 'M' ? 20 : 30;
		n--;
	}
	if (!n || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = 0;
	uint64_t v;
	if (opt_parse_uint(buf, 0, max >> shift, &v) || v << shift < min)
		return -EINVAL;
	*out = v << shift;
	return 0;
}

/* The rate-limit options of blk and net (docs/config.md); NULL if key is
 * not one of them, else "" (set) or why not. */
static const char *limit_set(struct ratelimit_conf *l, const char *key, const char *v)
{
	uint64_t *dst = !strcmp(key, "bw")	    ? &l->bw
			: !strcmp(key, "bw_burst")  ? &l->bw_burst
			: !strcmp(key, "ops")	    ? &l->ops
			: !strcmp(key, "ops_burst") ? &l->ops_burst
						    : NULL;
	if (!dst || !v)
		return NULL;
	if (dst == &l->bw || dst == &l->bw_burst)
		return parse_bytes(v, 1, BW_MAX, dst)
			       ? "must be bytes (per second for bw), with an optional K, M "
				 "or G suffix, from 1 to 1P"
			       : "";
	return opt_parse_uint(v, 1, OPS_MAX, dst)
		       ? "must be a number of operations from 1 to 1000000000"
		       : "";
}

/* Set one option of d (key = value; value NULL for a bare key); on error
 * returns why (static text), else NULL. Shared by flags and JSON. */
static const char *dev_set(struct vm_dev_config *d, const char *key, const char *v, bool *oom)
{
	char **dst = NULL;
	if (d->kind == VM_DEV_BLK || d->kind == VM_DEV_NET) {
		const char *why = limit_set(&d->limit, key, v);
		if (why)
			return *why ? why : NULL;
	}
	switch (d->kind) {
	case VM_DEV_BLK:
		if (!strcmp(key, "size") && v) { /* recorded by snapshots */
			uint64_t size;
			if (opt_parse_uint(v, 512, UINT64_MAX, &size))
				return "must be a number of bytes, at least 512";
			d->size = size;
			return NULL;
		}
		if (!strcmp(key, "ro") && !v) {
			d->ro = true;
			return NULL;
		}
		if (!strcmp(key, "path") && v) {
			if (!*v)
				return "empty value";
			dst = &d->path;
		} else if (!strcmp(key, "id") && v) {
			if (!*v || strlen(v) > BLK_ID_MAX)
				return "id must be 1 to 20 bytes";
			dst = &d->id;
		}
		break;
	case VM_DEV_NET:
		if (!strcmp(key, "tap") && v) {
			if (!*v || strlen(v) > IFNAME_MAX || strpbrk(v, "/ :"))
				return "interface name must be 1 to 15 bytes, without '/', ':' or "
				       "spaces";
			dst = &d->tap;
		} else if (!strcmp(key, "mac") && v) {
			if (parse_mac(v, d->mac))
				return "bad MAC address";
			if (d->mac[0] & 1)
				return "MAC address is multicast";
			d->mac_given = true;
			return NULL;
		}
		break;
	case VM_DEV_CONSOLE:
		if (!strcmp(key, "sock") && v) {
			if (!*v)
				return "empty socket path";
			dst = &d->path;
		}
		break;
	case VM_DEV_VSOCK:
		if (!strcmp(key, "path") && v) {
			if (!*v)
				return "empty value";
			dst = &d->path;
		} else if (!strcmp(key, "cid") && v) {
			uint64_t cid = 0;
			/* 0-2 are reserved (hypervisor, local, host), -1U means "any". */
			if (opt_parse_uint(v, 3, 0xfffffffeu, &cid))
				return "cid must be a number from 3 to 4294967294";
			d->cid = (uint32_t)cid;
			d->cid_given = true;
			return NULL;
		}
		break;
	case VM_DEV_RNG_DEVICE:
		if (!strcmp(key, "seed") && v) {
			uint64_t seed;
			if (opt_parse_uint(v, 0, UINT32_MAX, &seed))
				return "the seed must be a number from 0 to 4294967295";
			d->seeded = true;
			d->seed = (uint32_t)seed;
			return NULL;
		}
		break;
	default:
		break;
	}
	if (!dst)
		return "unknown option";
	if (!utf8_valid(v))
		return "not valid UTF-8";
	free(*dst);
	if (!(*dst = strdup(v)))
		*oom = true;
	return NULL;
}

/* The required options of d that are missing, or NULL. */
static const char *dev_missing(const struct vm_dev_config *d)
{
	if (d->limit.bw_burst && !d->limit.bw)
		return "bw_burst needs bw (the rate it refills at)";
	if (d->limit.ops_burst && !d->limit.ops)
		return "ops_burst needs ops (the rate it refills at)";
	if (d->kind == VM_DEV_NET && !d->tap)
		return "tap=NAME is required";
	if ((d->kind == VM_DEV_BLK || d->kind == VM_DEV_VSOCK) && !d->path)
		return "a path is required";
	return NULL;
}

int vm_config_add_flag(struct vm_config *c, const char *flag, const char *value, char *err,
		       size_t errlen)
{
	int k = -1;
	for (int i = 0; i < VM_DEV_KINDS; i++)
		if (!strcmp(flag, types[i].flag))
			k = i;
	if (k < 0)
		return fail(err, errlen, "unknown device option --%s", flag);
	const struct vm_dev_type *t = &types[k];
	char what[32];
	snprintf(what, sizeof(what), "--%s", flag);
	struct vm_dev_config *d = dev_new(c, (enum vm_dev_kind)k, what, err, errlen);
	if (!d)
		return -EINVAL;
	const char *form = t->usage;
	int flen = (int)strcspn(form, " [");
	if (k == VM_DEV_RNG_DEVICE) {
		bool oom = false;
		const char *why = value ? dev_set(d, "seed", value, &oom) : NULL;
		if (why)
			return fail(err, errlen, "--rng-device='%s': %s", value, why);
		c->ndev++;
		return 0;
	}
	if (k == VM_DEV_RNG) {
		c->ndev++;
		return 0;
	}
	char *copy = strdup(value ? value : "");
	if (!copy)
		return fail(err, errlen, "out of memory");
	/* Split on commas in place. --net has only key=value fields; the others
	 * start with a positional one (a path, or the console kind). */
	char *field[16];
	int nf = 0;
	for (char *p = copy; nf < 16; p++) {
		field[nf++] = p;
		p = strchr(p, ',');
		if (!p)
			break;
		*p = 0;
	}
	const char *why = NULL;
	char whybuf[96];
	bool oom = false;
	int i = k == VM_DEV_NET ? 0 : 1;
	if (!*field[0])
		why = "empty value";
	else if (nf == 16)
		why = "too many fields";
	else if (k == VM_DEV_CONSOLE && strcmp(field[0], "virtio"))
		why = "only 'virtio' is known";
	else if (k == VM_DEV_BLK || k == VM_DEV_VSOCK)
		why = dev_set(d, "path", field[0], &oom);
	for (; !why && i < nf; i++) {
		char *opt = field[i], *eq = strchr(opt, '=');
		if (eq)
			*eq = 0;
		/* "path" is positional, not a key=value option */
		why = strcmp(opt, "path") && strcmp(opt, "size")
			      ? dev_set(d, opt, eq ? eq + 1 : NULL, &oom)
			      : "unknown option";
		if (why && !strcmp(why, "unknown option")) {
			snprintf(whybuf, sizeof(whybuf), "unknown option '%s'", opt);
			why = whybuf;
		} else if (why && (!strcmp(opt, "bw") || !strcmp(opt, "bw_burst") ||
				   !strcmp(opt, "ops") || !strcmp(opt, "ops_burst"))) {
			snprintf(whybuf, sizeof(whybuf), "%s: %s", opt, why);
			why = whybuf;
		}
	}
	if (!why)
		why = dev_missing(d);
	if (oom)
		why = "out of memory";
	int r = 0;
	if (why) {
		r = fail(err, errlen, "%.*s '%s': %s (use %s)", flen, form, value ? value : "", why,
			 form);
		dev_free(d);
	} else {
		c->ndev++;
	}
	free(copy);
	return r;
}

int vm_config_finish(struct vm_config *c, char *err, size_t errlen)
{
	if (c->version != VM_CONFIG_VERSION)
		return fail(err, errlen, "version: %u is not known (this Wisp reads version %d)",
			    c->version, VM_CONFIG_VERSION);
	if (!c->kind_given && c->kernel)
		c->kind = VM_KIND_LINUX;
	bool lx = c->kind == VM_KIND_LINUX;
	if (c->name && (!vm_name_valid(c->name) || util_is_vm_id(c->name)))
		return fail(err, errlen,
			    "name '%s': use 1 to %d letters, digits, '_', '.' or '-', starting "
			    "with a letter or digit, and not 12 hex digits (that is an id)",
			    c->name, VM_NAME_MAX);
	const char *bad = c->image && !utf8_valid(c->image)	  ? "image"
			  : c->kernel && !utf8_valid(c->kernel)	  ? "kernel"
			  : c->initrd && !utf8_valid(c->initrd)	  ? "initrd"
			  : c->cmdline && !utf8_valid(c->cmdline) ? "cmdline"
								  : NULL;
	for (int i = 0; !bad && i < c->nargs; i++)
		if (!utf8_valid(c->args[i]))
			bad = "args";
	if (bad)
		return fail(err, errlen, "%s: not valid UTF-8", bad);
	/* As the JSON form says (a flag's value may be empty). */
	bad = c->image && !*c->image	 ? "image"
	      : c->kernel && !*c->kernel ? "kernel"
	      : c->initrd && !*c->initrd ? "initrd"
					 : NULL;
	if (bad)
		return fail(err, errlen, "%s: must not be empty", bad);
	if (!c->mem)
		c->mem = lx ? LINUX_DEFAULT_MEM : WISP_DEFAULT_MEM;
	char shown[32];
	snprintf(shown, sizeof(shown), "%llu", (unsigned long long)c->mem);
	int r = vm_check_mem(c->mem, "mem", shown, err, errlen);
	if (r)
		return r;
	if (c->cpus < 1 || c->cpus > WISP_MAX_VCPUS)
		return fail(err, errlen, "cpus: must be a number from 1 to %d", WISP_MAX_VCPUS);
	if (c->limits.memory && c->limits.memory < c->mem + (16ull << 20))
		return fail(err, errlen,
			    "limits.memory: %llu MiB cannot hold the guest's %llu MiB and its VMM "
			    "(give at least mem + 16M)",
			    (unsigned long long)(c->limits.memory >> 20),
			    (unsigned long long)(c->mem >> 20));
	if (lx) {
		if (!c->kernel)
			return fail(err, errlen, "kernel: required for a Linux VM");
		if (c->image)
			return fail(err, errlen,
				    "image: a Linux VM boots 'kernel'; 'image' is for unikernels");
		if (c->nargs)
			return fail(err, errlen,
				    "args: a Linux VM takes 'cmdline'; 'args' is for unikernels");
		return 0;
	}
	if (c->kernel || c->initrd || c->cmdline)
		return fail(err, errlen, "%s: only for a Linux VM (kind \"linux\")",
			    c->kernel	? "kernel"
			    : c->initrd ? "initrd"
					: "cmdline");
	if (!c->image)
		return fail(err, errlen, "image: required for a unikernel");
	if (c->cpus != 1)
		return fail(err, errlen, "cpus: unikernels run on exactly 1 vCPU (cpus %d given)",
			    c->cpus);
	char *line = opt_join_args(c->nargs, c->args);
	size_t n = line ? strlen(line) : 0;
	free(line);
	if (!line)
		return fail(err, errlen, "out of memory");
	if (n > CMDLINE_LIMIT)
		return fail(err, errlen, "args: command line too long (%zu bytes, at most %d)", n,
			    CMDLINE_LIMIT);
	return 0;
}

/* --- JSON -------------------------------------------------------------------- */

static bool allowed(const char *key, const char *const *list)
{
	for (; list && *list; list++)
		if (!strcmp(key, *list))
			return true;
	return false;
}

/* A string member into *dst (strdup); -EINVAL with err naming field. */
static int jstring(json_t *v, const char *field, char **dst, char *err, size_t errlen)
{
	if (!json_is_string(v))
		return fail(err, errlen, "%s: must be a string", field);
	if (!*json_string_value(v))
		return fail(err, errlen, "%s: must not be empty", field);
	free(*dst);
	*dst = strdup(json_string_value(v));
	return *dst ? 0 : fail(err, errlen, "out of memory");
}

static int parse_device(struct vm_config *c, json_t *o, size_t idx, char *err, size_t errlen)
{
	char field[64];
	snprintf(field, sizeof(field), "devices[%zu]", idx);
	if (!json_is_object(o))
		return fail(err, errlen, "%s: must be an object", field);
	json_t *type = json_object_get(o, "type");
	if (!json_is_string(type))
		return fail(err, errlen,
			    "%s.type: required, a string (virtio-rng, virtio-blk, "
			    "virtio-net, virtio-console, virtio-vsock or rng-device)",
			    field);
	int k = -1;
	for (int i = 0; i < VM_DEV_KINDS; i++)
		if (!strcmp(json_string_value(type), types[i].type))
			k = i;
	if (k < 0)
		return fail(err, errlen,
			    "%s.type: '%s' is not known (virtio-rng, virtio-blk, virtio-net, "
			    "virtio-console, virtio-vsock or rng-device)",
			    field, json_string_value(type));
	struct vm_dev_config *d = dev_new(c, (enum vm_dev_kind)k, field, err, errlen);
	if (!d)
		return -EINVAL;
	/* JSON names of the options, and the flag-syntax key each maps to. */
	static const struct {
		const char *json, *key;
		int kind;
		char t; /* s: string, b: boolean, n: number, z: number or size string */
	} keys[] = {
		{"path", "path", VM_DEV_BLK, 's'},
		{"read_only", "ro", VM_DEV_BLK, 'b'},
		{"id", "id", VM_DEV_BLK, 's'},
		{"size", "size", VM_DEV_BLK, 'n'},
		{"tap", "tap", VM_DEV_NET, 's'},
		{"mac", "mac", VM_DEV_NET, 's'},
		{"socket", "sock", VM_DEV_CONSOLE, 's'},
		{"socket", "path", VM_DEV_VSOCK, 's'},
		{"cid", "cid", VM_DEV_VSOCK, 'n'},
		{"seed", "seed", VM_DEV_RNG_DEVICE, 'n'},
		{"bandwidth", "bw", VM_DEV_BLK, 'z'},
		{"bandwidth_burst", "bw_burst", VM_DEV_BLK, 'z'},
		{"ops", "ops", VM_DEV_BLK, 'n'},
		{"ops_burst", "ops_burst", VM_DEV_BLK, 'n'},
		{"bandwidth", "bw", VM_DEV_NET, 'z'},
		{"bandwidth_burst", "bw_burst", VM_DEV_NET, 'z'},
		{"ops", "ops", VM_DEV_NET, 'n'},
		{"ops_burst", "ops_burst", VM_DEV_NET, 'n'},
	};
	const char *key;
	json_t *v;
	int r = 0;
	json_object_foreach(o, key, v)
	{
		if (!strcmp(key, "type"))
			continue;
		int m = -1;
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (keys[i].kind == k && !strcmp(keys[i].json, key))
				m = (int)i;
		if (m < 0) {
			r = fail(err, errlen, "%s.%s: unknown field for a %s device", field, key,
				 types[k].type);
			break;
		}
		char num[24];
		const char *sv = NULL;
		if (keys[m].t == 'z' && json_is_string(v)) {
			sv = json_string_value(v);
		} else if (keys[m].t == 's') {
			if (!json_is_string(v)) {
				r = fail(err, errlen, "%s.%s: must be a string", field, key);
				break;
			}
			sv = json_string_value(v);
		} else if (keys[m].t == 'n' || keys[m].t == 'z') {
			if (!json_is_integer(v) || json_integer_value(v) < 0) {
				r = fail(err, errlen,
					 keys[m].t == 'n' ? "%s.%s: must be a non-negative integer"
							  : "%s.%s: must be a number of bytes or a "
							    "size string",
					 field, key);
				break;
			}
			snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
			sv = num;
		} else {
			if (!json_is_boolean(v)) {
				r = fail(err, errlen, "%s.%s: must be true or false", field, key);
				break;
			}
			if (json_is_false(v))
				continue;
		}
		bool oom = false;
		const char *why = dev_set(d, keys[m].key, sv, &oom);
		if (oom)
			why = "out of memory";
		if (why) {
			r = fail(err, errlen, "%s.%s: %s", field, key, why);
			break;
		}
	}
	const char *missing = r ? NULL : dev_missing(d);
	if (missing && (d->limit.bw_burst && !d->limit.bw))
		r = fail(err, errlen,
			 "%s.bandwidth_burst: needs bandwidth (the rate it refills at)", field);
	else if (missing && (d->limit.ops_burst && !d->limit.ops))
		r = fail(err, errlen, "%s.ops_burst: needs ops (the rate it refills at)", field);
	else if (missing)
		r = fail(err, errlen, "%s.%s: required for a %s device", field,
			 d->kind == VM_DEV_NET	   ? "tap"
			 : d->kind == VM_DEV_VSOCK ? "socket"
						   : "path",
			 types[k].type);
	if (r) {
		dev_free(d);
		return r;
	}
	c->ndev++;
	return 0;
}

/* "limits": {"memory": SIZE, "cpus": N, "pids": N}, each optional. */
static int parse_limits(struct vm_config *c, json_t *o, char *err, size_t errlen)
{
	if (!json_is_object(o))
		return fail(err, errlen, "limits: must be an object (memory, cpus, pids)");
	const char *key;
	json_t *v;
	json_object_foreach(o, key, v)
	{
		if (!strcmp(key, "memory")) {
			uint64_t m = 0;
			if (json_is_string(v) ? opt_parse_size(json_string_value(v), &m)
					      : !json_is_integer(v) || json_integer_value(v) <= 0)
				return fail(err, errlen,
					    "limits.memory: must be a size string (e.g. \"256M\") "
					    "or bytes");
			c->limits.memory = json_is_integer(v) ? (uint64_t)json_integer_value(v) : m;
			if (c->limits.memory > (1ull << 50))
				return fail(err, errlen, "limits.memory: at most 1P");
		} else if (!strcmp(key, "cpus")) {
			double n = json_number_value(v);
			if (!json_is_number(v) || !(n >= 0.01 && n <= 1024))
				return fail(
					err, errlen,
					"limits.cpus: must be a number of CPUs from 0.01 to 1024");
			c->limits.cpu_milli = (uint64_t)(n * 1000 + 0.5);
		} else if (!strcmp(key, "pids")) {
			if (!json_is_integer(v) || json_integer_value(v) < 16 ||
			    json_integer_value(v) > 4194304)
				return fail(err, errlen,
					    "limits.pids: must be a number from 16 to 4194304");
			c->limits.pids = (uint32_t)json_integer_value(v);
		} else {
			return fail(err, errlen, "limits.%s: unknown field (memory, cpus, pids)",
				    key);
		}
	}
	return 0;
}

int vm_config_from_jobj(json_t *o, const char *const *extra, struct vm_config *c, char *err,
			size_t errlen)
{
	vm_config_init(c);
	if (!json_is_object(o))
		return fail(err, errlen, "configuration: must be a JSON object");
	const char *key;
	json_t *v;
	int r = 0;
	json_object_foreach(o, key, v)
	{
		if (allowed(key, extra))
			continue;
		if (!strcmp(key, "version")) {
			if (!json_is_integer(v) || json_integer_value(v) != VM_CONFIG_VERSION)
				r = fail(err, errlen,
					 "version: must be %d (the version this Wisp reads)",
					 VM_CONFIG_VERSION);
		} else if (!strcmp(key, "kind")) {
			const char *s = json_string_value(v);
			if (s && !strcmp(s, "unikernel"))
				c->kind = VM_KIND_UNIKERNEL;
			else if (s && !strcmp(s, "linux"))
				c->kind = VM_KIND_LINUX;
			else
				r = fail(err, errlen, "kind: must be \"unikernel\" or \"linux\"");
			c->kind_given = true;
		} else if (!strcmp(key, "name")) {
			r = jstring(v, key, &c->name, err, errlen);
		} else if (!strcmp(key, "mem")) {
			if (json_is_string(v)) {
				r = vm_config_set_mem(c, json_string_value(v), "mem", err, errlen);
			} else if (json_is_integer(v) && json_integer_value(v) > 0) {
				char shown[32];
				snprintf(shown, sizeof(shown), "%lld",
					 (long long)json_integer_value(v));
				r = vm_check_mem((uint64_t)json_integer_value(v), "mem", shown, err,
						 errlen);
				c->mem = (uint64_t)json_integer_value(v);
			} else {
				r = fail(err, errlen,
					 "mem: must be a size string (e.g. \"64M\") or bytes");
			}
		} else if (!strcmp(key, "cpus")) {
			if (!json_is_integer(v) || json_integer_value(v) < 1 ||
			    json_integer_value(v) > WISP_MAX_VCPUS)
				r = fail(err, errlen, "cpus: must be a number from 1 to %d",
					 WISP_MAX_VCPUS);
			else
				c->cpus = (int)json_integer_value(v);
		} else if (!strcmp(key, "image")) {
			r = jstring(v, key, &c->image, err, errlen);
		} else if (!strcmp(key, "kernel")) {
			r = jstring(v, key, &c->kernel, err, errlen);
		} else if (!strcmp(key, "initrd")) {
			r = jstring(v, key, &c->initrd, err, errlen);
		} else if (!strcmp(key, "cmdline")) {
			if (!json_is_string(v))
				r = fail(err, errlen, "cmdline: must be a string");
			else if (!(c->cmdline = strdup(json_string_value(v))))
				r = fail(err, errlen, "out of memory");
		} else if (!strcmp(key, "args")) {
			size_t n = json_array_size(v);
			if (!json_is_array(v) || n > VM_CONFIG_MAX_ARGS) {
				r = fail(err, errlen,
					 "args: must be an array of at most %d strings",
					 VM_CONFIG_MAX_ARGS);
				break;
			}
			c->args = calloc(n + 1, sizeof(char *));
			if (!c->args) {
				r = fail(err, errlen, "out of memory");
				break;
			}
			for (size_t i = 0; !r && i < n; i++) {
				json_t *a = json_array_get(v, i);
				if (!json_is_string(a))
					r = fail(err, errlen, "args[%zu]: must be a string", i);
				else if (!(c->args[c->nargs++] = strdup(json_string_value(a))))
					r = fail(err, errlen, "out of memory");
			}
		} else if (!strcmp(key, "limits")) {
			r = parse_limits(c, v, err, errlen);
		} else if (!strcmp(key, "devices")) {
			if (!json_is_array(v)) {
				r = fail(err, errlen, "devices: must be an array of objects");
				break;
			}
			for (size_t i = 0; !r && i < json_array_size(v); i++)
				r = parse_device(c, json_array_get(v, i), i, err, errlen);
		} else {
			r = fail(err, errlen, "%s: unknown field", key);
		}
		if (r)
			break;
	}
	if (!r)
		r = vm_config_finish(c, err, errlen);
	if (r)
		vm_config_free(c);
	return r;
}

int vm_config_from_json(const char *text, size_t len, const char *const *extra, struct vm_config *c,
			char *err, size_t errlen)
{
	json_error_t je;
	vm_config_init(c);
	json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!o)
		return fail(err, errlen, "line %d: not JSON: %s", je.line, je.text);
	int r = vm_config_from_jobj(o, extra, c, err, errlen);
	json_decref(o);
	return r;
}

static void limit_to_jobj(json_t *o, const struct ratelimit_conf *l)
{
	if (l->bw)
		json_object_set_new(o, "bandwidth", json_integer((json_int_t)l->bw));
	if (l->bw_burst)
		json_object_set_new(o, "bandwidth_burst", json_integer((json_int_t)l->bw_burst));
	if (l->ops)
		json_object_set_new(o, "ops", json_integer((json_int_t)l->ops));
	if (l->ops_burst)
		json_object_set_new(o, "ops_burst", json_integer((json_int_t)l->ops_burst));
}

static json_t *dev_to_jobj(const struct vm_dev_config *d)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	json_object_set_new(o, "type", json_string(types[d->kind].type));
	char mac[18];
	switch (d->kind) {
	case VM_DEV_BLK:
		json_object_set_new(o, "path", json_string(d->path));
		json_object_set_new(o, "read_only", json_boolean(d->ro));
		if (d->id)
			json_object_set_new(o, "id", json_string(d->id));
		if (d->size)
			json_object_set_new(o, "size", json_integer((json_int_t)d->size));
		limit_to_jobj(o, &d->limit);
		break;
	case VM_DEV_NET:
		snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", d->mac[0], d->mac[1],
			 d->mac[2], d->mac[3], d->mac[4], d->mac[5]);
		json_object_set_new(o, "tap", json_string(d->tap));
		json_object_set_new(o, "mac", json_string(mac));
		limit_to_jobj(o, &d->limit);
		break;
	case VM_DEV_CONSOLE:
		if (d->path)
			json_object_set_new(o, "socket", json_string(d->path));
		break;
	case VM_DEV_VSOCK:
		json_object_set_new(o, "socket", json_string(d->path));
		json_object_set_new(o, "cid", json_integer(d->cid));
		break;
	case VM_DEV_RNG_DEVICE:
		if (d->seeded)
			json_object_set_new(o, "seed", json_integer(d->seed));
		break;
	default:
		break;
	}
	return o;
}

json_t *vm_config_to_jobj(const struct vm_config *c)
{
	json_t *o = json_object(), *devs = json_array();
	if (!o || !devs) {
		json_decref(o);
		json_decref(devs);
		return NULL;
	}
	bool lx = c->kind == VM_KIND_LINUX;
	json_object_set_new(o, "version", json_integer(c->version));
	json_object_set_new(o, "kind", json_string(lx ? "linux" : "unikernel"));
	if (c->name)
		json_object_set_new(o, "name", json_string(c->name));
	json_object_set_new(o, "mem", json_integer((json_int_t)c->mem));
	json_object_set_new(o, "cpus", json_integer(c->cpus));
	if (lx) {
		json_object_set_new(o, "kernel", json_string(c->kernel));
		if (c->initrd)
			json_object_set_new(o, "initrd", json_string(c->initrd));
		json_object_set_new(o, "cmdline",
				    json_string(c->cmdline ? c->cmdline : LINUX_DEFAULT_CMDLINE));
	} else {
		json_t *args = json_array();
		json_object_set_new(o, "image", json_string(c->image));
		for (int i = 0; args && i < c->nargs; i++)
			json_array_append_new(args, json_string(c->args[i]));
		json_object_set_new(o, "args", args);
	}
	for (int i = 0; i < c->ndev; i++)
		json_array_append_new(devs, dev_to_jobj(&c->dev[i]));
	json_object_set_new(o, "devices", devs);
	if (c->limits.memory || c->limits.cpu_milli || c->limits.pids) {
		json_t *l = json_object();
		if (l && c->limits.memory)
			json_object_set_new(l, "memory",
					    json_integer((json_int_t)c->limits.memory));
		if (l && c->limits.cpu_milli)
			json_object_set_new(l, "cpus",
					    json_real((double)c->limits.cpu_milli / 1000));
		if (l && c->limits.pids)
			json_object_set_new(l, "pids", json_integer(c->limits.pids));
		json_object_set_new(o, "limits", l);
	}
	return o;
}

char *vm_config_to_json(const struct vm_config *c)
{
	json_t *o = vm_config_to_jobj(c);
	char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(o);
	return s;
}

/* *p made absolute against the current directory. */
static int abs_path(char **p)
{
	if (!*p || (*p)[0] == '/')
		return 0;
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)))
		return -errno;
	char *a;
	if (asprintf(&a, "%s/%s", cwd, *p) < 0)
		return -ENOMEM;
	free(*p);
	*p = a;
	return 0;
}

int vm_config_abs_paths(struct vm_config *c)
{
	int r = abs_path(&c->image);
	if (!r)
		r = abs_path(&c->kernel);
	if (!r)
		r = abs_path(&c->initrd);
	for (int i = 0; !r && i < c->ndev; i++)
		r = abs_path(&c->dev[i].path);
	return r;
}

static int dup_str(char **dst, const char *src)
{
	*dst = NULL;
	if (src && !(*dst = strdup(src)))
		return -ENOMEM;
	return 0;
}

int vm_config_copy(struct vm_config *dst, const struct vm_config *src)
{
	*dst = *src;
	dst->args = NULL;
	dst->nargs = 0;
	int r = dup_str(&dst->name, src->name) | dup_str(&dst->image, src->image) |
		dup_str(&dst->kernel, src->kernel) | dup_str(&dst->initrd, src->initrd) |
		dup_str(&dst->cmdline, src->cmdline);
	for (int i = 0; i < src->ndev; i++) {
		struct vm_dev_config *d = &dst->dev[i];
		r |= dup_str(&d->path, src->dev[i].path) | dup_str(&d->id, src->dev[i].id) |
		     dup_str(&d->tap, src->dev[i].tap);
	}
	if (src->nargs) {
		dst->args = calloc((size_t)src->nargs + 1, sizeof(char *));
		if (!dst->args)
			r = -ENOMEM;
		for (int i = 0; dst->args && i < src->nargs; i++, dst->nargs++)
			r |= dup_str(&dst->args[i], src->args[i]);
	}
	if (r) {
		vm_config_free(dst);
		return -ENOMEM;
	}
	return 0;
}

/* Does d use something on the host that a restore must be given again? */
static bool host_side(const struct vm_dev_config *d)
{
	return d->kind == VM_DEV_BLK || d->kind == VM_DEV_NET || d->kind == VM_DEV_VSOCK ||
	       (d->kind == VM_DEV_CONSOLE && d->path);
}

/* Index of the n-th device of c with a host side, or -1. */
static int nth_host(const struct vm_config *c, int n)
{
	for (int i = 0; i < c->ndev; i++)
		if (host_side(&c->dev[i]) && n-- == 0)
			return i;
	return -1;
}

/* One more line into err (at off). */
static void add_line(char *err, size_t errlen, size_t *off, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void add_line(char *err, size_t errlen, size_t *off, const char *fmt, ...)
{
	if (*off >= errlen)
		return;
	if (*off)
		*off += (size_t)snprintf(err + *off, errlen - *off, "\n");
	if (*off >= errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	*off += (size_t)vsnprintf(err + *off, errlen - *off, fmt, ap);
	va_end(ap);
}

int vm_config_take_host_sides(struct vm_config *rec, const struct vm_config *given, char *err,
			      size_t errlen)
{
	int bad = 0;
	size_t off = 0;
	err[0] = 0;
	for (int n = 0;; n++) {
		int i = nth_host(rec, n), j = nth_host(given, n);
		if (i < 0 && j < 0)
			break;
		const struct vm_dev_config *r = i >= 0 ? &rec->dev[i] : NULL;
		const struct vm_dev_config *g = j >= 0 ? &given->dev[j] : NULL;
		bad++;
		if (!g)
			add_line(err, errlen, &off,
				 "device %d: the snapshot has a %s: give its host side again (%s)",
				 i, types[r->kind].type, types[r->kind].usage);
		else if (!r)
			add_line(err, errlen, &off,
				 "%s (host device %d given): the snapshot has no more devices with "
				 "a host side",
				 types[g->kind].type, n);
		else if (r->kind != g->kind)
			add_line(err, errlen, &off,
				 "device %d: the snapshot has a %s there, not the %s given", i,
				 types[r->kind].type, types[g->kind].type);
		else if (r->kind == VM_DEV_BLK && r->size && g->size != r->size)
			add_line(err, errlen, &off,
				 "device %d: disk '%s' has %llu bytes; the snapshot's had %llu", i,
				 g->path, (unsigned long long)g->size, (unsigned long long)r->size);
		else
			bad--;
	}
	if (bad)
		return bad;
	for (int n = 0;; n++) {
		int i = nth_host(rec, n), j = nth_host(given, n);
		if (i < 0)
			break;
		struct vm_dev_config *r = &rec->dev[i];
		const struct vm_dev_config *g = &given->dev[j];
		char **dst = r->kind == VM_DEV_NET ? &r->tap : &r->path;
		const char *src = r->kind == VM_DEV_NET ? g->tap : g->path;
		char *copy = strdup(src);
		if (!copy) {
			snprintf(err, errlen, "out of memory");
			return 1;
		}
		free(*dst);
		*dst = copy;
	}
	return 0;
}

/* Random bytes for a clone's identity (a clock-derived value if the
 * kernel has none yet: it must differ, not be secret). */
static void random_bytes(void *p, size_t n)
{
	if (getrandom(p, n, GRND_NONBLOCK) == (ssize_t)n)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t x = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	for (size_t i = 0; i < n; i++, x = x * 6364136223846793005ull + 1442695040888963407ull)
		((uint8_t *)p)[i] = (uint8_t)(x >> 56);
}

void vm_config_take_identity(struct vm_config *rec, const struct vm_config *given, bool clone)
{
	for (int n = 0;; n++) {
		int i = nth_host(rec, n), j = nth_host(given, n);
		if (i < 0 || j < 0)
			break;
		struct vm_dev_config *r = &rec->dev[i];
		const struct vm_dev_config *g = &given->dev[j];
		if (r->kind == VM_DEV_NET && g->mac_given) {
			memcpy(r->mac, g->mac, 6);
		} else if (r->kind == VM_DEV_NET && clone) {
			/* Locally administered, unicast, Wisp's prefix 02:57:49 and 3
			 * random bytes, never the recorded one. */
			uint8_t old[6];
			memcpy(old, r->mac, 6);
			do
				random_bytes(r->mac + 3, 3);
			while (!memcmp(old, r->mac, 6));
			memcpy(r->mac, (uint8_t[3]){0x02, 0x57, 0x49}, 3);
		} else if (r->kind == VM_DEV_VSOCK && g->cid_given) {
			r->cid = g->cid;
		} else if (r->kind == VM_DEV_VSOCK && clone) {
			uint32_t old = r->cid, cid;
			do {
				random_bytes(&cid, sizeof(cid));
				cid = 3 + cid % (0xfffffffeu - 3); /* 3 .. 2^32-2 */
			} while (cid == old);
			r->cid = cid;
		}
	}
}

int vm_config_devices_from_jobj(json_t *a, struct vm_config *c, char *err, size_t errlen)
{
	vm_config_init(c);
	if (!json_is_array(a))
		return fail(err, errlen, "devices: must be an array of objects");
	for (size_t i = 0; i < json_array_size(a); i++) {
		int r = parse_device(c, json_array_get(a, i), i, err, errlen);
		if (r)
			return r;
	}
	return 0;
}

json_t *vm_config_host_sides_to_jobj(const struct vm_config *c, bool all)
{
	json_t *a = json_array();
	for (int i = 0; a && i < c->ndev; i++) {
		const struct vm_dev_config *d = &c->dev[i];
		if (!all && !host_side(d))
			continue;
		json_t *o = dev_to_jobj(d);
		if (!o) {
			json_decref(a);
			return NULL;
		}
		if (d->kind == VM_DEV_NET && !d->mac_given)
			json_object_del(o, "mac");
		if (d->kind == VM_DEV_VSOCK && !d->cid_given)
			json_object_del(o, "cid");
		if (d->kind == VM_DEV_BLK) { /* a restore takes them from the snapshot */
			if (!d->ro)
				json_object_del(o, "read_only");
			json_object_del(o, "size");
		}
		json_array_append_new(a, o);
	}
	return a;
}

int vm_config_record_sizes(struct vm_config *c)
{
	for (int i = 0; i < c->ndev; i++) {
		struct stat st;
		if (c->dev[i].kind != VM_DEV_BLK)
			continue;
		if (stat(c->dev[i].path, &st))
			return -errno;
		c->dev[i].size = (uint64_t)st.st_size;
	}
	return 0;
}

bool vm_config_limits(const struct vm_config *c, struct jail_limits *l)
{
	jail_limits_default(l, c->mem, (unsigned)c->cpus);
	if (c->limits.memory)
		l->mem_max = c->limits.memory;
	if (c->limits.cpu_milli)
		l->cpu_quota_us = c->limits.cpu_milli * 100; /* of a 100 ms period */
	if (c->limits.pids)
		l->pids_max = c->limits.pids;
	return c->limits.memory || c->limits.cpu_milli || c->limits.pids;
}
