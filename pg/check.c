/* The theorem's properties, checked by running: a guest on the bare machine
 * and the same guest under a VMM must leave the same trace, output, memory,
 * registers and PSW (equivalence); efficiency is the share of its
 * instructions the hardware ran directly. Safety is checked by the tests and
 * the demo on the VMM's memory (pg/tests/test_props.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"

static uint64_t *copy_mem(const uint64_t *src, uint32_t size)
{
	uint64_t *m = malloc(size * sizeof(*m));

	if (!m) {
		fprintf(stderr, "pg: out of memory for %u words\n", size);
		abort();
	}
	memcpy(m, src, size * sizeof(*m));
	return m;
}

void pg_run_bare(const uint64_t *img, uint32_t size, enum pg_isa isa, uint64_t limit,
		 struct pg_result *res)
{
	struct pg_machine m;

	memset(res, 0, sizeof(*res));
	res->mem = copy_mem(img, size);
	res->size = size;
	pg_machine_init(&m, res->mem, size, isa, &res->con);
	m.hook = pg_trace_hook;
	m.hook_arg = &res->trace;
	pg_machine_reset(&m);
	pg_run(&m, limit);
	memcpy(res->r, m.r, sizeof(res->r));
	res->psw = m.psw;
	res->halted = m.halted;
	res->st.direct = m.steps - m.traps; /* bare: all that did not trap */
}

int pg_run_vmm(const uint64_t *const *img, int n, uint32_t size, enum pg_vmm_kind kind,
	       enum pg_isa isa, int pv, uint32_t slice, uint64_t limit, struct pg_result *res)
{
	struct pg_vmm v;
	int rc = pg_vmm_init(&v, kind, isa, pv, n, size, slice);

	if (rc)
		return rc;
	for (int i = 0; i < n; i++)
		memcpy(pg_vmm_vm_mem(&v, i), img[i], size * sizeof(uint64_t));
	pg_vmm_start(&v, limit);
	pg_vmm_run(&v);
	for (int i = 0; i < n; i++) {
		struct pg_vm *vm = &v.vm[i];

		memset(&res[i], 0, sizeof(res[i]));
		res[i].mem = copy_mem(pg_vmm_vm_mem(&v, i), size);
		res[i].size = size;
		memcpy(res[i].r, vm->r, sizeof(vm->r));
		res[i].psw = vm->vpsw;
		res[i].halted = vm->halted;
		res[i].con = vm->con;
		res[i].trace = vm->trace; /* moved: the VMM must not free it */
		vm->trace = (struct pg_trace){0};
		res[i].st = vm->st;
	}
	pg_vmm_free(&v);
	return 0;
}

void pg_result_free(struct pg_result *r)
{
	free(r->mem);
	r->mem = NULL;
	pg_trace_free(&r->trace);
}

/* Whether a virtual word is the bare one, reading hcall as the lpsw it
 * replaced in a paravirtual build. */
static int same_word(uint64_t bare, uint64_t virt, int pv)
{
	if (bare == virt)
		return 1;
	return pv && pg_insn_op(bare) == PG_OP_LPSW && pg_insn_op(virt) == PG_OP_HCALL &&
	       pg_insn_imm(bare) == pg_insn_imm(virt);
}

static int same_rec(const struct pg_rec *a, const struct pg_rec *b, int pv)
{
	return a->m == b->m && a->b == b->b && a->l == b->l && a->pc == b->pc &&
	       same_word(a->word, b->word, pv);
}

int pg_user_trace_equal(const struct pg_result *a, const struct pg_result *b, size_t *n)
{
	size_t i = 0, j = 0, k = 0;

	for (;; i++, j++, k++) {
		while (i < a->trace.n && a->trace.rec[i].m != PG_MODE_U)
			i++;
		while (j < b->trace.n && b->trace.rec[j].m != PG_MODE_U)
			j++;
		if (i == a->trace.n || j == b->trace.n)
			break;
		if (!same_rec(&a->trace.rec[i], &b->trace.rec[j], 0))
			return 0;
	}
	if (n)
		*n = k;
	return i == a->trace.n && j == b->trace.n;
}

struct pg_diff pg_compare(const struct pg_result *bare, const struct pg_result *virt, int pv)
{
	size_t n = bare->trace.n < virt->trace.n ? bare->trace.n : virt->trace.n;
	size_t c = bare->con.len < virt->con.len ? bare->con.len : virt->con.len;

	for (size_t i = 0; i < n; i++)
		if (!same_rec(&bare->trace.rec[i], &virt->trace.rec[i], pv))
			return (struct pg_diff){"trace", i};
	if (bare->trace.n != virt->trace.n)
		return (struct pg_diff){"trace", n};
	if (c > PG_CON_MAX)
		c = PG_CON_MAX;
	for (size_t i = 0; i < c; i++)
		if (bare->con.buf[i] != virt->con.buf[i])
			return (struct pg_diff){"output", i};
	if (bare->con.len != virt->con.len)
		return (struct pg_diff){"output", c};
	if (bare->size != virt->size)
		return (struct pg_diff){"memory", 0};
	for (uint32_t i = 0; i < bare->size; i++)
		if (!same_word(bare->mem[i], virt->mem[i], pv))
			return (struct pg_diff){"memory", i};
	for (int i = 0; i < PG_NREGS; i++)
		if (bare->r[i] != virt->r[i])
			return (struct pg_diff){"registers", (size_t)i};
	if (pg_psw_pack(bare->psw) != pg_psw_pack(virt->psw) || bare->halted != virt->halted)
		return (struct pg_diff){"psw", 0};
	return (struct pg_diff){NULL, 0};
}

static void print_rec(const char *who, size_t i, const struct pg_rec *r)
{
	char dis[64];

	if (!r) {
		printf("    %-5s #%-6zu (nothing: the run ended)\n", who, i);
		return;
	}
	pg_disasm(r->word, dis, sizeof(dis));
	printf("    %-5s #%-6zu %c B=%-4u L=%-4u pc=%-4u %s\n", who, i, r->m ? 'u' : 's', r->b,
	       r->l, r->pc, dis);
}

void pg_diff_print(const struct pg_result *bare, const struct pg_result *virt, struct pg_diff d)
{
	if (!d.kind) {
		printf("    no difference\n");
		return;
	}
	if (!strcmp(d.kind, "trace")) {
		if (d.at > 0)
			print_rec("both", d.at - 1, &bare->trace.rec[d.at - 1]);
		print_rec("bare", d.at, d.at < bare->trace.n ? &bare->trace.rec[d.at] : NULL);
		print_rec("vmm", d.at, d.at < virt->trace.n ? &virt->trace.rec[d.at] : NULL);
	} else if (!strcmp(d.kind, "memory")) {
		printf("    MEM[%zu]: bare %#llx, vmm %#llx\n", d.at,
		       (unsigned long long)bare->mem[d.at], (unsigned long long)virt->mem[d.at]);
	} else {
		printf("    %s differ at %zu\n", d.kind, d.at);
	}
}

double pg_direct_pct(const struct pg_result *r)
{
	return r->trace.n ? 100.0 * (double)r->st.direct / (double)r->trace.n : 0.0;
}
