/* Unit tests of the ISA's semantics, in both modes and both ISA flavours.
 * Each test assembles a few lines into a 64-word machine. MEM[1] sends every
 * trap to 'trap', which halts, so MEM[0..3] show what the trap saved. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define TSIZE 64

static uint64_t mem[TSIZE];
static struct pg_console con;
static struct pg_machine m;
static struct pg_asm syms;

/* Every test program starts with this: the trap slots, and a handler. */
static const char head[] = ".word 0\n"
			   ".psw s, 0, 64, trap\n"
			   ".word 0\n"
			   ".word 0\n"
			   "trap: halt\n";

/* Assembles head + src into a fresh machine and starts it at 'start' in the
 * given mode, with segment B, L. */
static void boot(const char *src, enum pg_isa isa, uint32_t mode, uint32_t b, uint32_t l)
{
	char text[2048], err[160];

	snprintf(text, sizeof(text), "%s%s", head, src);
	memset(&con, 0, sizeof(con));
	if (pg_assemble(text, NULL, mem, TSIZE, &syms, err, sizeof(err))) {
		printf("test_isa: cannot assemble: %s\n", err);
		abort();
	}
	pg_machine_init(&m, mem, TSIZE, isa, &con);
	pg_machine_reset(&m);
	m.psw = pg_psw_make(mode, b, l, (uint32_t)pg_asm_lookup(&syms, "start"));
}

static int64_t sym(const char *name)
{
	return pg_asm_lookup(&syms, name);
}

/* The PSW the last trap saved. */
static struct pg_psw saved(void)
{
	return pg_psw_unpack(mem[0]);
}

static void test_encoding(void)
{
	struct pg_psw p = pg_psw_make(PG_MODE_U, 1234, 567, 89), q;
	uint64_t w = pg_insn(PG_OP_BLT, 3, 4, 5, -7);

	q = pg_psw_unpack(pg_psw_pack(p));
	CHECK("psw: pack and unpack round-trip",
	      q.m == 1 && q.b == 1234 && q.l == 567 && q.pc == 89);
	CHECK("insn: fields decode", pg_insn_op(w) == PG_OP_BLT && pg_insn_ra(w) == 3 &&
					     pg_insn_rb(w) == 4 && pg_insn_rc(w) == 5 &&
					     pg_insn_imm(w) == -7);
}

static void test_alu(void)
{
	static const char src[] = "start: li r1, 7\n li r2, 3\n add r3, r1, r2\n sub r4, r2, r1\n"
				  " mul r5, r1, r2\n div r6, r1, r2\n mod r7, r1, r2\n"
				  " li r0, 1\n shl r1, r1, r0\n addi r2, r2, -5\n svc 0\n";

	for (uint32_t mode = 0; mode < 2; mode++) {
		char name[64];

		boot(src, PG_ISA_STANDARD, mode, 0, TSIZE);
		pg_run(&m, 100);
		snprintf(name, sizeof(name), "alu: arithmetic in mode %c", mode ? 'u' : 's');
		CHECK(name, m.r[3] == 10 && m.r[4] == (uint64_t)-4 && m.r[5] == 21 && m.r[6] == 2 &&
				    m.r[7] == 1 && m.r[1] == 14 && m.r[2] == (uint64_t)-2 &&
				    mem[2] == PG_TRAP_SVC);
	}
	boot("start: li r1, 0xf0\n li r2, 0x3c\n and r3, r1, r2\n or r4, r1, r2\n"
	     " xor r5, r1, r2\n li r0, 4\n shr r6, r1, r0\n halt\n",
	     PG_ISA_STANDARD, PG_MODE_S, 0, TSIZE);
	pg_run(&m, 100);
	CHECK("alu: logic and shifts",
	      m.r[3] == 0x30 && m.r[4] == 0xfc && m.r[5] == 0xcc && m.r[6] == 0xf);
	boot("start: li r1, 5\n li r2, 0\n div r3, r1, r2\n", PG_ISA_STANDARD, PG_MODE_U, 0, TSIZE);
	pg_run(&m, 100);
	CHECK("alu: division by zero traps at the div",
	      mem[2] == PG_TRAP_DIV && saved().pc == sym("start") + 2 && m.r[3] == 0);
}

static void test_branches(void)
{
	boot("start: li r1, -1\n li r2, 1\n li r5, 0\n blt r1, r2, l1\n halt\n"
	     "l1: addi r5, r5, 1\n beq r1, r1, l2\n halt\n"
	     "l2: addi r5, r5, 1\n bne r1, r1, l3\n jal r6, sub\n halt\n"
	     "l3: halt\n sub: addi r5, r5, 10\n jr r6\n",
	     PG_ISA_STANDARD, PG_MODE_S, 0, TSIZE);
	pg_run(&m, 100);
	CHECK("branch: blt is signed, beq, bne, jal and jr", m.r[5] == 12 && m.halted);
}

