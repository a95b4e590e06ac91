/* The intrusive hash map (util.h). Chained buckets, power-of-two sized,
 * doubled when the load reaches one entry per bucket. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

int hmap_init(struct hmap *m, size_t hint)
{
	size_t n = 16;
	while (n < hint)
		n *= 2;
	m->buckets = calloc(n, sizeof(m->buckets[0]));
	if (!m->buckets)
		return -ENOMEM;
	m->mask = n - 1;
	m->count = 0;
	return 0;
}

void hmap_destroy(struct hmap *m)
{
	free(m->buckets);
	memset(m, 0, sizeof(*m));
}

/* Double the buckets; on failure keep the old ones (longer chains only). */
static void grow(struct hmap *m)
{
	size_t n = (m->mask + 1) * 2;
	struct hmap_node **b = calloc(n, sizeof(b[0]));
	if (!b)
		return;
	for (size_t i = 0; i <= m->mask; i++) {
		struct hmap_node *node = m->buckets[i];
		while (node) {
			struct hmap_node *next = node->next;
			node->next = b[node->hash & (n - 1)];
			b[node->hash & (n - 1)] = node;
			node = next;
		}
	}
	free(m->buckets);
	m->buckets = b;
	m->mask = n - 1;
}

void hmap_insert(struct hmap *m, struct hmap_node *node, uint64_t hash)
{
	if (m->count > m->mask)
		grow(m);
	node->hash = hash;
	node->next = m->buckets[hash & m->mask];
	m->buckets[hash & m->mask] = node;
	m->count++;
}

void hmap_remove(struct hmap *m, struct hmap_node *node)
{
	struct hmap_node **p = &m->buckets[node->hash & m->mask];
	while (*p && *p != node)
		p = &(*p)->next;
	if (*p) {
		*p = node->next;
		m->count--;
	}
	node->next = NULL;
}

struct hmap_node *hmap_find(const struct hmap *m, uint64_t hash)
{
	struct hmap_node *n = m->buckets[hash & m->mask];
	while (n && n->hash != hash)
		n = n->next;
	return n;
}

struct hmap_node *hmap_next_same(const struct hmap_node *node)
{
	struct hmap_node *n = node->next;
	while (n && n->hash != node->hash)
		n = n->next;
	return n;
}

struct hmap_node *hmap_next(const struct hmap *m, size_t *bucket, struct hmap_node *node)
{
	if (node && node->next)
		return node->next;
	if (node)
		(*bucket)++;
	for (; *bucket <= m->mask; (*bucket)++)
		if (m->buckets[*bucket])
			return m->buckets[*bucket];
	return NULL;
}

/* A 64-bit finaliser (from splitmix64) so that similar keys spread. */
static uint64_t mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

uint64_t hmap_hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
	return mix(h);
}

uint64_t hmap_hash_u64(uint64_t v)
{
	return mix(v + 0x9e3779b97f4a7c15ull);
}
