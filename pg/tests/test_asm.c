/* Tests of the assembler: what it emits, and that bad input is refused with
 * the line and the reason. */
#include <string.h>

#include "check.h"

#define ASIZE 64

static uint64_t mem[ASIZE];
static struct pg_asm syms;
static char err[160];

static int assemble(const char *src, const char *const *defs)
{
	memset(mem, 0, sizeof(mem));
	return pg_assemble(src, defs, mem, ASIZE, &syms, err, sizeof(err));
}

static void test_emit(void)
{
	static const char src[] = "\t.equ N, 2 * (3 + 4)\n"
				  "\t.org 4\n"
				  "top:\tli r1, N - 1 ; a comment; with 'quotes'\n"
				  "\tld r2, [r1+top]\n"
				  "\tst r2, [top]\n"
				  "\tbeq r1, r2, top\n"
				  "\tlpsw [0]\n"
				  "\t.psw u, 16, 32, top\n"
				  "\t.string \"a;b\\n\"\n"
				  "\t.section 40\n"
				  "sec:\tjmp sec\n"
				  "\tli r3, ','\n";
	int rc = assemble(src, NULL);

	CHECK("asm: a program with labels, .equ and expressions assembles", rc == 0);
	CHECK("asm: instructions encode as documented",
	      mem[4] == pg_insn(PG_OP_LI, 1, 0, 0, 13) && mem[5] == pg_insn(PG_OP_LD, 2, 1, 0, 4) &&
		      mem[6] == pg_insn(PG_OP_STA, 2, 0, 0, 4) &&
		      mem[7] == pg_insn(PG_OP_BEQ, 1, 2, 0, 4) &&
		      mem[8] == pg_insn(PG_OP_LPSW, 0, 0, 0, 0));
	CHECK("asm: .psw and .string", mem[9] == pg_psw_pack(pg_psw_make(1, 16, 32, 4)) &&
					       mem[10] == 'a' && mem[11] == ';' && mem[12] == 'b' &&
					       mem[13] == '\n' && mem[14] == 0);
	CHECK("asm: .section places code at its base, labels count from 0",
	      pg_asm_lookup(&syms, "sec") == 0 && mem[40] == pg_insn(PG_OP_JMP, 0, 0, 0, 0) &&
		      mem[41] == pg_insn(PG_OP_LI, 3, 0, 0, ','));
}

static void test_ifdef(void)
{
	static const char src[] = ".ifdef PV\n hcall 0\n.else\n lpsw [0]\n.endif\n";
	static const char *const pv[] = {"PV", NULL};

	assemble(src, NULL);
	CHECK("asm: .ifdef off takes .else", pg_insn_op(mem[0]) == PG_OP_LPSW);
	assemble(src, pv);
	CHECK("asm: .ifdef on takes the first branch", pg_insn_op(mem[0]) == PG_OP_HCALL);
}

static void test_errors(void)
{
	CHECK("asm: unknown instruction is refused with its line",
	      assemble("nop\n frob r1\n", NULL) < 0 && strstr(err, "line 2") &&
		      strstr(err, "frob"));
	CHECK("asm: undefined symbol is refused",
	      assemble("jmp nowhere\n", NULL) < 0 && strstr(err, "nowhere"));
	CHECK("asm: bad register is refused", assemble("li r9, 1\n", NULL) < 0);
	CHECK("asm: wrong operand count is refused", assemble("add r1, r2\n", NULL) < 0);
	CHECK("asm: code past memory is refused", assemble(".org 63\n nop\n nop\n", NULL) < 0);
	CHECK("asm: a label defined twice is refused", assemble("a: nop\na: nop\n", NULL) < 0);
	CHECK("asm: unbalanced .ifdef is refused", assemble(".ifdef X\n", NULL) < 0);
	CHECK("asm: lpsw with a register is refused", assemble("lpsw [r1]\n", NULL) < 0);
}

static void test_guests(void)
{
	static uint64_t img[PG_OS_SIZE];
	struct pg_asm s;

	CHECK("asm: the OS assembles", pg_os_build(img, PG_OS_SIZE, 0, &s) == 0);
	CHECK("asm: the OS kernel stays below the first user segment",
	      pg_asm_lookup(&s, "bye") + 40 < pg_asm_lookup(&s, "A_BASE"));
	CHECK("asm: the paravirtual OS assembles", pg_os_build(img, PG_OS_SIZE, 1, NULL) == 0);
	CHECK("asm: the malicious guest assembles", pg_evil_build(img, PG_OS_SIZE, NULL) == 0);
}

void test_asm(void)
{
	test_emit();
	test_ifdef();
	test_errors();
	test_guests();
}
