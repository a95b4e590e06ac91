/* Randomised checks: 100,000 random guest programs run bare and under the
 * VMM leave identical traces; on the POPF isa random programs find a
 * counterexample, which binary translation and paravirtualisation remove;
 * random malicious programs never touch memory outside their VM. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define RSIZE  64  /* words per random guest */
#define RLIMIT 100 /* steps per random guest */
#define NRAND  100000
#define NSPLIT 4000
#define NEVIL  20000

static uint32_t slice_for(uint64_t i)
{
	return 1 + (uint32_t)(i % 13); /* short, varied slices: many VM switches */
}

static void test_random_equivalence(void)
{
	static uint64_t img[2][RSIZE];
	const uint64_t *imgs[2] = {img[0], img[1]};
	uint64_t seed = 15, bad = 0, user = 0, reflected = 0, emulated = 0, vtimer = 0, steps = 0;
	char what[160];

	for (uint64_t i = 0; i < NRAND / 2; i++) {
		struct pg_result bare[2], v[2];

		pg_rand_program(&seed, img[0], RSIZE);
		pg_rand_program(&seed, img[1], RSIZE);
		if (pg_run_vmm(imgs, 2, RSIZE, PG_VMM_TRAP, PG_ISA_STANDARD, 0, slice_for(i),
			       RLIMIT, v))
			abort();
		for (int k = 0; k < 2; k++) {
			struct pg_diff d;

			pg_run_bare(img[k], RSIZE, PG_ISA_STANDARD, RLIMIT, &bare[k]);
			d = pg_compare(&bare[k], &v[k], 0);
			if (d.kind && bad++ == 0) {
				printf("  program %llu differs (%s):\n",
				       (unsigned long long)(2 * i + k), d.kind);
				pg_diff_print(&bare[k], &v[k], d);
			}
			for (size_t j = 0; j < v[k].trace.n; j++)
				if (v[k].trace.rec[j].m == PG_MODE_U) {
					user++;
					break;
				}
			reflected += v[k].st.reflected > 0;
			emulated += v[k].st.emulated > 0;
			vtimer += v[k].st.vtimer > 0;
			steps += v[k].trace.n;
			pg_result_free(&bare[k]);
			pg_result_free(&v[k]);
		}
	}
	snprintf(what, sizeof(what),
		 "random: %d programs, bare and under trap-and-emulate, identical traces", NRAND);
	CHECK(what, bad == 0);
	printf("  coverage: %llu%% reached user mode, %llu%% had a trap reflected, %llu%% an "
	       "instruction emulated, %llu%% a virtual timer interrupt; %llu instructions\n",
	       (unsigned long long)(user * 100 / NRAND),
	       (unsigned long long)(reflected * 100 / NRAND),
	       (unsigned long long)(emulated * 100 / NRAND),
	       (unsigned long long)(vtimer * 100 / NRAND), (unsigned long long)steps);
	CHECK("random: the programs exercise both modes, traps, emulation and the timer",
	      user * 4 > NRAND && reflected * 2 > NRAND && emulated * 2 > NRAND &&
		      vtimer * 50 > NRAND);
}

/* Runs one program under kind on the POPF isa; 1 if it matches bare. */
static int popf_equal(const uint64_t *img, const struct pg_result *bare, enum pg_vmm_kind kind,
		      int pv, int show)
{
	struct pg_result v;
	struct pg_diff d;

	if (pg_run_vmm(&img, 1, RSIZE, kind, PG_ISA_POPF, pv, 7, RLIMIT, &v))
		abort();
	d = pg_compare(bare, &v, pv);
	if (show)
		pg_diff_print(bare, &v, d);
	pg_result_free(&v);
	return !d.kind;
}

