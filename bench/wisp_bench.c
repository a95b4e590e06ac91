/* wisp-bench: the timing client of `make bench-create` (bench/bench_create.py
 * drives it). Each mode prints one sample per line, in microseconds:
 *
 *   wisp-bench create SOCKET IMAGE COUNT   create -> guest's first hypercall,
 *                                          create -> HTTP reply, pool or cold, and
 *                                          the split: client -> wispd, wispd ->
 *                                          VMM configured, -> first hypercall;
 *                                          then the time to destroy it; waits
 *                                          for a full pool before each create
 *   wisp-bench ramp SOCKET IMAGE COUNT     create COUNT VMs and leave them running
 *   wisp-bench destroy-all SOCKET          destroy every VM (prints how many)
 *   wisp-bench spawn BINARY COUNT          fork + exec + wait of a binary
 *   wisp-bench crun BUNDLE COUNT           fork + exec + wait of `crun run`, in a
 *                                          private mount namespace (see below)
 *
 * The clock is CLOCK_MONOTONIC, the clock the VMM stamps the guest's first
 * hypercall with, so "create" compares the two directly. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static _Noreturn void die(const char *fmt, const char *arg)
{
	fprintf(stderr, "wisp-bench: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	exit(1);
}

/* --- HTTP over the API socket (one kept-alive connection) ------------------ */

static CURL *curl;
static char *resp;
static size_t resp_len;

static size_t on_data(char *p, size_t sz, size_t n, void *u)
{
	(void)u;
	char *r = realloc(resp, resp_len + sz * n + 1);
	if (!r)
		return 0;
	memcpy(r + resp_len, p, sz * n);
	resp = r;
	resp_len += sz * n;
	resp[resp_len] = 0;
	return sz * n;
}

static void api_open(const char *sock)
{
	curl_global_init(CURL_GLOBAL_NOTHING);
	curl = curl_easy_init();
	if (!curl)
		die("%s", "curl_easy_init failed");
	curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, sock);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(curl, CURLOPT_TCP_NODELAY, 1L);
	static struct curl_slist *h;
	h = curl_slist_append(NULL, "Content-Type: application/json");
	h = curl_slist_append(h, "Expect:");
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
}

/* One request; returns the HTTP status, the body parsed as JSON in *out. */
static long api(const char *method, const char *path, const char *body, json_t **out)
{
	char url[512];
	snprintf(url, sizeof(url), "http://wispd%s", path);
	resp_len = 0;
	if (resp)
		resp[0] = 0;
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(curl, CURLOPT_POST, body ? 1L : 0L);
	if (!body)
		curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	CURLcode c = curl_easy_perform(curl);
	if (c != CURLE_OK)
		die("API request failed: %s", curl_easy_strerror(c));
	long status = 0;
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	if (out)
		*out = resp_len ? json_loads(resp, 0, NULL) : NULL;
	return status;
}

static uint64_t jget(json_t *o, const char *a, const char *b)
{
	json_t *j = json_object_get(o, a);
	if (b)
		j = json_object_get(j, b);
	return json_is_integer(j) ? (uint64_t)json_integer_value(j) : 0;
}

/* Wait until every pool class is full and nothing is starting (max 5 s). */
static void wait_pool(void)
{
	uint64_t end = now_ns() + 5000000000ull;
	while (now_ns() < end) {
		json_t *st;
		api("GET", "/stats", NULL, &st);
		json_t *pool = json_object_get(st, "pool");
		bool full = true;
		for (size_t i = 0; i < json_array_size(pool); i++) {
			json_t *c = json_array_get(pool, i);
			if (jget(c, "ready", NULL) < jget(c, "target", NULL) ||
			    jget(c, "starting", NULL))
				full = false;
		}
		json_decref(st);
		if (full)
			return;
		usleep(1000);
	}
}

static char *create_body(const char *image)
{
	static char body[2048];
	snprintf(body, sizeof(body), "{\"image\": \"%s\"}", image);
	return body;
}

