/* wispd's metrics: GET /metrics in the Prometheus text exposition format,
 * version 0.0.4 (docs/control-plane.md, "Metrics"). Per-VM series carry
 * the labels id and name; wispd's own series have none but their own.
 * Every family has its HELP and TYPE lines and its samples together;
 * counters end in _total; label values are escaped (\\, \" and \n).
 *
 * The VM counters are as fresh as the request: api.c asks every running or
 * paused VM for its counters first (metrics_query_vms) and renders once all
 * have answered (or timed out: then their last known values are used). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "control/wispd.h"

#ifndef WISP_VERSION
#define WISP_VERSION "dev"
#endif

/* --- API latency --------------------------------------------------------------- */

static const char *const route_names[METRICS_ROUTES] = {
	"/version",
	"/stats",
	"/metrics",
	"/vms",
	"/vms/receive",
	"/vms/{vm}",
	"/vms/{vm}/pause",
	"/vms/{vm}/resume",
	"/vms/{vm}/stats",
	"/vms/{vm}/console",
	"/vms/{vm}/save",
	"/vms/{vm}/migrate",
	"/vms/{vm}/migration",
	"other",
};
static const char *const method_names[METRICS_METHODS] = {"GET", "POST", "DELETE", "other"};
/* Upper bounds of the latency buckets, seconds (the last bucket is +Inf). */
static const double bucket_le[METRICS_BUCKETS - 1] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
	0.05,	0.1,	 0.25,	 0.5,	1,	2.5,   5,    10,
};

/* The route template of url: the label never holds a VM's name or an
 * arbitrary path, so the number of series stays bounded. */
static int route_index(const char *url)
{
	for (int i = 0; i < 5; i++)
		if (!strcmp(url, route_names[i]))
			return i;
	if (!strcmp(url, "/vms/"))
		return 3;
	if (strncmp(url, "/vms/", 5) || !url[5] || url[5] == '/')
		return METRICS_ROUTES - 1;
	const char *sub = strchr(url + 5, '/');
	if (!sub)
		return 5;
	for (int i = 6; i < METRICS_ROUTES - 1; i++)
		if (!strcmp(sub, route_names[i] + strlen("/vms/{vm}")))
			return i;
	return METRICS_ROUTES - 1;
}

void metrics_observe_api(struct wispd *d, const char *method, const char *url, unsigned status,
			 uint64_t ns)
{
	int r = route_index(url), m = METRICS_METHODS - 1;
	for (int i = 0; i < METRICS_METHODS - 1; i++)
		if (!strcmp(method, method_names[i]))
			m = i;
	int b = 0;
	while (b < METRICS_BUCKETS - 1 && (double)ns / 1e9 > bucket_le[b])
		b++;
	d->api.bucket[r][m][b]++;
	d->api.sum_ns[r][m] += ns;
	if (status < METRICS_CODE_MAX)
		d->api.codes[status]++;
}

/* --- what wispd knows of a VM ----------------------------------------------------- */

void vmm_memory(const struct vmm *v, uint64_t *rss, uint64_t *pss)
{
	*rss = *pss = 0;
	if (!vmm_live(v))
		return;
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)v->pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	unsigned long long kb;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Rss: %llu kB", &kb) == 1)
			*rss = kb << 10;
		else if (sscanf(line, "Pss: %llu kB", &kb) == 1)
			*pss = kb << 10;
	}
	fclose(f);
}

uint64_t vmm_uptime_ns(const struct vmm *v)
{
	uint64_t end = v->final ? v->ended_ns : util_now_ns();
	return v->request_ns && end > v->request_ns ? end - v->request_ns : 0;
}

static json_int_t ji(uint64_t v)
{
	return (json_int_t)(v > INT64_MAX ? INT64_MAX : v);
}

json_t *metrics_devices_json(const struct vmm *v)
{
	json_t *a = json_array();
	for (unsigned i = 0; a && i < v->nr_devs && i < CTL_DEV_MAX; i++) {
		const struct ctl_dev_stats *s = &v->devs[i];
		json_array_append_new(a, json_pack("{s:s, s:i, s:I, s:I, s:I, s:I, s:I, s:I}",
						   "type", s->type, "slot", (int)s->slot, "ops",
						   ji(s->ops), "tx_bytes", ji(s->tx_bytes),
						   "rx_bytes", ji(s->rx_bytes), "notifies",
						   ji(s->notifies), "interrupts", ji(s->interrupts),
						   "guest_errors", ji(s->guest_errors)));
	}
	return a;
}

/* A VM whose VMM answers queries without disturbing a create or a
 * migration's receiver (those wait for a reply of their own). */
static bool queryable(const struct vmm *v)
{
	return vmm_live(v) && (v->state == CTL_STATE_RUNNING || v->state == CTL_STATE_PAUSED);
}

