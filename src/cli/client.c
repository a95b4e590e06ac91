/* Talking to wispd from the client verbs (create, list, ...): HTTP over the
 * daemon's unix socket with libcurl, JSON with jansson.
 *
 * Both libraries are loaded with dlopen() when a client verb first needs
 * them, never at start-up: `wisp run` must not pay for them (libcurl pulls
 * in ~30 shared libraries, 5-12 ms of loading on the reference machine),
 * and a machine without them can still run VMs in the foreground. */
#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>
#include <jansson.h>

#include "cli/cli.h"
#include "control/ctl_proto.h"

/* Every libcurl and jansson function the client uses, called through
 * pointers filled by dlsym(). */
/* clang-format off */
#define CURL_FNS(X) \
	X(curl_easy_init) X(curl_easy_setopt) X(curl_easy_perform) X(curl_easy_getinfo) \
	X(curl_easy_cleanup) X(curl_easy_strerror) X(curl_slist_append) X(curl_slist_free_all)
#define JSON_FNS(X) \
	X(json_loadb) X(json_dumps) X(json_object) X(json_array) X(json_string) \
	X(json_integer) X(json_object_set_new) X(json_array_append_new) X(json_object_get) \
	X(json_array_get) X(json_array_size) X(json_string_value) X(json_number_value) \
	X(json_delete) X(json_true)
/* clang-format on */

#define DECLARE(fn) __typeof__(fn) *fn;
static struct {
	void *curl_so, *json_so;
	CURL_FNS(DECLARE)
	JSON_FNS(DECLARE)
} L;
#undef DECLARE

static char socket_path[256];
static CURL *handle;

void client_set_socket(const char *path)
{
	snprintf(socket_path, sizeof(socket_path), "%s", path);
}

const char *client_socket(void)
{
	if (!socket_path[0]) {
		const char *env = getenv("WISP_SOCKET");
		if (env && *env) {
			snprintf(socket_path, sizeof(socket_path), "%s", env);
		} else {
			char dir[200];
			ctl_default_runtime_dir(dir, sizeof(dir));
			snprintf(socket_path, sizeof(socket_path), "%s/%s", dir, WISPD_SOCKET_NAME);
		}
	}
	return socket_path;
}

int client_exec(void)
{
	char self[PATH_MAX], path[PATH_MAX + 16];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		fprintf(stderr, "wisp: cannot find this program's directory: %s\n",
			strerror(errno));
		return WISP_EXIT_ERROR;
	}
	self[n] = 0;
	char *slash = strrchr(self, '/');
	if (slash)
		*slash = 0;
	snprintf(path, sizeof(path), "%s/wisp-client", self);
	execv(path, cli_argv);
	fprintf(stderr, "wisp: this verb needs %s (built and installed with wisp): %s\n", path,
		strerror(errno));
	return WISP_EXIT_ERROR;
}

#ifdef WISP_LEAN
/* The lean build has no HTTP client: hand the whole command to wisp-client,
 * which parses it again. Callers have done nothing visible before. */
bool client_init(void)
{
	exit(client_exec());
}
#else
/* dlopen a library and resolve names; false (with a message) on failure. */
static bool load(void **so, const char *lib, const char *pkg)
{
	*so = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
	if (!*so)
		fprintf(stderr, "wisp: cannot load %s (install the Debian package %s): %s\n", lib,
			pkg, dlerror());
	return *so != NULL;
}

