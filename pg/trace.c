/* Instruction traces: the sequence of (mode, segment, PC, word) a guest ran,
 * as the guest sees it. Equivalence is checked on these. */
#include <stdio.h>
#include <stdlib.h>

#include "pg.h"

void pg_trace_push(struct pg_trace *t, uint32_t m, uint32_t b, uint32_t l, uint32_t pc,
		   uint64_t word)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 256;
		struct pg_rec *rec = realloc(t->rec, cap * sizeof(*rec));

		if (!rec) {
			fprintf(stderr, "pg: trace: out of memory at %zu records\n", t->n);
			abort();
		}
		t->rec = rec;
		t->cap = cap;
	}
	t->rec[t->n++] = (struct pg_rec){.m = (uint8_t)m,
					 .b = (uint16_t)b,
					 .l = (uint16_t)l,
					 .pc = (uint16_t)pc,
					 .word = word};
}

void pg_trace_free(struct pg_trace *t)
{
	free(t->rec);
	t->rec = NULL;
	t->n = t->cap = 0;
}

void pg_trace_hook(void *arg, const struct pg_psw *psw, uint64_t word)
{
	pg_trace_push(arg, psw->m, psw->b, psw->l, psw->pc, word);
}
