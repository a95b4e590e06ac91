/* Fuzz target: the VM configuration (src/vmm/config.c), from both of its
 * untrusted forms: the JSON of --config, POST /vms and snapshots, and the
 * device flags of `wisp run` (vm_config_add_flag, with --mem through
 * vm_config_set_mem). Whatever is accepted must round-trip: config -> JSON
 * -> config gives an equal configuration and the same JSON again, and a
 * deep copy is equal too.
 *
 * Input: byte 0 even: the rest is JSON; odd: lines of FLAG[=VALUE] ("mem"
 * and "image" are the --mem and image arguments, the rest device flags). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/config.h"

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "round trip: %s (line %d)\n", #cond, __LINE__);            \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static bool same_str(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static void check_equal(const struct vm_config *a, const struct vm_config *b)
{
	CHECK(a->version == b->version);
	CHECK(a->kind == b->kind);
	CHECK(same_str(a->name, b->name));
	CHECK(a->mem == b->mem);
	CHECK(a->cpus == b->cpus);
	CHECK(same_str(a->image, b->image));
	CHECK(a->nargs == b->nargs);
	for (int i = 0; i < a->nargs; i++)
		CHECK(same_str(a->args[i], b->args[i]));
	CHECK(same_str(a->kernel, b->kernel));
	CHECK(same_str(a->initrd, b->initrd));
	/* NULL is the default command line, which the JSON form spells out. */
	CHECK(same_str(a->cmdline ? a->cmdline : LINUX_DEFAULT_CMDLINE,
		       b->cmdline ? b->cmdline : LINUX_DEFAULT_CMDLINE));
	CHECK(a->ndev == b->ndev);
	for (int i = 0; i < a->ndev; i++) {
		const struct vm_dev_config *x = &a->dev[i], *y = &b->dev[i];
		CHECK(x->kind == y->kind);
		CHECK(same_str(x->path, y->path));
		CHECK(x->ro == y->ro);
		CHECK(same_str(x->id, y->id));
		CHECK(same_str(x->tap, y->tap));
		CHECK(!memcmp(x->mac, y->mac, sizeof(x->mac)));
		CHECK(x->cid == y->cid);
		CHECK(x->size == y->size);
		CHECK(x->seeded == y->seeded);
		CHECK(!x->seeded || x->seed == y->seed);
	}
}

/* c was accepted: it must survive JSON and a copy unchanged. */
static void round_trip(const struct vm_config *c)
{
	char err[256];
	char *json = vm_config_to_json(c);
	CHECK(json);
	struct vm_config back;
	if (vm_config_from_json(json, strlen(json), NULL, &back, err, sizeof(err))) {
		fprintf(stderr, "round trip: %s refused: %s\n", json, err);
		abort();
	}
	check_equal(c, &back);
	char *again = vm_config_to_json(&back);
	CHECK(again && !strcmp(json, again));
	struct vm_config copy;
	CHECK(vm_config_copy(&copy, c) == 0);
	check_equal(c, &copy);
	vm_config_free(&copy);
	vm_config_free(&back);
	free(again);
	free(json);
}

static void from_flags(char *text)
{
	char err[256];
	struct vm_config c;
	vm_config_init(&c);
	int r = 0;
	for (char *line = text, *next; line && !r; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		char *eq = strchr(line, '=');
		if (eq)
			*eq++ = 0;
		if (!strcmp(line, "mem")) {
			r = vm_config_set_mem(&c, eq ? eq : "", "--mem", err, sizeof(err));
		} else if (!strcmp(line, "image")) {
			free(c.image);
			c.image = strdup(eq ? eq : "");
			CHECK(c.image);
		} else {
			r = vm_config_add_flag(&c, line, eq, err, sizeof(err));
		}
		CHECK(!r || err[0]);
	}
	if (!r && !vm_config_finish(&c, err, sizeof(err)))
		round_trip(&c);
	vm_config_free(&c);
}

/* jansson allocates for every value: recording 4 frames per allocation, not
 * 30, makes the target 1.6x faster (a report still has its full stack;
 * where a block was allocated or freed shows 4 frames). */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "malloc_context_size=4";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	char *text = malloc(size);
	if (!text)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = 0;
	if (data[0] & 1) {
		from_flags(text);
	} else {
		char err[256] = "";
		struct vm_config c;
		/* The exact bytes (not NUL-terminated), as a file or body arrives. */
		if (!vm_config_from_json((const char *)data + 1, size - 1, NULL, &c, err,
					 sizeof(err)))
			round_trip(&c);
		else
			CHECK(err[0]);
		vm_config_free(&c);
	}
	free(text);
	return 0;
}