static struct vmm *from_node(struct hmap_node *h)
{
	return (struct vmm *)((char *)h - offsetof(struct vmm, by_id));
}

unsigned metrics_query_vms(struct wispd *d, struct request *req)
{
	unsigned n = 0;
	size_t b = 0;
	for (struct hmap_node *h = hmap_next(&d->by_id, &b, NULL); h;
	     h = hmap_next(&d->by_id, &b, h)) {
		struct vmm *v = from_node(h);
		if (queryable(v) && !vmm_ask(d, v, CTL_QUERY, req))
			n++;
	}
	return n;
}

/* --- the exposition ------------------------------------------------------------------ */

/* A label value or HELP text, escaped: backslash, newline and (in label
 * values) the double quote. */
static void put_escaped(FILE *f, const char *s, bool quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", f);
		else if (*s == '\n')
			fputs("\\n", f);
		else if (*s == '"' && quote)
			fputs("\\\"", f);
		else
			fputc(*s, f);
	}
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s ", name);
	put_escaped(f, help, false);
	fprintf(f, "\n# TYPE %s %s\n", name, type);
}

/* `name{id="..",name=".."` of a VM's sample, the brace left open for more. */
static void vm_labels(FILE *f, const char *metric, const struct vmm *v)
{
	fprintf(f, "%s{id=\"", metric);
	put_escaped(f, v->id, true);
	fputs("\",name=\"", f);
	put_escaped(f, v->name, true);
	fputc('"', f);
}

static void vm_u64(FILE *f, const char *metric, const struct vmm *v, uint64_t value)
{
	vm_labels(f, metric, v);
	fprintf(f, "} %llu\n", (unsigned long long)value);
}

static void vm_seconds(FILE *f, const char *metric, const struct vmm *v, const char *extra,
		       uint64_t ns)
{
	vm_labels(f, metric, v);
	fprintf(f, "%s} %.9f\n", extra ? extra : "", (double)ns / 1e9);
}

/* Order VMs by creation, then id: a stable exposition. */
static int by_creation(const void *a, const void *b)
{
	const struct vmm *x = *(struct vmm *const *)a, *y = *(struct vmm *const *)b;
	if (x->request_ns != y->request_ns)
		return x->request_ns < y->request_ns ? -1 : 1;
	return strcmp(x->id, y->id);
}