static void test_memory(void)
{
	boot("start: li r1, 77\n li r2, 2\n st r1, [r2+3]\n ld r3, [5]\n svc 1\n", PG_ISA_STANDARD,
	     PG_MODE_S, 0, TSIZE);
	pg_run(&m, 100);
	CHECK("memory: st and ld with base and offset", mem[5] == 77 && m.r[3] == 77);
	boot("user: li r1, 99\n sta r1, [10]\n lda r4, [10]\n svc 2\n start: jmp user\n",
	     PG_ISA_STANDARD, PG_MODE_U, 32, 16);
	m.psw.pc = 0;
	for (uint32_t i = 0; i < 4; i++)
		mem[32 + i] = mem[5 + i]; /* the user code at physical 32 */
	pg_run(&m, 100);
	CHECK("memory: user addresses are relocated by B",
	      mem[42] == 99 && m.r[4] == 99 && mem[2] == PG_TRAP_SVC && mem[3] == 2);
	boot("start: li r1, 1\n st r1, [20]\n", PG_ISA_STANDARD, PG_MODE_U, 0, 20);
	pg_run(&m, 100);
	CHECK("memory: an access at L traps, saving the faulting PC",
	      mem[2] == PG_TRAP_MEM && mem[3] == 20 && saved().pc == sym("start") + 1 &&
		      saved().m == PG_MODE_U && mem[20] == 0);
	boot("start: ld r1, [10]\n", PG_ISA_STANDARD, PG_MODE_U, 60, 100);
	m.psw.pc = 0;
	mem[60] = pg_insn(PG_OP_LDA, 1, 0, 0, 10);
	pg_run(&m, 100);
	CHECK("memory: inside L but past physical memory traps the same way",
	      mem[2] == PG_TRAP_MEM && mem[3] == 10);
	boot("start: nop\n", PG_ISA_STANDARD, PG_MODE_U, 0, 8);
	m.psw.pc = 8;
	pg_run(&m, 100);
	CHECK("memory: a fetch past L traps with the PC", mem[2] == PG_TRAP_MEM && mem[3] == 8);
}

static void test_traps(void)
{
	boot("start: svc 42\n", PG_ISA_STANDARD, PG_MODE_U, 2, 40);
	m.psw.pc = (uint32_t)sym("start") - 2;
	pg_step(&m);
	CHECK("trap: svc saves PSW with PC+1 in MEM[0], loads MEM[1]",
	      saved().m == PG_MODE_U && saved().b == 2 && saved().l == 40 &&
		      saved().pc == sym("start") - 1 && mem[2] == PG_TRAP_SVC && mem[3] == 42 &&
		      m.psw.m == PG_MODE_S && m.psw.b == 0 && m.psw.pc == sym("trap"));
	for (uint32_t mode = 0; mode < 2; mode++) {
		boot("start: .word 0x7700000000000000\n", PG_ISA_STANDARD, mode, 0, TSIZE);
		pg_run(&m, 10);
		CHECK(mode ? "trap: undefined opcode traps in user mode"
			   : "trap: undefined opcode traps in supervisor mode",
		      mem[2] == PG_TRAP_ILL && mem[3] == 0x77 && saved().pc == sym("start"));
		boot("start: hcall 3\n", PG_ISA_STANDARD, mode, 0, TSIZE);
		pg_run(&m, 10);
		CHECK(mode ? "trap: hcall traps in user mode"
			   : "trap: hcall traps in supervisor mode",
		      mem[2] == PG_TRAP_HCALL && mem[3] == 3);
	}
	memset(mem, 0, sizeof(mem));
	mem[1] = pg_psw_pack(pg_psw_make(PG_MODE_S, 4, 30, 7));
	pg_machine_init(&m, mem, TSIZE, PG_ISA_STANDARD, &con);
	pg_machine_reset(&m);
	CHECK("reset: loads the PSW from MEM[1]",
	      m.psw.m == PG_MODE_S && m.psw.b == 4 && m.psw.l == 30 && m.psw.pc == 7);
}

/* Each privileged instruction: what it does in supervisor mode, and that in
 * user mode it traps before doing anything. */