static void mode_create(const char *sock, const char *image, int count)
{
	api_open(sock);
	for (int i = 0; i < count; i++) {
		wait_pool();
		usleep(2000); /* let the last teardown and refill settle */
		json_t *vm;
		uint64_t t0 = now_ns();
		long st = api("POST", "/vms", create_body(image), &vm);
		uint64_t t1 = now_ns();
		if (st != 201)
			die("create failed: %s", resp);
		char path[128];
		snprintf(path, sizeof(path), "/vms/%s",
			 json_string_value(json_object_get(vm, "id")));
		json_decref(vm);
		char stats[160];
		snprintf(stats, sizeof(stats), "%s/stats", path);
		/* Ask only once the guest is surely past its first hypercall: a
		 * stats query kicks a running vCPU out of KVM_RUN, which would
		 * slow down the very start being measured. The timestamps, not
		 * this poll, carry the measurement. */
		usleep(5000);
		uint64_t first = 0, end = now_ns() + 2000000000ull;
		const char *from = "?";
		json_t *s = NULL;
		while (!first && now_ns() < end) {
			json_decref(s);
			api("GET", stats, NULL, &s);
			first = jget(s, "boot", "first_hypercall_ns");
			from = json_string_value(
				json_object_get(json_object_get(s, "boot"), "from"));
			if (!first)
				usleep(200);
		}
		if (!first)
			die("no first hypercall within 2 s: %s", resp);
		/* Where the time went: client -> wispd -> VMM configured -> guest. */
		uint64_t req = jget(s, "boot", "request_ns"), start = jget(s, "boot", "started_ns");
		printf("%.1f %.1f %s %.1f %.1f %.1f", (double)(first - t0) / 1e3,
		       (double)(t1 - t0) / 1e3, from ? from : "?", (double)(req - t0) / 1e3,
		       (double)(start - req) / 1e3, (double)(first - start) / 1e3);
		json_decref(s);
		uint64_t d0 = now_ns();
		api("DELETE", path, NULL, NULL);
		printf(" %.1f\n", (double)(now_ns() - d0) / 1e3);
		fflush(stdout);
	}
}

static void mode_ramp(const char *sock, const char *image, int count)
{
	api_open(sock);
	for (int i = 0; i < count; i++) {
		uint64_t t0 = now_ns();
		long st = api("POST", "/vms", create_body(image), NULL);
		if (st != 201) {
			fprintf(stderr, "wisp-bench: create %d of %d failed (%ld): %s\n", i + 1,
				count, st, resp);
			exit(1);
		}
		printf("%.1f\n", (double)(now_ns() - t0) / 1e3);
	}
}

static void mode_destroy_all(const char *sock)
{
	api_open(sock);
	json_t *vms;
	api("GET", "/vms", NULL, &vms);
	size_t n = json_array_size(vms);
	for (size_t i = 0; i < n; i++) {
		char path[128];
		snprintf(path, sizeof(path), "/vms/%s",
			 json_string_value(json_object_get(json_array_get(vms, i), "id")));
		api("DELETE", path, NULL, NULL);
	}
	json_decref(vms);
	printf("%zu\n", n);
}

/* fork + exec + wait of argv; returns microseconds. */
static double run_once(char **argv)
{
	uint64_t t0 = now_ns();
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	int ws;
	if (pid < 0 || waitpid(pid, &ws, 0) < 0)
		die("fork/wait: %s", strerror(errno));
	double us = (double)(now_ns() - t0) / 1e3;
	if (!WIFEXITED(ws) || WEXITSTATUS(ws))
		die("'%s' failed", argv[0]);
	return us;
}

static void mode_spawn(const char *binary, int count)
{
	char *argv[] = {(char *)binary, NULL};
	for (int i = 0; i < count; i++)
		printf("%.1f\n", run_once(argv));
}

/* crun 1.8 refuses a hybrid cgroup v1+v2 host (this machine's): run it in a
 * private mount namespace without the v2 mount, so it sees pure v1. */
static void mode_crun(const char *bundle, int count)
{
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		die("private mount namespace: %s", strerror(errno));
	struct stat st;
	if (stat("/sys/fs/cgroup/unified", &st) == 0)
		umount2("/sys/fs/cgroup/unified", MNT_DETACH);
	char crun[] = "/usr/bin/crun";
	for (int i = 0; i < count; i++) {
		char id[64];
		snprintf(id, sizeof(id), "wisp-bench-%d-%d", (int)getpid(), i);
		char *argv[] = {crun, "run", "--bundle", (char *)bundle, id, NULL};
		printf("%.1f\n", run_once(argv));
	}
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 5 && !strcmp(argv[1], "create"))
		mode_create(argv[2], argv[3], atoi(argv[4]));
	else if (argc == 5 && !strcmp(argv[1], "ramp"))
		mode_ramp(argv[2], argv[3], atoi(argv[4]));
	else if (argc == 3 && !strcmp(argv[1], "destroy-all"))
		mode_destroy_all(argv[2]);
	else if (argc == 4 && !strcmp(argv[1], "spawn"))
		mode_spawn(argv[2], atoi(argv[3]));
	else if (argc == 4 && !strcmp(argv[1], "crun"))
		mode_crun(argv[2], atoi(argv[3]));
	else {
		fprintf(stderr,
			"usage: wisp-bench create|ramp SOCKET IMAGE COUNT | destroy-all SOCKET\n"
			"       wisp-bench spawn BINARY COUNT | crun BUNDLE COUNT\n");
		return 2;
	}
	return 0;
}
