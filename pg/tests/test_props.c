/* The theorem's three properties on the tiny OS: equivalence (two copies
 * under the VMM do exactly what one does bare), safety (a malicious guest
 * touches nothing but its own memory), efficiency (most instructions run
 * directly); then the POPF variant's failure and the two fixes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define LIMIT 1000000
#define SLICE 97

static uint64_t os[PG_OS_SIZE], os_pv[PG_OS_SIZE], evil[PG_OS_SIZE];

static const char expect[] =
	"os: booted in mode s\n"
	"a0 a1 b0 2 a2 b1 a3 a4 b2 a5 a6 a7 b3 3 a8 a9 b4 b5 5 b6 7 b7 b8 11 13 b9 17 19 23 29 31 "
	"37 41 43 47 \n"
	"os: all programs exited, halt\n";

static int output_is(const struct pg_result *r, const char *s)
{
	return r->con.len == strlen(s) && !memcmp(r->con.buf, s, r->con.len);
}

/* Runs two copies of img under a VMM and checks both against bare. */
static void two_copies(const char *name, const uint64_t *img, enum pg_vmm_kind kind,
		       enum pg_isa isa, int pv, struct pg_result *bare, struct pg_result *virt)
{
	const uint64_t *imgs[2] = {img, img};
	char what[128];
	size_t nu;

	pg_run_vmm(imgs, 2, PG_OS_SIZE, kind, isa, pv, SLICE, LIMIT, virt);
	for (int i = 0; i < 2; i++) {
		snprintf(what, sizeof(what), "%s: VM%d output, memory, registers, trace as bare",
			 name, i);
		CHECK(what, !pg_compare(bare, &virt[i], pv).kind);
		snprintf(what, sizeof(what), "%s: VM%d user-mode instructions as bare", name, i);
		CHECK(what, pg_user_trace_equal(bare, &virt[i], &nu) && nu > 1000);
	}
}

static void test_equivalence(void)
{
	struct pg_result bare, v[2];

	pg_run_bare(os, PG_OS_SIZE, PG_ISA_STANDARD, LIMIT, &bare);
	CHECK("os: runs bare, the scheduler interleaves the three programs",
	      bare.halted && output_is(&bare, expect));
	two_copies("trap-and-emulate", os, PG_VMM_TRAP, PG_ISA_STANDARD, 0, &bare, v);
	CHECK("efficiency: over 90% of the OS's instructions run directly",
	      pg_direct_pct(&v[0]) > 90.0 &&
		      v[0].st.direct + v[0].st.emulated + v[0].st.reflected == v[0].trace.n);
	CHECK("trap-and-emulate: rpsw shows the guest its virtual mode",
	      !memcmp(v[0].con.buf, "os: booted in mode s", 20));
	pg_result_free(&v[0]);
	pg_result_free(&v[1]);
	two_copies("emulation", os, PG_VMM_EMULATE, PG_ISA_STANDARD, 0, &bare, v);
	CHECK("emulation: nothing runs directly", v[0].st.direct == 0);
	pg_result_free(&v[0]);
	pg_result_free(&v[1]);
	two_copies("binary translation on the standard isa", os, PG_VMM_BT, PG_ISA_STANDARD, 0,
		   &bare, v);
	CHECK("binary translation: nothing to patch on the standard isa", v[0].st.patched == 0);
	pg_result_free(&v[0]);
	pg_result_free(&v[1]);
	pg_result_free(&bare);
}

/* Runs a and b side by side; checks both against bare, and that the VMM's
 * own words and the guard above the VMs are as they were. */