#define RESOLVE(so, fn)                                                                            \
	if (!(L.fn = (__typeof__(L.fn))dlsym(so, #fn))) {                                          \
		fprintf(stderr, "wisp: %s lacks %s\n", #so, #fn);                                  \
		return false;                                                                      \
	}
#define RESOLVE_CURL(fn) RESOLVE(L.curl_so, fn)
#define RESOLVE_JSON(fn) RESOLVE(L.json_so, fn)

bool client_init(void)
{
	if (L.curl_so && L.json_so)
		return true;
	if (!load(&L.json_so, "libjansson.so.4", "libjansson4") ||
	    !load(&L.curl_so, "libcurl.so.4", "libcurl4"))
		return false;
	JSON_FNS(RESOLVE_JSON)
	CURL_FNS(RESOLVE_CURL)
	return true;
}
#endif

/* --- JSON helpers for the verbs ------------------------------------------------- */

struct json_t *jget(struct json_t *o, const char *key)
{
	return o ? L.json_object_get(o, key) : NULL;
}

const char *jstr(struct json_t *o, const char *key)
{
	const char *s = L.json_string_value(jget(o, key));
	return s ? s : "";
}

long long jint(struct json_t *o, const char *key)
{
	return (long long)L.json_number_value(jget(o, key));
}

bool jhas(struct json_t *o, const char *key)
{
	return jget(o, key) != NULL;
}

size_t jlen(struct json_t *a)
{
	return a ? L.json_array_size(a) : 0;
}

struct json_t *jat(struct json_t *a, size_t i)
{
	return L.json_array_get(a, i);
}

struct json_t *jnew_object(void)
{
	return L.json_object();
}

struct json_t *jnew_array(void)
{
	return L.json_array();
}

void jset_str(struct json_t *o, const char *key, const char *v)
{
	L.json_object_set_new(o, key, L.json_string(v));
}

void jset_int(struct json_t *o, const char *key, long long v)
{
	L.json_object_set_new(o, key, L.json_integer(v));
}

double jnum(struct json_t *o, const char *key)
{
	return L.json_number_value(jget(o, key));
}

void jset_true(struct json_t *o, const char *key)
{
	L.json_object_set_new(o, key, L.json_true());
}

void jset(struct json_t *o, const char *key, struct json_t *v)
{
	L.json_object_set_new(o, key, v);
}

void jpush_str(struct json_t *a, const char *v)
{
	L.json_array_append_new(a, L.json_string(v));
}

void jfree(struct json_t *o)
{
	/* json_decref() is an inline calling json_delete(): do it by hand. */
	if (o && o->refcount != (size_t)-1 && --o->refcount == 0)
		L.json_delete(o);
}

struct json_t *jparse(const char *text)
{
	return L.json_loadb(text, strlen(text), 0, NULL);
}

void jprint(struct json_t *o)
{
	char *s = L.json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (s)
		printf("%s\n", s);
	free(s);
}

/* --- requests ------------------------------------------------------------------------ */

struct sink {
	char *buf;
	size_t len;
	bool stream; /* write straight to stdout */
};

static size_t on_data(char *p, size_t sz, size_t n, void *u)
{
	struct sink *s = u;
	size_t len = sz * n;
	long code = 0;
	if (s->stream && L.curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK &&
	    code == 200) {
		fwrite(p, 1, len, stdout);
		fflush(stdout);
		return len;
	}
	char *b = realloc(s->buf, s->len + len + 1);
	if (!b)
		return 0;
	memcpy(b + s->len, p, len);
	s->buf = b;
	s->len += len;
	b[s->len] = 0;
	return len;
}

/* Why the daemon could not be reached, in words. */
static void explain_unreachable(CURLcode c)
{
	const char *path = client_socket();
	struct stat st;
	const char *why = stat(path, &st) < 0	       ? strerror(errno)
			  : !S_ISSOCK(st.st_mode)      ? "not a socket"
			  : c == CURLE_COULDNT_CONNECT ? "connection refused"
						       : L.curl_easy_strerror(c);
	fprintf(stderr,
		"wisp: cannot reach wispd at %s: %s (is the daemon running? start it with 'wisp "
		"daemon')\n",
		path, why);
}

static int perform(const char *method, const char *path, struct json_t *body, struct sink *sink,
		   long *status)
{
	if (!client_init())
		return -1;
	if (!handle && !(handle = L.curl_easy_init())) {
		fprintf(stderr, "wisp: curl_easy_init failed\n");
		return -1;
	}
	char url[512];
	snprintf(url, sizeof(url), "http://wispd%s", path);
	char *text = body ? L.json_dumps(body, JSON_COMPACT) : NULL;
	struct curl_slist *h = L.curl_slist_append(NULL, "Content-Type: application/json");
	h = L.curl_slist_append(h, "Expect:");
	L.curl_easy_setopt(handle, CURLOPT_UNIX_SOCKET_PATH, client_socket());
	L.curl_easy_setopt(handle, CURLOPT_URL, url);
	L.curl_easy_setopt(handle, CURLOPT_HTTPHEADER, h);
	L.curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, on_data);
	L.curl_easy_setopt(handle, CURLOPT_WRITEDATA, sink);
	if (text)
		L.curl_easy_setopt(handle, CURLOPT_POSTFIELDS, text);
	else
		L.curl_easy_setopt(handle, CURLOPT_HTTPGET, 1L);
	L.curl_easy_setopt(handle, CURLOPT_CUSTOMREQUEST, method);
	CURLcode c = L.curl_easy_perform(handle);
	L.curl_slist_free_all(h);
	free(text);
	if (c != CURLE_OK) {
		explain_unreachable(c);
		return -1;
	}
	L.curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, status);
	return 0;
}

int api_call_quiet(const char *method, const char *path, struct api_reply *r)
{
	struct sink sink = {0};
	memset(r, 0, sizeof(*r));
	if (perform(method, path, NULL, &sink, &r->status)) {
		free(sink.buf);
		return -1;
	}
	if (sink.len)
		r->json = L.json_loadb(sink.buf, sink.len, 0, NULL);
	r->body = sink.buf;
	if (r->status >= 200 && r->status < 300)
		return 0;
	api_reply_free(r);
	return -1;
}

int api_call(const char *method, const char *path, struct json_t *body, struct api_reply *r)
{
	struct sink sink = {0};
	memset(r, 0, sizeof(*r));
	int ret = perform(method, path, body, &sink, &r->status);
	jfree(body);
	if (ret) {
		free(sink.buf);
		return -1;
	}
	if (sink.len)
		r->json = L.json_loadb(sink.buf, sink.len, 0, NULL);
	r->body = sink.buf;
	if (r->status >= 200 && r->status < 300)
		return 0;
	const char *msg = r->json ? jstr(r->json, "error") : "";
	if (!*msg)
		msg = r->body && *r->body ? r->body : "the daemon gave no reason";
	/* an error of several lines (a restore's mismatches): each its own */
	for (const char *p = msg; *p;) {
		size_t n = strcspn(p, "\n");
		fprintf(stderr, "wisp: %.*s\n", (int)n, p);
		p += n + (p[n] == '\n');
	}
	api_reply_free(r);
	return -1;
}

void api_reply_free(struct api_reply *r)
{
	jfree(r->json);
	free(r->body);
	memset(r, 0, sizeof(*r));
}

int api_stream(const char *path)
{
	struct sink sink = {.stream = true};
	long status = 0;
	int r = perform("GET", path, NULL, &sink, &status);
	if (!r && status != 200) { /* an error: its JSON was kept, not printed */
		struct json_t *j = sink.len ? L.json_loadb(sink.buf, sink.len, 0, NULL) : NULL;
		const char *msg = j ? jstr(j, "error") : "";
		fprintf(stderr, "wisp: %s\n", *msg ? msg : "the daemon refused the request");
		jfree(j);
		r = -1;
	}
	free(sink.buf);
	return r;
}

int client_vm_path(const char *vm, const char *sub, char *buf, size_t len)
{
	if (!ctl_valid_name(vm) && !ctl_valid_id(vm)) {
		fprintf(stderr, "wisp: '%s' is not a VM name or id\n", vm);
		return -1;
	}
	snprintf(buf, len, "/vms/%s%s%s", vm, sub ? "/" : "", sub ? sub : "");
	return 0;
}

void client_close(void)
{
	if (handle)
		L.curl_easy_cleanup(handle);
	handle = NULL;
}

int client_bad_option(const char *verb, char **argv, const char *usage)
{
	if (optopt)
		fprintf(stderr, "wisp: %s: option '-%c' is not known or needs a value\n%s", verb,
			optopt, usage);
	else
		fprintf(stderr, "wisp: %s: unknown option '%s'\n%s", verb, argv[optind - 1], usage);
	return WISP_EXIT_ERROR;
}

bool client_options(int argc, char **argv, const char *usage, const char *flag_name,
		    char flag_short, bool *flag, int *code)
{
	struct option opts[] = {{"socket", required_argument, NULL, 'S'},
				{"help", no_argument, NULL, 'h'},
				{flag_name, no_argument, NULL, 'F'},
				{0}};
	char shorts[8] = "+h";
	if (!flag_name)
		opts[2] = (struct option){0};
	else if (flag_short)
		shorts[2] = flag_short;
	optind = 0;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, shorts, opts, NULL)) != -1) {
		if (c == 'S') {
			client_set_socket(optarg);
		} else if (c == 'h') {
			fputs(usage, stdout);
			*code = 0;
			return true;
		} else if (flag_name && (c == 'F' || (flag_short && c == flag_short))) {
			*flag = true;
		} else {
			*code = client_bad_option(argv[0], argv, usage);
			return true;
		}
	}
	return false;
}

int client_vm_action(int argc, char **argv, const char *action, const char *usage)
{
	int code;
	if (client_options(argc, argv, usage, NULL, 0, NULL, &code))
		return code;
	if (optind >= argc) {
		fprintf(stderr, "wisp: %s: no VM given\n%s", argv[0], usage);
		return WISP_EXIT_ERROR;
	}
	code = 0;
	for (int i = optind; i < argc; i++) {
		char path[128];
		struct api_reply r;
		if (client_vm_path(argv[i], action, path, sizeof(path)) ||
		    api_call("POST", path, NULL, &r)) {
			code = WISP_EXIT_ERROR;
			continue;
		}
		printf("%s %s\n", jstr(r.json, "name"), jstr(r.json, "state"));
		api_reply_free(&r);
	}
	client_close();
	return code;
}
