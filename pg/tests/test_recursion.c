/* The stretch goal: the VMM written in the machine's own assembly (vmm.s)
 * runs the OS, runs under a copy of itself (the recursive-virtualisation
 * theorem), and runs under the C VMM; the OS inside does exactly what it
 * does bare. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define NEST_MAX 2
#define NRAND	 3000
#define RSIZE	 64
#define RSTEPS	 100 /* guest steps per random program */

/* The OS's user-mode instructions, seen from the real machine: real user
 * mode, in a segment above the OS kernel's (which starts at base). */
static int user_trace_projected(const struct pg_result *nest, uint32_t base,
				const struct pg_result *bare)
{
	size_t j = 0;

	for (size_t i = 0; i < nest->trace.n; i++) {
		const struct pg_rec *r = &nest->trace.rec[i];

		if (r->m != PG_MODE_U || r->b <= base)
			continue;
		while (j < bare->trace.n && bare->trace.rec[j].m != PG_MODE_U)
			j++;
		if (j == bare->trace.n || bare->trace.rec[j].b != r->b - base ||
		    bare->trace.rec[j].pc != r->pc || bare->trace.rec[j].word != r->word)
			return 0;
		j++;
	}
	while (j < bare->trace.n && bare->trace.rec[j].m != PG_MODE_U)
		j++;
	return j == bare->trace.n;
}

static void test_nested_os(void)
{
	static uint64_t os[PG_OS_SIZE], img[PG_OS_SIZE + NEST_MAX * PG_VMMASM_BASE];
	struct pg_result bare;
	char what[128];

	pg_os_build(os, PG_OS_SIZE, 0, NULL);
	pg_run_bare(os, PG_OS_SIZE, PG_ISA_STANDARD, 1000000, &bare);
	for (int lv = 1; lv <= NEST_MAX; lv++) {
		uint32_t size = PG_OS_SIZE + (uint32_t)lv * PG_VMMASM_BASE,
			 base = size - PG_OS_SIZE;
		const uint64_t *im = img;
		struct pg_result r, v;

		if (pg_nest_build(img, lv))
			abort();
		pg_run_bare(img, size, PG_ISA_STANDARD, 50000000, &r);
		snprintf(what, sizeof(what),
			 "recursion: the OS under %d assembly VMM%s: output and memory as bare", lv,
			 lv > 1 ? "s, each under the next" : "");
		CHECK(what, r.halted && r.con.len == bare.con.len &&
				    !memcmp(r.con.buf, bare.con.buf, bare.con.len) &&
				    !memcmp(r.mem + base, bare.mem, sizeof(os)));
		snprintf(what, sizeof(what),
			 "recursion: level %d: the OS's user-mode trace as bare", lv);
		CHECK(what, user_trace_projected(&r, base, &bare));
		printf("  level %d: the OS's %zu instructions took %zu\n", lv, bare.trace.n,
		       r.trace.n);
		pg_run_vmm(&im, 1, size, PG_VMM_TRAP, PG_ISA_STANDARD, 0, 97, 50000000, &v);
		snprintf(what, sizeof(what),
			 "recursion: level %d under the C VMM: every instruction as bare", lv);
		CHECK(what, !pg_compare(&r, &v, 0).kind);
		pg_result_free(&r);
		pg_result_free(&v);
	}
	pg_result_free(&bare);
}

/* Runs the nested machine until the guest has made steps fetch attempts and
 * the assembly VMM is about to resume it: the point where the bare run
 * stopped. Every guest fetch is a real user-mode fetch, exactly once: the
 * VMM reads the instructions it emulates with ld. */
static void run_guest_steps(struct pg_machine *m, uint64_t steps)
{
	uint64_t guest = 0;

	while (!m->halted && m->steps < steps * 200) {
		if (m->psw.m == PG_MODE_U && guest++ == steps)
			return;
		pg_step(m);
	}
}

/* Random programs under the assembly VMM: at the same guest step as bare,
 * the same memory, output, registers, vPSW. */
static void test_nested_random(void)
{
	static uint64_t img[PG_VMMASM_BASE + RSIZE];
	uint64_t seed = 3, bad = 0, halted = 0;
	struct pg_asm syms;
	char what[128];

	for (int i = 0; i < NRAND; i++) {
		struct pg_result bare;
		struct pg_console con = {0};
		struct pg_machine m;
		struct pg_psw vp;

		pg_vmmasm_build(img, PG_VMMASM_BASE + RSIZE, &syms);
		pg_rand_program(&seed, img + PG_VMMASM_BASE, RSIZE);
		pg_run_bare(img + PG_VMMASM_BASE, RSIZE, PG_ISA_STANDARD, RSTEPS, &bare);
		pg_machine_init(&m, img, PG_VMMASM_BASE + RSIZE, PG_ISA_STANDARD, &con);
		pg_machine_reset(&m);
		run_guest_steps(&m, RSTEPS); /* a halted guest stops earlier */
		vp = pg_psw_make((uint32_t)img[pg_asm_lookup(&syms, "vm")],
				 (uint32_t)img[pg_asm_lookup(&syms, "vb")],
				 (uint32_t)img[pg_asm_lookup(&syms, "vl")],
				 m.psw.pc); /* vpc is stale while the guest runs directly */
		halted += bare.halted;
		if (m.halted != bare.halted || con.len != bare.con.len ||
		    memcmp(con.buf, bare.con.buf, con.len < PG_CON_MAX ? con.len : PG_CON_MAX) ||
		    memcmp(img + PG_VMMASM_BASE, bare.mem, sizeof(uint64_t) * RSIZE) ||
		    (!m.halted && (memcmp(m.r, bare.r, sizeof(m.r)) ||
				   pg_psw_pack(vp) != pg_psw_pack(bare.psw))))
			bad++;
		pg_result_free(&bare);
	}
	printf("  %d random programs under the assembly VMM, %llu of them halted: %llu differ\n",
	       NRAND, (unsigned long long)halted, (unsigned long long)bad);
	snprintf(what, sizeof(what),
		 "recursion: %d random programs: memory, output, registers, vPSW as bare", NRAND);
	CHECK(what, bad == 0);
}

void test_recursion(void)
{
	test_nested_os();
	test_nested_random();
}