static void test_random_variant(void)
{
	static uint64_t img[RSIZE], img_pv[RSIZE];
	uint64_t seed = 99, te_bad = 0, bt_bad = 0, pv_bad = 0, first = 0;
	char what[160];

	for (uint64_t i = 0; i < NSPLIT; i++) {
		struct pg_result bare;
		int te;

		pg_rand_program_split(&seed, img, RSIZE);
		memcpy(img_pv, img, sizeof(img));
		pg_paravirtualise(img_pv, RSIZE);
		pg_run_bare(img, RSIZE, PG_ISA_POPF, RLIMIT, &bare);
		te = popf_equal(img, &bare, PG_VMM_TRAP, 0, 0);
		if (!te && te_bad++ == 0) {
			first = i;
			printf("  popf counterexample: program %llu, trap-and-emulate:\n",
			       (unsigned long long)i);
			popf_equal(img, &bare, PG_VMM_TRAP, 0, 1);
			printf("  the same program, binary translation:\n");
			CHECK("random popf: binary translation removes the first counterexample",
			      popf_equal(img, &bare, PG_VMM_BT, 0, 1));
			CHECK("random popf: paravirtualisation removes the first counterexample",
			      popf_equal(img_pv, &bare, PG_VMM_TRAP, 1, 0));
		}
		bt_bad += !popf_equal(img, &bare, PG_VMM_BT, 0, 0);
		pv_bad += !popf_equal(img_pv, &bare, PG_VMM_TRAP, 1, 0);
		pg_result_free(&bare);
	}
	printf("  popf isa, %d programs: trap-and-emulate wrong on %llu (first: %llu), binary "
	       "translation on %llu, paravirtualisation on %llu\n",
	       NSPLIT, (unsigned long long)te_bad, (unsigned long long)first,
	       (unsigned long long)bt_bad, (unsigned long long)pv_bad);
	CHECK("random popf: trap-and-emulate has counterexamples", te_bad > 0);
	snprintf(what, sizeof(what), "random popf: binary translation equivalent on all %d",
		 NSPLIT);
	CHECK(what, bt_bad == 0);
	snprintf(what, sizeof(what), "random popf: paravirtualisation equivalent on all %d",
		 NSPLIT);
	CHECK(what, pv_bad == 0);
}

static void test_random_safety(void)
{
	static uint64_t img[2][RSIZE], before[PG_VMM_RESERVED + 2 * RSIZE + PG_VMM_GUARD];
	uint64_t seed = 7, touched = 0, neighbour = 0, clamped = 0;
	char what[160];

	for (uint64_t i = 0; i < NEVIL; i++) {
		int e = (int)(i & 1); /* the malicious one, below or above its neighbour */
		struct pg_vmm v;
		struct pg_result bare;

		pg_rand_program_evil(&seed, img[e], RSIZE);
		pg_rand_program(&seed, img[!e], RSIZE);
		if (pg_vmm_init(&v, i % 3 == 2 ? PG_VMM_BT : PG_VMM_TRAP, PG_ISA_STANDARD, 0, 2,
				RSIZE, slice_for(i)))
			abort();
		for (int k = 0; k < 2; k++)
			memcpy(pg_vmm_vm_mem(&v, k), img[k], sizeof(img[k]));
		memcpy(before, v.mem, sizeof(before));
		pg_vmm_start(&v, RLIMIT);
		pg_vmm_run(&v);
		for (uint32_t a = 1; a < v.size; a++)
			if ((a < PG_VMM_RESERVED || a >= PG_VMM_RESERVED + 2 * RSIZE) && a != 2 &&
			    a != 3 && v.mem[a] != before[a])
				touched++;
		pg_run_bare(img[!e], RSIZE, PG_ISA_STANDARD, RLIMIT, &bare);
		if (memcmp(bare.mem, pg_vmm_vm_mem(&v, !e), sizeof(img[0])) ||
		    bare.con.len != v.vm[!e].con.len)
			neighbour++;
		clamped += v.vm[e].st.clamped > 0;
		pg_result_free(&bare);
		pg_vmm_free(&v);
	}
	printf("  %d malicious programs: %llu%% had their segment cut to their VM\n", NEVIL,
	       (unsigned long long)(clamped * 100 / NEVIL));
	snprintf(what, sizeof(what),
		 "random safety: %d malicious programs never touch the VMM or the guard", NEVIL);
	CHECK(what, touched == 0);
	CHECK("random safety: nor their neighbour, which runs as on its bare machine",
	      neighbour == 0);
	CHECK("random safety: the malicious programs did try", clamped * 4 > NEVIL);
}

void test_random(void)
{
	test_random_equivalence();
	test_random_variant();
	test_random_safety();
}