/* mem: room for 2n numbers (the VMMs' Rss and Pss). */
static void render_vms(FILE *f, struct vmm **vms, size_t n, uint64_t *mem)
{
	family(f, "wisp_vm_info", "gauge",
	       "A VM known to wispd (always 1), with its image and where its VMM came from");
	for (size_t i = 0; i < n; i++) {
		vm_labels(f, "wisp_vm_info", vms[i]);
		fputs(",image=\"", f);
		put_escaped(f, vms[i]->image ? vms[i]->image : "", true);
		fprintf(f, "\",from=\"%s\"} 1\n", vms[i]->from_pool ? "pool" : "cold");
	}
	family(f, "wisp_vm_state", "gauge", "The VM's state: 1 for the state it is in, else 0");
	for (size_t i = 0; i < n; i++)
		for (int s = CTL_STATE_STARTING; s <= CTL_STATE_LAST; s++) {
			vm_labels(f, "wisp_vm_state", vms[i]);
			fprintf(f, ",state=\"%s\"} %d\n", ctl_state_name((enum ctl_state)s),
				vms[i]->state == (enum ctl_state)s);
		}
	family(f, "wisp_vm_vcpu_exits_total", "counter",
	       "vCPU exits to the VMM by kind, summed over the VM's vCPUs");
	for (size_t i = 0; i < n; i++) {
		const struct exit_stats *e = &vms[i]->exits;
		const struct {
			const char *kind;
			uint64_t n;
		} k[] = {{"io", e->io},
			 {"mmio", e->mmio},
			 {"hypercall", e->hypercall},
			 {"hlt", e->hlt},
			 {"intr", e->intr},
			 {"shutdown", e->shutdown},
			 {"unhandled", e->unhandled},
			 {"other", e->other}};
		for (size_t j = 0; j < sizeof(k) / sizeof(k[0]); j++) {
			vm_labels(f, "wisp_vm_vcpu_exits_total", vms[i]);
			fprintf(f, ",kind=\"%s\"} %llu\n", k[j].kind, (unsigned long long)k[j].n);
		}
	}
	uint64_t *rss = mem, *pss = mem + n;
	for (size_t i = 0; i < n; i++)
		vmm_memory(vms[i], &rss[i], &pss[i]);
	family(f, "wisp_vm_memory_bytes", "gauge", "Guest RAM of the VM, bytes");
	for (size_t i = 0; i < n; i++)
		vm_u64(f, "wisp_vm_memory_bytes", vms[i], vms[i]->mem);
	family(f, "wisp_vm_vmm_rss_bytes", "gauge",
	       "Resident memory of the VM's VMM process, guest RAM included (0 once it ended)");
	for (size_t i = 0; i < n; i++)
		vm_u64(f, "wisp_vm_vmm_rss_bytes", vms[i], rss[i]);
	family(f, "wisp_vm_vmm_pss_bytes", "gauge",
	       "Proportional set size of the VM's VMM process (0 once it ended)");
	for (size_t i = 0; i < n; i++)
		vm_u64(f, "wisp_vm_vmm_pss_bytes", vms[i], pss[i]);
	family(f, "wisp_vm_uptime_seconds", "gauge",
	       "Time since the create request, until the VM ended if it has");
	for (size_t i = 0; i < n; i++)
		vm_seconds(f, "wisp_vm_uptime_seconds", vms[i], NULL, vmm_uptime_ns(vms[i]));
	family(f, "wisp_vm_boot_seconds", "gauge",
	       "Boot latency from the create request: to the VMM entering KVM_RUN "
	       "(first_instruction) and to the guest's first hypercall (first_hypercall); "
	       "absent until known");
	for (size_t i = 0; i < n; i++) {
		const struct vmm *v = vms[i];
		if (v->request_ns && v->started_ns >= v->request_ns)
			vm_seconds(f, "wisp_vm_boot_seconds", v, ",until=\"first_instruction\"",
				   v->started_ns - v->request_ns);
		if (v->request_ns && v->first_hypercall_ns >= v->request_ns)
			vm_seconds(f, "wisp_vm_boot_seconds", v, ",until=\"first_hypercall\"",
				   v->first_hypercall_ns - v->request_ns);
	}
	/* Devices: one family per counter, a series per device and direction. */
	static const struct {
		const char *name, *help;
	} dev[] = {
		{"wisp_vm_device_io_bytes_total",
		 "Bytes through a device's queues: tx read from the guest's buffers, rx written "
		 "into them"},
		{"wisp_vm_device_io_operations_total",
		 "Requests (descriptor chains) a device served"},
		{"wisp_vm_device_notifications_total", "Queue notifications from the guest"},
		{"wisp_vm_device_interrupts_total", "Interrupts a device raised"},
		{"wisp_vm_device_guest_errors_total", "Malformed requests a device refused"},
	};
	for (size_t k = 0; k < sizeof(dev) / sizeof(dev[0]); k++) {
		family(f, dev[k].name, "counter", dev[k].help);
		for (size_t i = 0; i < n; i++)
			for (unsigned j = 0; j < vms[i]->nr_devs && j < CTL_DEV_MAX; j++) {
				const struct ctl_dev_stats *s = &vms[i]->devs[j];
				uint64_t val[] = {0, s->ops, s->notifies, s->interrupts,
						  s->guest_errors};
				for (int dir = 0; dir < (k ? 1 : 2); dir++) {
					vm_labels(f, dev[k].name, vms[i]);
					fputs(",device=\"", f);
					put_escaped(f, s->type, true);
					fprintf(f, "\",slot=\"%u\"", s->slot);
					if (!k)
						fprintf(f, ",direction=\"%s\"", dir ? "rx" : "tx");
					fprintf(f, "} %llu\n",
						(unsigned long long)(k	   ? val[k]
								     : dir ? s->rx_bytes
									   : s->tx_bytes));
				}
			}
	}
}

