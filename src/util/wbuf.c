/* A growable byte buffer (util.h): snapshot state is assembled here before
 * it goes to a file or a socket. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

void *wbuf_reserve(struct wbuf *b, size_t n)
{
	if (b->err)
		return NULL;
	if (n > b->cap - b->len) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap - b->len < n) {
			if (cap > SIZE_MAX / 2) {
				b->err = -ENOMEM;
				return NULL;
			}
			cap *= 2;
		}
		uint8_t *p = realloc(b->p, cap);
		if (!p) {
			b->err = -ENOMEM;
			return NULL;
		}
		b->p = p;
		b->cap = cap;
	}
	void *at = b->p + b->len;
	memset(at, 0, n);
	b->len += n;
	return at;
}

void wbuf_put(struct wbuf *b, const void *data, size_t n)
{
	void *at = wbuf_reserve(b, n);
	if (at && n)
		memcpy(at, data, n);
}

void wbuf_align(struct wbuf *b, size_t align)
{
	size_t pad = (align - (b->len & (align - 1))) & (align - 1);
	wbuf_reserve(b, pad);
}

int wbuf_error(const struct wbuf *b)
{
	return b->err;
}

void wbuf_free(struct wbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}
