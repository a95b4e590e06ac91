/* `make pg-demo`: the chapter told by running it. The bare OS, two copies
 * of it under the trap-and-emulate VMM, a malicious guest stopped, the POPF
 * variant failing, and the two fixes, with their efficiency side by side. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"

#define LIMIT	   1000000
#define LIMIT_POPF 20000 /* the broken run may never halt */
#define SLICE	   97

static uint64_t os[PG_OS_SIZE], os_pv[PG_OS_SIZE], evil[PG_OS_SIZE];

/* Prints a console behind a bar, wrapped at spaces. */
static void show_output(const struct pg_console *c)
{
	size_t n = c->len < PG_CON_MAX ? c->len : PG_CON_MAX, col = 0;

	printf("   | ");
	for (size_t i = 0; i < n; i++) {
		if (c->buf[i] == '\n' || (c->buf[i] == ' ' && col >= 66)) {
			if (i + 1 < n)
				printf("\n   | ");
			col = 0;
			continue;
		}
		putchar(c->buf[i]);
		col++;
	}
	printf("\n");
}

/* The console as one short quoted line. */
static void show_quoted(const struct pg_console *c, size_t max)
{
	putchar('"');
	for (size_t i = 0; i < c->len && i < max && i < PG_CON_MAX; i++)
		fputs(c->buf[i] == '\n' ? "\\n" : (char[2]){c->buf[i], 0}, stdout);
	printf("%s\"", c->len > max ? "..." : "");
}

static const char *yes(int ok)
{
	return ok ? "yes" : "NO";
}

struct row {
	const char *approach, *isa;
	int equivalent;
	struct pg_result r;
};

static void row_print(const struct row *w, int pv)
{
	printf("   %-19s %-9s %-12s %6.1f%% %8llu %8llu\n", w->approach, w->isa,
	       pv && w->equivalent ? "yes, not 1:1" : yes(w->equivalent), pg_direct_pct(&w->r),
	       (unsigned long long)(w->r.trace.n - w->r.st.direct),
	       (unsigned long long)w->r.st.exits);
}