static void side_by_side(const char *name, const uint64_t *a, const uint64_t *b, int evil_vm)
{
	const uint64_t *img[2] = {a, b};
	struct pg_result bare;
	struct pg_vmm v;
	uint64_t *before;
	char what[128];
	int same = 1;

	if (pg_vmm_init(&v, PG_VMM_TRAP, PG_ISA_STANDARD, 0, 2, PG_OS_SIZE, SLICE))
		abort();
	for (int i = 0; i < 2; i++)
		memcpy(pg_vmm_vm_mem(&v, i), img[i], sizeof(os));
	before = malloc(v.size * sizeof(*before));
	if (!before)
		abort();
	memcpy(before, v.mem, v.size * sizeof(*before));
	pg_vmm_start(&v, LIMIT);
	pg_vmm_run(&v);
	/* MEM[0], [2], [3] are the VMM's trap slots: the hardware writes them. */
	for (uint32_t i = 1; i < v.size; i++)
		if ((i < PG_VMM_RESERVED || i >= PG_VMM_RESERVED + 2 * PG_OS_SIZE) && i != 2 &&
		    i != 3 && v.mem[i] != before[i])
			same = 0;
	snprintf(what, sizeof(what), "safety: %s: the VMM's memory and the guard untouched", name);
	CHECK(what, same);
	for (int i = 0; i < 2; i++) {
		struct pg_result r = {.mem = pg_vmm_vm_mem(&v, i), .size = PG_OS_SIZE};

		r.con = v.vm[i].con;
		r.trace = v.vm[i].trace;
		memcpy(r.r, v.vm[i].r, sizeof(r.r));
		r.psw = v.vm[i].vpsw;
		r.halted = v.vm[i].halted;
		pg_run_bare(img[i], PG_OS_SIZE, PG_ISA_STANDARD, LIMIT, &bare);
		snprintf(what, sizeof(what),
			 "safety: %s: VM%d%s ran exactly as on its bare machine", name, i,
			 i == evil_vm ? " (malicious)" : "");
		CHECK(what, !pg_compare(&bare, &r, 0).kind);
		pg_result_free(&bare);
	}
	snprintf(what, sizeof(what), "safety: %s: each escape attempt trapped", name);
	CHECK(what, v.vm[evil_vm].con.len == 7 && !memcmp(v.vm[evil_vm].con.buf, "e:XXXX\n", 7) &&
			    v.vm[evil_vm].st.clamped > 0);
	free(before);
	pg_vmm_free(&v);
}

static void test_safety(void)
{
	side_by_side("malicious guest below the OS", evil, os, 0);
	side_by_side("malicious guest above the OS", os, evil, 1);
}

static void test_variant(void)
{
	struct pg_result bare, bare_pv, v[2];
	struct pg_diff d;
	const uint64_t *imgs[2] = {os, os};
	struct pg_vm_stats te, bt, pv;

	pg_run_bare(os, PG_OS_SIZE, PG_ISA_POPF, LIMIT, &bare);
	CHECK("popf isa: the OS runs bare as before", output_is(&bare, expect));
	pg_run_vmm(imgs, 2, PG_OS_SIZE, PG_VMM_TRAP, PG_ISA_POPF, 0, SLICE, 20000, v);
	d = pg_compare(&bare, &v[0], 0);
	CHECK("popf isa: trap-and-emulate is not equivalent", d.kind && !strcmp(d.kind, "trace"));
	CHECK("popf isa: it goes wrong right after the guest kernel's lpsw",
	      d.at > 0 && pg_insn_op(bare.trace.rec[d.at - 1].word) == PG_OP_LPSW &&
		      bare.trace.rec[d.at - 1].m == PG_MODE_S &&
		      bare.trace.rec[d.at].m == PG_MODE_U && v[0].trace.rec[d.at].m == PG_MODE_S);
	CHECK("popf isa: and its output differs", !output_is(&v[0], expect));
	te = v[0].st;
	pg_result_free(&v[0]);
	pg_result_free(&v[1]);

	two_copies("popf isa, binary translation", os, PG_VMM_BT, PG_ISA_POPF, 0, &bare, v);
	CHECK("binary translation: patched the lpsw, emulated it", v[0].st.patched > 0);
	bt = v[0].st;
	pg_result_free(&v[0]);
	pg_result_free(&v[1]);

	two_copies("popf isa, paravirtual OS", os_pv, PG_VMM_TRAP, PG_ISA_POPF, 1, &bare, v);
	CHECK("paravirtualisation: the guest is modified (not equivalent word for word)",
	      pg_compare(&bare, &v[0], 0).kind != NULL && v[0].st.hcalls > 0);
	pv = v[0].st;
	pg_run_bare(os_pv, PG_OS_SIZE, PG_ISA_POPF, LIMIT, &bare_pv);
	CHECK("paravirtualisation: the paravirtual OS does not run bare",
	      !output_is(&bare_pv, expect));
	CHECK("efficiency: binary translation enters the VMM more than paravirtualisation",
	      bt.exits > pv.exits);
	(void)te;
	pg_result_free(&bare_pv);
	pg_result_free(&v[0]);
	pg_result_free(&v[1]);
	pg_result_free(&bare);
}

void test_props(void)
{
	if (pg_os_build(os, PG_OS_SIZE, 0, NULL) || pg_os_build(os_pv, PG_OS_SIZE, 1, NULL) ||
	    pg_evil_build(evil, PG_OS_SIZE, NULL))
		abort();
	test_equivalence();
	test_safety();
	test_variant();
}