static void render_daemon(FILE *f, struct wispd *d, struct vmm **vms, size_t n)
{
	family(f, "wispd_info", "gauge", "wispd's version (always 1)");
	fputs("wispd_info{version=\"", f);
	put_escaped(f, WISP_VERSION, true);
	fputs("\"} 1\n", f);
	family(f, "wispd_uptime_seconds", "gauge", "Time since wispd started");
	fprintf(f, "wispd_uptime_seconds %.9f\n", (double)(util_now_ns() - d->started_ns) / 1e9);
	unsigned by_state[CTL_STATE_LAST + 1] = {0};
	for (size_t i = 0; i < n; i++)
		by_state[vms[i]->state]++;
	family(f, "wispd_vms", "gauge", "VMs in wispd's table, by state");
	for (int s = CTL_STATE_STARTING; s <= CTL_STATE_LAST; s++)
		fprintf(f, "wispd_vms{state=\"%s\"} %u\n", ctl_state_name((enum ctl_state)s),
			by_state[s]);
	family(f, "wispd_vm_creates_total", "counter",
	       "VMs created, by where their VMM came from (a pool shell, or cold)");
	fprintf(f, "wispd_vm_creates_total{from=\"pool\"} %llu\n",
		(unsigned long long)d->creates_pool);
	fprintf(f, "wispd_vm_creates_total{from=\"cold\"} %llu\n",
		(unsigned long long)d->creates_cold);
	family(f, "wispd_vm_create_errors_total", "counter", "Create requests that failed");
	fprintf(f, "wispd_vm_create_errors_total %llu\n", (unsigned long long)d->create_errors);
	family(f, "wispd_vm_destroys_total", "counter", "VMs destroyed");
	fprintf(f, "wispd_vm_destroys_total %llu\n", (unsigned long long)d->destroys);
	family(f, "wispd_vms_adopted_total", "counter",
	       "VMs re-adopted from the runtime directory at start");
	fprintf(f, "wispd_vms_adopted_total %llu\n", (unsigned long long)d->adopted);

	/* The pool, one series per memory-size class. */
	static const struct {
		const char *name, *type, *help;
	} pool[] = {
		{"wispd_pool_target_shells", "gauge", "Shells a pool class keeps ready"},
		{"wispd_pool_ready_shells", "gauge", "Prepared shells waiting for a create"},
		{"wispd_pool_starting_shells", "gauge", "Shells spawned, not yet prepared"},
		{"wispd_pool_hits_total", "counter", "Creates served from a pool class"},
		{"wispd_pool_refills_total", "counter", "Shells spawned to refill a pool class"},
		{"wispd_pool_shell_failures_total", "counter",
		 "Shells that failed or died before they were used"},
	};
	for (size_t k = 0; k < sizeof(pool) / sizeof(pool[0]); k++) {
		family(f, pool[k].name, pool[k].type, pool[k].help);
		for (int i = 0; i < d->cfg.nr_classes; i++) {
			const struct pool_class *c = &d->cfg.classes[i];
			uint64_t val[] = {c->target, c->ready,	 c->starting,
					  c->hits,   c->refills, c->shell_failures};
			fprintf(f, "%s{mem=\"%llu\",cpus=\"%u\",kind=\"%s\"} %llu\n", pool[k].name,
				(unsigned long long)c->mem, c->cpus,
				c->linux_guest ? "linux" : "unikernel", (unsigned long long)val[k]);
		}
	}

	family(f, "wispd_api_request_duration_seconds", "histogram",
	       "Time from a request's arrival to its answer, by route template and method");
	for (int r = 0; r < METRICS_ROUTES; r++)
		for (int m = 0; m < METRICS_METHODS; m++) {
			const uint64_t *b = d->api.bucket[r][m];
			uint64_t cum = 0;
			for (int i = 0; i < METRICS_BUCKETS; i++)
				cum += b[i];
			if (!cum)
				continue; /* never asked: no series */
			char lab[96];
			snprintf(lab, sizeof(lab), "route=\"%s\",method=\"%s\"", route_names[r],
				 method_names[m]);
			cum = 0;
			for (int i = 0; i < METRICS_BUCKETS; i++) {
				cum += b[i];
				if (i < METRICS_BUCKETS - 1)
					fprintf(f,
						"wispd_api_request_duration_seconds_bucket{%s,le="
						"\"%g\"} "
						"%llu\n",
						lab, bucket_le[i], (unsigned long long)cum);
				else
					fprintf(f,
						"wispd_api_request_duration_seconds_bucket{%s,le="
						"\"+Inf\"} "
						"%llu\n",
						lab, (unsigned long long)cum);
			}
			fprintf(f, "wispd_api_request_duration_seconds_sum{%s} %.9f\n", lab,
				(double)d->api.sum_ns[r][m] / 1e9);
			fprintf(f, "wispd_api_request_duration_seconds_count{%s} %llu\n", lab,
				(unsigned long long)cum);
		}
	family(f, "wispd_api_responses_total", "counter", "API answers by HTTP status code");
	for (int c = 0; c < METRICS_CODE_MAX; c++)
		if (d->api.codes[c])
			fprintf(f, "wispd_api_responses_total{code=\"%d\"} %llu\n", c,
				(unsigned long long)d->api.codes[c]);
}

char *metrics_render(struct wispd *d)
{
	struct vmm **vms = calloc(d->nr_vms + 1, sizeof(*vms));
	uint64_t *mem = calloc(2 * (size_t)d->nr_vms + 1, sizeof(*mem));
	char *text = NULL;
	size_t len = 0, n = 0, b = 0;
	FILE *f = vms && mem ? open_memstream(&text, &len) : NULL;
	if (!f) {
		free(vms);
		free(mem);
		return NULL;
	}
	for (struct hmap_node *h = hmap_next(&d->by_id, &b, NULL); h && n < d->nr_vms;
	     h = hmap_next(&d->by_id, &b, h))
		vms[n++] = from_node(h);
	qsort(vms, n, sizeof(*vms), by_creation);
	render_vms(f, vms, n, mem);
	render_daemon(f, d, vms, n);
	bool failed = ferror(f);
	fclose(f);
	free(vms);
	free(mem);
	if (failed) {
		free(text);
		return NULL;
	}
	return text;
}
