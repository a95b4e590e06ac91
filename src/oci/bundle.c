/* A bundle's config.json: the fields Wisp honours, each checked; the ones a
 * VM cannot honour (seccomp, capabilities, rlimits, ...) are accepted and
 * ignored (docs/oci.md). Bind mounts are kept for a Linux VM's disks. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "oci/oci.h"
#include "util/util.h"

/* Check a container ID. */
int oci_id_check(const char *id, char *err, size_t errlen)
{
	size_t n = strlen(id);
	if (n == 0 || n > OCI_MAX_ID || !strcmp(id, ".") || !strcmp(id, "..")) {
		snprintf(
			err, errlen,
			"invalid container ID '%.64s': must be 1 to %d characters, not '.' or '..'",
			id, OCI_MAX_ID);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '.' || c == '+')) {
			snprintf(err, errlen,
				 "invalid container ID '%.64s': only letters, digits, '_', '-', "
				 "'.', '+'",
				 id);
			return -EINVAL;
		}
	}
	return 0;
}

/* Duplicate a JSON array of strings into a NULL-terminated vector. */
static int str_array(json_t *a, const char *what, char ***out, int *count, int max, char *err,
		     size_t errlen)
{
	if (!json_is_array(a)) {
		snprintf(err, errlen, "config.json: %s: must be an array of strings", what);
		return -EINVAL;
	}
	size_t n = json_array_size(a);
	if (n > (size_t)max) {
		snprintf(err, errlen, "config.json: %s: more than %d entries", what, max);
		return -E2BIG;
	}
	char **v = calloc(n + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		json_t *s = json_array_get(a, i);
		if (!json_is_string(s) || strlen(json_string_value(s)) != json_string_length(s)) {
			snprintf(err, errlen, "config.json: %s[%zu]: must be a string without NUL",
				 what, i);
			for (size_t j = 0; j < i; j++)
				free(v[j]);
			free(v);
			return -EINVAL;
		}
		v[i] = strdup(json_string_value(s));
	}
	*out = v;
	if (count)
		*count = (int)n;
	return 0;
}

/* Free a NULL-terminated vector. */
static void str_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

/* An optional string member; -EINVAL if present and not a string. */
static int opt_str(json_t *o, const char *key, const char *what, const char **out, char *err,
		   size_t errlen)
{
	json_t *v = json_object_get(o, key);
	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v)) {
		snprintf(err, errlen, "config.json: %s: must be a string", what);
		return -EINVAL;
	}
	*out = json_string_value(v);
	return 0;
}