int main(void)
{
	const uint64_t *two[2] = {os, os}, *two_pv[2] = {os_pv, os_pv}, *pair[2] = {os, evil};
	struct pg_result bare, bare_popf, bare_pv, v[2], e[2];
	struct row rows[5];
	struct pg_diff d;
	size_t nuser, user0;
	int ok;

	if (pg_os_build(os, PG_OS_SIZE, 0, NULL) || pg_os_build(os_pv, PG_OS_SIZE, 1, NULL) ||
	    pg_evil_build(evil, PG_OS_SIZE, NULL))
		return 1;

	printf("1. The machine, and a tiny OS on it, bare.\n"
	       "   Privileged, so trapping in user mode: lpsw sseg halt out stim, and rpsw and\n"
	       "   rtim, which are behaviour-sensitive. The OS: trap handler, timer-driven round\n"
	       "   robin, putc and exit, three programs in their own segments (counters a and b,\n"
	       "   a prime sieve).\n");
	pg_run_bare(os, PG_OS_SIZE, PG_ISA_STANDARD, LIMIT, &bare);
	show_output(&bare.con);
	pg_user_trace_equal(&bare, &bare, &nuser);
	printf("   %zu instructions, %zu of them in user mode.\n\n", bare.trace.n, nuser);

	printf("2. Two copies of the same OS at once, under the trap-and-emulate VMM.\n"
	       "   Each runs in user mode with a virtual PSW; its traps are emulated or "
	       "reflected.\n");
	pg_run_vmm(two, 2, PG_OS_SIZE, PG_VMM_TRAP, PG_ISA_STANDARD, 0, SLICE, LIMIT, v);
	for (int i = 0; i < 2; i++) {
		ok = !pg_compare(&bare, &v[i], 0).kind;
		printf("   VM%d: output, memory, registers, all instructions as bare: %s; "
		       "user trace: %s\n",
		       i, yes(ok), yes(pg_user_trace_equal(&bare, &v[i], NULL)));
	}
	printf("   Efficiency: %.1f%% of VM0's instructions ran directly; %llu were emulated,\n"
	       "   %llu reflected. Its rpsw, emulated on the vPSW, still says \"mode s\".\n\n",
	       pg_direct_pct(&v[0]), (unsigned long long)v[0].st.emulated,
	       (unsigned long long)v[0].st.reflected);

	printf("3. Safety: a malicious guest as VM1, beside the OS.\n");
	{
		struct pg_vmm vmm;
		uint64_t *before;
		int same = 1;

		if (pg_vmm_init(&vmm, PG_VMM_TRAP, PG_ISA_STANDARD, 0, 2, PG_OS_SIZE, SLICE))
			return 1;
		for (int i = 0; i < 2; i++)
			memcpy(pg_vmm_vm_mem(&vmm, i), pair[i], sizeof(os));
		before = malloc(vmm.size * sizeof(*before));
		if (!before)
			return 1;
		memcpy(before, vmm.mem, vmm.size * sizeof(*before));
		pg_vmm_start(&vmm, LIMIT);
		pg_vmm_run(&vmm);
		for (uint32_t a = 1; a < vmm.size; a++)
			if (a < PG_VMM_RESERVED || a >= PG_VMM_RESERVED + 2 * PG_OS_SIZE)
				same &= a == 2 || a == 3 || vmm.mem[a] == before[a];
		same &= !memcmp(pg_vmm_vm_mem(&vmm, 0), bare.mem, sizeof(os)) &&
			vmm.vm[0].con.len == bare.con.len;
		printf("   It sets a segment over the next VM, stores past its memory, loads a\n"
		       "   PSW at B=60000, reads past its end. It prints ");
		show_quoted(&vmm.vm[1].con, 20);
		printf(": each attempt trapped.\n   The VMM cut its segment to its memory on %llu "
		       "resumes. VMM memory untouched,\n   VM0 as bare: %s.\n\n",
		       (unsigned long long)vmm.vm[1].st.clamped, yes(same));
		free(before);
		pg_vmm_free(&vmm);
	}

	printf("4. The theorem's failure: the POPF isa, where lpsw in user mode loads only the\n"
	       "   PC, silently. Bare, the OS is unchanged. Under trap-and-emulate, VM0:\n");
	pg_run_bare(os, PG_OS_SIZE, PG_ISA_POPF, LIMIT, &bare_popf);
	pg_run_vmm(two, 2, PG_OS_SIZE, PG_VMM_TRAP, PG_ISA_POPF, 0, SLICE, LIMIT_POPF, e);
	d = pg_compare(&bare_popf, &e[0], 0);
	pg_diff_print(&bare_popf, &e[0], d);
	printf("   The kernel's lpsw ran in real user mode: no trap, the VMM never saw it. The\n"
	       "   guest is still in virtual mode s, runs its MEM[0] as code, and prints\n   ");
	show_quoted(&e[0].con, 40);
	printf(".\n\n");

	printf("5. The fixes. Binary translation: before a guest-kernel block runs, the VMM\n"
	       "   scans it and rewrites lpsw into a trap. Paravirtualisation: the OS is built\n"
	       "   with 'hcall 0' for 'lpsw [0]'. Bare, that OS now prints");
	pg_run_bare(os_pv, PG_OS_SIZE, PG_ISA_POPF, LIMIT, &bare_pv);
	printf("\n   ");
	show_quoted(&bare_pv.con, 24);
	printf(".\n\n");

	rows[0] = (struct row){"trap-and-emulate", "standard", 1, v[0]};
	rows[1] = (struct row){"trap-and-emulate", "popf", !d.kind, e[0]};
	rows[2].approach = "emulation";
	pg_run_vmm(two, 2, PG_OS_SIZE, PG_VMM_EMULATE, PG_ISA_POPF, 0, SLICE, LIMIT, v);
	rows[2].r = v[0];
	pg_result_free(&v[1]);
	rows[3].approach = "binary translation";
	pg_run_vmm(two, 2, PG_OS_SIZE, PG_VMM_BT, PG_ISA_POPF, 0, SLICE, LIMIT, v);
	rows[3].r = v[0];
	pg_result_free(&v[1]);
	rows[4].approach = "paravirtualisation";
	pg_run_vmm(two_pv, 2, PG_OS_SIZE, PG_VMM_TRAP, PG_ISA_POPF, 1, SLICE, LIMIT, v);
	rows[4].r = v[0];
	pg_result_free(&v[1]);
	user0 = 0;
	for (int i = 2; i < 5; i++) {
		rows[i].isa = "popf";
		rows[i].equivalent = !pg_compare(&bare_popf, &rows[i].r, i == 4).kind &&
				     pg_user_trace_equal(&bare_popf, &rows[i].r, &user0);
	}
	printf("6. Efficiency, VM0 of two copies of the OS (%zu guest instructions).\n",
	       bare.trace.n);
	printf("   %-19s %-9s %-12s %7s %8s %8s\n", "approach", "isa", "equivalent", "direct",
	       "via VMM", "VMM entries");
	for (int i = 0; i < 5; i++)
		row_print(&rows[i], i == 4);
	printf("   Binary translation patched %llu lpsw, and comes back to scan at every block's\n"
	       "   end. The paravirtual OS differs from the original by the word it changed.\n"
	       "   All five are safe. The randomised checks (100,000 programs): make test-pg.\n",
	       (unsigned long long)rows[3].r.st.patched);
	printf("\n7. Recursion: the VMM in the machine's own assembly (pg/vmm.s) runs the OS,\n"
	       "   and runs under a copy of itself. Output and memory as bare:");
	for (int lv = 1; lv <= 2; lv++) {
		static uint64_t nest[PG_OS_SIZE + 2 * PG_VMMASM_BASE];
		uint32_t size = PG_OS_SIZE + (uint32_t)lv * PG_VMMASM_BASE;
		struct pg_result n;

		if (pg_nest_build(nest, lv))
			return 1;
		pg_run_bare(nest, size, PG_ISA_STANDARD, 50000000, &n);
		ok = n.con.len == bare.con.len && !memcmp(n.con.buf, bare.con.buf, bare.con.len) &&
		     !memcmp(n.mem + size - PG_OS_SIZE, bare.mem, sizeof(os));
		printf("%s\n   level %d: %s, %zu instructions (%.1fx)", lv == 1 ? "" : ";", lv,
		       yes(ok), n.trace.n, (double)n.trace.n / (double)bare.trace.n);
		pg_result_free(&n);
	}
	printf(".\n");
	for (int i = 0; i < 5; i++)
		pg_result_free(&rows[i].r);
	pg_result_free(&e[1]);
	pg_result_free(&bare);
	pg_result_free(&bare_popf);
	pg_result_free(&bare_pv);
	return 0;
}