static void test_privileged(void)
{
	static const char *const prog[] = {
		"start: lpsw [p]\n p: .psw u, 8, 20, 3\n",
		"start: li r1, 8\n li r2, 20\n sseg r1, r2\n",
		"start: halt\n",
		"start: li r1, 'z'\n out r1\n",
		"start: li r1, 5\n stim r1\n",
		"start: rpsw r3\n",
		"start: rtim r3\n",
	};
	static const char *const what[] = {"lpsw", "sseg", "halt", "out", "stim", "rpsw", "rtim"};
	static const unsigned op[] = {PG_OP_LPSW, PG_OP_SSEG, PG_OP_HALT, PG_OP_OUT,
				      PG_OP_STIM, PG_OP_RPSW, PG_OP_RTIM};
	static const int len[] = {1, 3, 1, 2, 2, 1, 1};

	for (int i = 0; i < 7; i++) {
		char name[96];
		int ok;

		boot(prog[i], PG_ISA_STANDARD, PG_MODE_S, 0, TSIZE);
		m.timer = 9; /* frozen in supervisor mode: rtim reads it as is */
		pg_run(&m, (uint64_t)len[i]);
		switch (i) {
		case 0:
			ok = m.psw.m == PG_MODE_U && m.psw.b == 8 && m.psw.l == 20 && m.psw.pc == 3;
			break;
		case 1:
			ok = m.psw.m == PG_MODE_S && m.psw.b == 8 && m.psw.l == 20;
			break;
		case 2:
			ok = m.halted;
			break;
		case 3:
			ok = con.len == 1 && con.buf[0] == 'z';
			break;
		case 4:
			ok = m.timer == 5 && m.r[1] == 5;
			break;
		case 5:
			ok = pg_psw_unpack(m.r[3]).m == PG_MODE_S &&
			     pg_psw_unpack(m.r[3]).pc == sym("start") + 1;
			break;
		default:
			ok = m.r[3] == 9;
		}
		snprintf(name, sizeof(name), "privileged: %s works in supervisor mode", what[i]);
		CHECK(name, ok);

		boot(prog[i], PG_ISA_STANDARD, PG_MODE_U, 0, TSIZE);
		m.timer = 0;
		pg_run(&m, (uint64_t)len[i]);
		snprintf(name, sizeof(name), "privileged: %s traps in user mode, doing nothing",
			 what[i]);
		CHECK(name, mem[2] == PG_TRAP_PRIV && mem[3] == op[i] && con.len == 0 &&
				    m.timer == 0 && saved().m == PG_MODE_U && saved().b == 0 &&
				    saved().l == TSIZE && m.r[3] == 0 &&
				    pg_insn_op(mem[saved().pc]) == op[i]);
	}
}

static void test_popf(void)
{
	boot("start: lpsw [p]\n nop\n nop\n nop\n p: .psw s, 0, 64, 33\n", PG_ISA_POPF, PG_MODE_U,
	     0, 40);
	pg_step(&m);
	CHECK("popf isa: lpsw in user mode does not trap, loads only the PC",
	      m.traps == 0 && m.psw.m == PG_MODE_U && m.psw.b == 0 && m.psw.l == 40 &&
		      m.psw.pc == 33);
	boot("start: lpsw [p]\n p: .psw u, 8, 20, 3\n", PG_ISA_POPF, PG_MODE_S, 0, TSIZE);
	pg_step(&m);
	CHECK("popf isa: lpsw in supervisor mode loads the whole PSW",
	      m.psw.m == PG_MODE_U && m.psw.b == 8 && m.psw.l == 20 && m.psw.pc == 3);
	boot("start: sseg r1, r1\n", PG_ISA_POPF, PG_MODE_U, 0, TSIZE);
	pg_step(&m);
	CHECK("popf isa: the other privileged instructions still trap", mem[2] == PG_TRAP_PRIV);
}

static void test_timer(void)
{
	/* The kernel arms the timer for 3 and returns to a user loop. */
	boot("start: li r1, 3\n stim r1\n nop\n lpsw [p]\n"
	     "loop: addi r2, r2, 1\n jmp loop\n p: .psw u, 0, 64, loop\n",
	     PG_ISA_STANDARD, PG_MODE_S, 0, TSIZE);
	pg_run(&m, 100);
	CHECK("timer: fires after 3 user instructions, frozen in supervisor mode",
	      mem[2] == PG_TRAP_TIMER && m.r[2] == 2 && m.steps == 4 + 3 + 1);
	CHECK("timer: saves the PC of the next instruction",
	      saved().m == PG_MODE_U && saved().pc == sym("loop") + 1);
}

static void test_classes(void)
{
	int ok = 1, offending = 0;

	/* The theorem's condition, read off the table. */
	for (unsigned op = 0; op < 256; op++) {
		const struct pg_opinfo *oi = pg_opinfo(op);

		if (oi && (oi->cls & (PG_CL_CONTROL | PG_CL_BEHAVIOUR)) && !(oi->cls & PG_CL_PRIV))
			ok = 0;
		ok &= !pg_op_offending(op, PG_ISA_STANDARD);
		offending += pg_op_offending(op, PG_ISA_POPF);
	}
	CHECK("classes: standard isa: sensitive is a subset of privileged", ok);
	CHECK("classes: popf isa: exactly lpsw is sensitive but not privileged",
	      offending == 1 && pg_op_offending(PG_OP_LPSW, PG_ISA_POPF));
}

static void test_determinism(void)
{
	static uint64_t img[PG_OS_SIZE];
	struct pg_result a, b;

	pg_os_build(img, PG_OS_SIZE, 0, NULL);
	pg_run_bare(img, PG_OS_SIZE, PG_ISA_STANDARD, 1000000, &a);
	pg_run_bare(img, PG_OS_SIZE, PG_ISA_STANDARD, 1000000, &b);
	CHECK("determinism: the same program gives the same trace", !pg_compare(&a, &b, 0).kind);
	pg_result_free(&a);
	pg_result_free(&b);
}

void test_isa(void)
{
	test_encoding();
	test_alu();
	test_branches();
	test_memory();
	test_traps();
	test_privileged();
	test_popf();
	test_timer();
	test_classes();
	test_determinism();
}