/* An optional object member; -EINVAL if present and not an object. */
static int opt_obj(json_t *o, const char *key, const char *what, json_t **out, char *err,
		   size_t errlen)
{
	json_t *v = json_object_get(o, key);
	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_object(v)) {
		snprintf(err, errlen, "config.json: %s: must be an object", what);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

/* Count the CPUs of a cpuset list such as "0-3,6". */
static int cpuset_count(const char *s)
{
	int n = 0;
	while (*s) {
		char *end;
		long a = strtol(s, &end, 10), b;
		if (end == s || a < 0)
			return -1;
		b = a;
		if (*end == '-') {
			s = end + 1;
			b = strtol(s, &end, 10);
			if (end == s || b < a)
				return -1;
		}
		n += (int)(b - a + 1);
		if (n > 4096)
			return -1;
		s = end;
		if (*s == ',')
			s++;
		else if (*s)
			return -1;
	}
	return n;
}

/* linux.resources: memory.limit and cpu (quota/period, else cpus). */
static int parse_resources(json_t *res, struct oci_spec *spec, char *err, size_t errlen)
{
	json_t *mem, *cpu;
	if (opt_obj(res, "memory", "linux.resources.memory", &mem, err, errlen) ||
	    opt_obj(res, "cpu", "linux.resources.cpu", &cpu, err, errlen))
		return -EINVAL;
	if (mem) {
		json_t *l = json_object_get(mem, "limit");
		if (l && !json_is_null(l)) {
			if (!json_is_integer(l)) {
				snprintf(err, errlen,
					 "config.json: linux.resources.memory.limit: must be an "
					 "integer");
				return -EINVAL;
			}
			json_int_t v = json_integer_value(l);
			if (v > 0) /* -1 and 0 mean no limit */
				spec->mem = (uint64_t)v;
		}
	}
	if (cpu) {
		json_t *q = json_object_get(cpu, "quota"), *p = json_object_get(cpu, "period");
		const char *set;
		if (opt_str(cpu, "cpus", "linux.resources.cpu.cpus", &set, err, errlen))
			return -EINVAL;
		if ((q && !json_is_null(q) && !json_is_integer(q)) ||
		    (p && !json_is_null(p) && !json_is_integer(p))) {
			snprintf(err, errlen,
				 "config.json: linux.resources.cpu.quota/period: must be integers");
			return -EINVAL;
		}
		if (json_is_integer(q) && json_integer_value(q) > 0) {
			json_int_t per = json_is_integer(p) && json_integer_value(p) > 0
						 ? json_integer_value(p)
						 : 100000;
			json_int_t n = (json_integer_value(q) + per - 1) / per;
			spec->cpus = n > 64 ? 64 : (int)n;
		} else if (set && *set) {
			int n = cpuset_count(set);
			if (n < 0) {
				snprintf(err, errlen,
					 "config.json: linux.resources.cpu.cpus: '%.64s' is not a "
					 "CPU list",
					 set);
				return -EINVAL;
			}
			spec->cpus = n > 64 ? 64 : n;
		}
	}
	return 0;
}

/* linux.namespaces: the network namespace's path, if one is given. */
static int parse_namespaces(json_t *ns, struct oci_spec *spec, char *err, size_t errlen)
{
	if (!ns || json_is_null(ns))
		return 0;
	if (!json_is_array(ns)) {
		snprintf(err, errlen, "config.json: linux.namespaces: must be an array");
		return -EINVAL;
	}
	size_t i;
	json_t *n;
	json_array_foreach(ns, i, n)
	{
		const char *type, *path;
		if (!json_is_object(n) ||
		    opt_str(n, "type", "linux.namespaces[].type", &type, err, errlen) ||
		    opt_str(n, "path", "linux.namespaces[].path", &path, err, errlen) || !type) {
			snprintf(
				err, errlen,
				"config.json: linux.namespaces[%zu]: must be an object with a type",
				i);
			return -EINVAL;
		}
		if (!strcmp(type, "network") && path && *path) {
			if (path[0] != '/' || strlen(path) >= PATH_MAX) {
				snprintf(err, errlen,
					 "config.json: linux.namespaces[%zu].path: must be an "
					 "absolute path",
					 i);
				return -EINVAL;
			}
			free(spec->netns);
			spec->netns = strdup(path);
		}
	}
	return 0;
}

/* hooks: prestart, createRuntime, poststart, poststop (others accepted). */
static int parse_hooks(json_t *hooks, struct oci_spec *spec, char *err, size_t errlen)
{
	if (!hooks || json_is_null(hooks))
		return 0;
	if (!json_is_object(hooks)) {
		snprintf(err, errlen, "config.json: hooks: must be an object");
		return -EINVAL;
	}
	for (int k = 0; k < OCI_HOOK_KINDS; k++) {
		json_t *list = json_object_get(hooks, oci_hook_name(k)), *h;
		size_t i;
		char what[64];
		if (!list || json_is_null(list))
			continue;
		if (!json_is_array(list) || json_array_size(list) > OCI_MAX_HOOKS) {
			snprintf(err, errlen,
				 "config.json: hooks.%s: must be an array of at most %d hooks",
				 oci_hook_name(k), OCI_MAX_HOOKS);
			return -EINVAL;
		}
		json_array_foreach(list, i, h)
		{
			struct oci_hook *o = &spec->hooks[k][spec->nhooks[k]];
			const char *path;
			json_t *a, *e, *t;
			snprintf(what, sizeof(what), "hooks.%s[%zu]", oci_hook_name(k), i);
			if (!json_is_object(h) || opt_str(h, "path", what, &path, err, errlen) ||
			    !path || path[0] != '/') {
				snprintf(err, errlen,
					 "config.json: %s.path: must be an absolute path", what);
				return -EINVAL;
			}
			o->path = strdup(path);
			spec->nhooks[k]++;
			a = json_object_get(h, "args");
			e = json_object_get(h, "env");
			t = json_object_get(h, "timeout");
			if (a && !json_is_null(a)) {
				if (str_array(a, what, &o->args, NULL, OCI_MAX_ARGS, err, errlen))
					return -EINVAL;
			}
			if (e && !json_is_null(e)) {
				if (str_array(e, what, &o->env, NULL, 4096, err, errlen))
					return -EINVAL;
			}
			if (t && !json_is_null(t)) {
				if (!json_is_integer(t) || json_integer_value(t) <= 0 ||
				    json_integer_value(t) > 3600) {
					snprintf(err, errlen,
						 "config.json: %s.timeout: must be 1 to 3600 "
						 "seconds",
						 what);
					return -EINVAL;
				}
				o->timeout = (int)json_integer_value(t);
			}
			if (!o->args) {
				o->args = calloc(2, sizeof(char *));
				if (!o->args)
					return -ENOMEM;
				o->args[0] = strdup(o->path);
			}
		}
	}
	return 0;
}

/* Mount destinations the VM provides itself (or the engine's own files,
 * which the guest does without): these bind mounts never become disks. */
static bool vm_provided(const char *dest)
{
	static const char *const trees[] = {"/proc", "/sys", "/dev", "/run/secrets", NULL};
	static const char *const files[] = {"/etc/hosts",	"/etc/resolv.conf",
					    "/etc/hostname",	"/run/.containerenv",
					    "/run/podman-init", NULL};
	for (const char *const *t = trees; *t; t++) {
		size_t n = strlen(*t);
		if (!strncmp(dest, *t, n) && (dest[n] == 0 || dest[n] == '/'))
			return true;
	}
	for (const char *const *f = files; *f; f++)
		if (!strcmp(dest, *f))
			return true;
	return false;
}

/* A mount's destination as a clean absolute path: no "." or empty
 * components, never "..", not "/" itself; malloc'd, or NULL with err. */
static char *clean_dest(const char *d, size_t i, char *err, size_t errlen)
{
	size_t n = strlen(d), o = 0;
	char *out;
	if (d[0] != '/' || n > OCI_MAX_MOUNT_DST) {
		snprintf(err, errlen,
			 "config.json: mounts[%zu].destination: '%.64s' must be an absolute path "
			 "of at most %d bytes",
			 i, d, OCI_MAX_MOUNT_DST);
		return NULL;
	}
	out = malloc(n + 2);
	if (!out)
		return NULL;
	for (const char *p = d; *p;) {
		while (*p == '/')
			p++;
		size_t c = strcspn(p, "/");
		if (c == 0 || (c == 1 && p[0] == '.')) {
			p += c;
			continue;
		}
		if (c == 2 && p[0] == '.' && p[1] == '.') {
			snprintf(err, errlen,
				 "config.json: mounts[%zu].destination: '%.64s' has a '..' "
				 "component",
				 i, d);
			free(out);
			return NULL;
		}
		out[o++] = '/';
		memcpy(out + o, p, c);
		o += c;
		p += c;
	}
	out[o] = 0;
	if (o == 0) {
		snprintf(err, errlen, "config.json: mounts[%zu].destination: cannot be '/'", i);
		free(out);
		return NULL;
	}
	return out;
}

/* mounts: every entry's shape is checked; the bind mounts (type "bind", or
 * options with "bind"/"rbind") that the VM does not provide itself are kept
 * for a Linux VM's disks; every other type (proc, tmpfs...) is the guest's. */
static int parse_mounts(json_t *mounts, struct oci_spec *spec, char *err, size_t errlen)
{
	size_t i;
	json_t *m;
	if (!mounts || json_is_null(mounts))
		return 0;
	if (!json_is_array(mounts)) {
		snprintf(err, errlen, "config.json: mounts: must be an array");
		return -EINVAL;
	}
	json_array_foreach(mounts, i, m)
	{
		const char *dest, *type, *source;
		char what[48];
		json_t *opts;
		bool bind = false;
		snprintf(what, sizeof(what), "mounts[%zu]", i);
		if (!json_is_object(m)) {
			snprintf(err, errlen, "config.json: %s: must be an object", what);
			return -EINVAL;
		}
		if (opt_str(m, "destination", "mounts[].destination", &dest, err, errlen) ||
		    opt_str(m, "type", "mounts[].type", &type, err, errlen) ||
		    opt_str(m, "source", "mounts[].source", &source, err, errlen))
			return -EINVAL;
		if (!dest || !*dest) {
			snprintf(err, errlen, "config.json: %s.destination: missing", what);
			return -EINVAL;
		}
		opts = json_object_get(m, "options");
		if (opts && !json_is_null(opts) && !json_is_array(opts)) {
			snprintf(err, errlen,
				 "config.json: %s.options: must be an array of strings", what);
			return -EINVAL;
		}
		size_t k;
		json_t *o;
		json_array_foreach(opts, k, o)
		{
			if (!json_is_string(o)) {
				snprintf(err, errlen,
					 "config.json: %s.options: must be an array of strings",
					 what);
				return -EINVAL;
			}
			const char *v = json_string_value(o);
			bind |= !strcmp(v, "bind") || !strcmp(v, "rbind");
		}
		bind |= type && !strcmp(type, "bind");
		if (!bind)
			continue;
		char *clean = clean_dest(dest, i, err, errlen);
		if (!clean)
			return -EINVAL;
		if (vm_provided(clean)) {
			/* The engine's DNS servers reach the guest by ip= (net.c). */
			if (!strcmp(clean, "/etc/resolv.conf") && source && *source &&
			    !spec->resolv_conf && !(spec->resolv_conf = strdup(source))) {
				free(clean);
				return -ENOMEM;
			}
			free(clean);
			continue;
		}
		if (!source || !*source) {
			snprintf(err, errlen, "config.json: %s.source: missing for a bind mount",
				 what);
			free(clean);
			return -EINVAL;
		}
		spec->nbinds++;
		if (spec->nmounts == OCI_MAX_MOUNTS) {
			free(clean);
			continue;
		}
		struct oci_mount *mt = &spec->mounts[spec->nmounts++];
		mt->dest = clean;
		if (source[0] == '/')
			mt->source = strdup(source);
		else if (asprintf(&mt->source, "%s/%s", spec->bundle, source) < 0)
			mt->source = NULL;
		if (!mt->source)
			return -ENOMEM;
		if (strlen(mt->source) >= PATH_MAX) {
			snprintf(err, errlen, "config.json: %s.source: too long", what);
			return -ENAMETOOLONG;
		}
		json_array_foreach(opts, k, o)
		{
			const char *v = json_string_value(o);
			if (!strcmp(v, "ro") || !strcmp(v, "rw"))
				mt->ro = !strcmp(v, "ro");
			else if (!strcmp(v, "nosuid") || !strcmp(v, "suid"))
				mt->nosuid = !strcmp(v, "nosuid");
			else if (!strcmp(v, "nodev") || !strcmp(v, "dev"))
				mt->nodev = !strcmp(v, "nodev");
			else if (!strcmp(v, "noexec") || !strcmp(v, "exec"))
				mt->noexec = !strcmp(v, "noexec");
		}
	}
	return 0;
}

/* Parse the JSON text of a config.json (the bundle already absolute). */
static int parse_config(json_t *root, struct oci_spec *spec, char *err, size_t errlen)
{
	json_t *process, *rootobj, *linux_, *user, *res, *ann, *term;
	const char *ver, *path, *cwd;
	int r;

	if (!json_is_object(root)) {
		snprintf(err, errlen, "config.json: must be a JSON object");
		return -EINVAL;
	}
	if (opt_str(root, "ociVersion", "ociVersion", &ver, err, errlen))
		return -EINVAL;
	if (!ver || strncmp(ver, "1.", 2)) {
		snprintf(err, errlen, "config.json: ociVersion: '%.32s' is not a 1.x version",
			 ver ? ver : "(missing)");
		return -EINVAL;
	}
	if (opt_obj(root, "process", "process", &process, err, errlen) ||
	    opt_obj(root, "root", "root", &rootobj, err, errlen) ||
	    opt_obj(root, "linux", "linux", &linux_, err, errlen) ||
	    opt_obj(root, "annotations", "annotations", &ann, err, errlen))
		return -EINVAL;
	if (!process) {
		snprintf(err, errlen,
			 "config.json: process: missing (a VM needs something to run)");
		return -EINVAL;
	}
	if (!json_object_get(process, "args")) {
		snprintf(err, errlen, "config.json: process.args: missing");
		return -EINVAL;
	}
	r = str_array(json_object_get(process, "args"), "process.args", &spec->args, &spec->nargs,
		      OCI_MAX_ARGS, err, errlen);
	if (r)
		return r;
	if (spec->nargs == 0 || !spec->args[0][0]) {
		snprintf(err, errlen, "config.json: process.args: must name a program (args[0])");
		return -EINVAL;
	}
	if (json_object_get(process, "env") && !json_is_null(json_object_get(process, "env"))) {
		r = str_array(json_object_get(process, "env"), "process.env", &spec->env, NULL,
			      4096, err, errlen);
		if (r)
			return r;
	}
	if (opt_str(process, "cwd", "process.cwd", &cwd, err, errlen))
		return -EINVAL;
	if (cwd && cwd[0] != '/') {
		snprintf(err, errlen, "config.json: process.cwd: '%.64s' is not absolute", cwd);
		return -EINVAL;
	}
	spec->cwd = strdup(cwd ? cwd : "/");
	term = json_object_get(process, "terminal");
	if (term && !json_is_boolean(term)) {
		snprintf(err, errlen, "config.json: process.terminal: must be true or false");
		return -EINVAL;
	}
	spec->terminal = json_is_true(term);
	if (opt_obj(process, "user", "process.user", &user, err, errlen))
		return -EINVAL;
	if (user) {
		json_t *u = json_object_get(user, "uid"), *g = json_object_get(user, "gid");
		if ((u && (!json_is_integer(u) || json_integer_value(u) < 0 ||
			   json_integer_value(u) > UINT32_MAX)) ||
		    (g && (!json_is_integer(g) || json_integer_value(g) < 0 ||
			   json_integer_value(g) > UINT32_MAX))) {
			snprintf(err, errlen,
				 "config.json: process.user.uid/gid: must be integers from 0 to "
				 "4294967295");
			return -EINVAL;
		}
		spec->uid = u ? (uint32_t)json_integer_value(u) : 0;
		spec->gid = g ? (uint32_t)json_integer_value(g) : 0;
	}
	if (!rootobj || opt_str(rootobj, "path", "root.path", &path, err, errlen) || !path ||
	    !*path) {
		snprintf(err, errlen, "config.json: root.path: missing");
		return -EINVAL;
	}
	if (path[0] == '/')
		spec->rootfs = strdup(path);
	else if (asprintf(&spec->rootfs, "%s/%s", spec->bundle, path) < 0)
		spec->rootfs = NULL;
	if (!spec->rootfs)
		return -ENOMEM;
	if (strlen(spec->rootfs) >= PATH_MAX) {
		snprintf(err, errlen, "config.json: root.path: too long");
		return -ENAMETOOLONG;
	}
	if (linux_) {
		if (opt_obj(linux_, "resources", "linux.resources", &res, err, errlen))
			return -EINVAL;
		if (res && (r = parse_resources(res, spec, err, errlen)))
			return r;
		if ((r = parse_namespaces(json_object_get(linux_, "namespaces"), spec, err,
					  errlen)))
			return r;
	}
	if ((r = parse_hooks(json_object_get(root, "hooks"), spec, err, errlen)))
		return r;
	if ((r = parse_mounts(json_object_get(root, "mounts"), spec, err, errlen)))
		return r;
	const char *host;
	if (opt_str(root, "hostname", "hostname", &host, err, errlen))
		return -EINVAL;
	if (host && *host) {
		size_t n = strlen(host);
		if (n > 64 || strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
					   "0123456789.-_") != n) {
			snprintf(err, errlen,
				 "config.json: hostname: '%.64s' must be 1 to 64 letters, digits, "
				 "'.', '-' or '_'",
				 host);
			return -EINVAL;
		}
		if (!(spec->hostname = strdup(host)))
			return -ENOMEM;
	}
	spec->annotations_json = ann ? json_dumps(ann, JSON_COMPACT) : strdup("{}");
	json_t *ctype = ann ? json_object_get(ann, "io.kubernetes.cri.container-type") : NULL;
	spec->cri_sandbox = json_is_string(ctype) && !strcmp(json_string_value(ctype), "sandbox");
	if (!spec->annotations_json)
		return -ENOMEM;
	return 0;
}

/* Read and check bundle/config.json. */
int oci_spec_load(const char *bundle, struct oci_spec *spec, char *err, size_t errlen)
{
	char path[PATH_MAX];
	struct stat sb;
	uint8_t *buf = NULL;
	size_t size;
	json_error_t je;
	json_t *root;
	int r;

	memset(spec, 0, sizeof(*spec));
	if (!bundle || !*bundle)
		bundle = ".";
	spec->bundle = realpath(bundle, NULL);
	if (!spec->bundle) {
		r = -errno;
		snprintf(err, errlen, "bundle '%.200s': %s", bundle, strerror(-r));
		return r;
	}
	if (stat(spec->bundle, &sb) || !S_ISDIR(sb.st_mode)) {
		snprintf(err, errlen, "bundle '%.200s': not a directory", bundle);
		return -ENOTDIR;
	}
	if (snprintf(path, sizeof(path), "%s/config.json", spec->bundle) >= (int)sizeof(path)) {
		snprintf(err, errlen, "bundle '%.200s': path too long", bundle);
		return -ENAMETOOLONG;
	}
	r = util_read_file(path, OCI_MAX_CONFIG, &buf, &size);
	if (r) {
		snprintf(err, errlen, "bundle '%.200s': config.json: %s", bundle,
			 util_file_error(r));
		return r;
	}
	root = json_loadb((const char *)buf, size, JSON_REJECT_DUPLICATES, &je);
	free(buf);
	if (!root) {
		snprintf(err, errlen, "bundle '%.200s': config.json: line %d: %s", bundle, je.line,
			 je.text);
		return -EINVAL;
	}
	r = parse_config(root, spec, err, errlen);
	json_decref(root);
	return r;
}

/* Free what oci_spec_load allocated. */
void oci_spec_free(struct oci_spec *spec)
{
	free(spec->bundle);
	free(spec->rootfs);
	str_free(spec->args);
	str_free(spec->env);
	free(spec->cwd);
	free(spec->netns);
	free(spec->hostname);
	free(spec->resolv_conf);
	free(spec->annotations_json);
	for (int i = 0; i < spec->nmounts; i++) {
		free(spec->mounts[i].source);
		free(spec->mounts[i].dest);
	}
	for (int k = 0; k < OCI_HOOK_KINDS; k++)
		for (int i = 0; i < spec->nhooks[k]; i++) {
			free(spec->hooks[k][i].path);
			str_free(spec->hooks[k][i].args);
			str_free(spec->hooks[k][i].env);
		}
	memset(spec, 0, sizeof(*spec));
}
