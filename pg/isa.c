/* The ISA as data: encoding, the opcode table with each instruction's class
 * in the chapter's terms, and the disassembler. The machine, the assembler
 * and the binary translator all read the classes from here, so there is one
 * place that says which instructions are sensitive. */
#include <stdio.h>
#include <string.h>

#include "pg.h"

#define SENS_CTL (PG_CL_PRIV | PG_CL_CONTROL)

static const struct pg_opinfo ops[256] = {
	[PG_OP_NOP] = {"nop", PG_FMT_NONE, 0},
	[PG_OP_LI] = {"li", PG_FMT_RI, 0},
	[PG_OP_LD] = {"ld", PG_FMT_MEM, 0},
	[PG_OP_ST] = {"st", PG_FMT_MEM, 0},
	[PG_OP_LDA] = {"lda", PG_FMT_ABS, 0},
	[PG_OP_STA] = {"sta", PG_FMT_ABS, 0},
	[PG_OP_ADD] = {"add", PG_FMT_RRR, 0},
	[PG_OP_SUB] = {"sub", PG_FMT_RRR, 0},
	[PG_OP_MUL] = {"mul", PG_FMT_RRR, 0},
	[PG_OP_DIV] = {"div", PG_FMT_RRR, 0},
	[PG_OP_MOD] = {"mod", PG_FMT_RRR, 0},
	[PG_OP_AND] = {"and", PG_FMT_RRR, 0},
	[PG_OP_OR] = {"or", PG_FMT_RRR, 0},
	[PG_OP_XOR] = {"xor", PG_FMT_RRR, 0},
	[PG_OP_SHL] = {"shl", PG_FMT_RRR, 0},
	[PG_OP_SHR] = {"shr", PG_FMT_RRR, 0},
	[PG_OP_ADDI] = {"addi", PG_FMT_RRI, 0},
	[PG_OP_JMP] = {"jmp", PG_FMT_J, PG_CL_BLOCKEND},
	[PG_OP_BEQ] = {"beq", PG_FMT_BR, PG_CL_BLOCKEND},
	[PG_OP_BNE] = {"bne", PG_FMT_BR, PG_CL_BLOCKEND},
	[PG_OP_BLT] = {"blt", PG_FMT_BR, PG_CL_BLOCKEND},
	[PG_OP_JAL] = {"jal", PG_FMT_RJ, PG_CL_BLOCKEND},
	[PG_OP_JR] = {"jr", PG_FMT_R, PG_CL_BLOCKEND},
	/* A trap in both modes, with the same effect: innocuous. */
	[PG_OP_SVC] = {"svc", PG_FMT_I, PG_CL_BLOCKEND},
	/* Loads mode, segment and PC at once. */
	[PG_OP_LPSW] = {"lpsw", PG_FMT_A, SENS_CTL | PG_CL_BLOCKEND},
	[PG_OP_SSEG] = {"sseg", PG_FMT_RR, SENS_CTL},
	[PG_OP_HALT] = {"halt", PG_FMT_NONE, SENS_CTL | PG_CL_BLOCKEND},
	/* The console is the machine's, not the program's: control-sensitive. */
	[PG_OP_OUT] = {"out", PG_FMT_R, SENS_CTL},
	[PG_OP_STIM] = {"stim", PG_FMT_R, SENS_CTL},
	/* Its result says which mode it ran in. */
	[PG_OP_RPSW] = {"rpsw", PG_FMT_R, PG_CL_PRIV | PG_CL_BEHAVIOUR},
	/* The timer is the machine's: a VMM virtualises it per VM. */
	[PG_OP_RTIM] = {"rtim", PG_FMT_R, PG_CL_PRIV | PG_CL_BEHAVIOUR},
	[PG_OP_HCALL] = {"hcall", PG_FMT_I, PG_CL_BLOCKEND},
};

uint64_t pg_psw_pack(struct pg_psw p)
{
	return (uint64_t)(p.pc & PG_FIELD) | (uint64_t)(p.l & PG_FIELD) << 16 |
	       (uint64_t)(p.b & PG_FIELD) << 32 | (uint64_t)(p.m & 1) << 48;
}

struct pg_psw pg_psw_unpack(uint64_t w)
{
	struct pg_psw p = {
		.pc = w & PG_FIELD,
		.l = (w >> 16) & PG_FIELD,
		.b = (w >> 32) & PG_FIELD,
		.m = (w >> 48) & 1,
	};
	return p;
}

struct pg_psw pg_psw_make(uint32_t m, uint32_t b, uint32_t l, uint32_t pc)
{
	return pg_psw_unpack(pg_psw_pack((struct pg_psw){.m = m, .b = b, .l = l, .pc = pc}));
}

uint64_t pg_insn(enum pg_op op, unsigned ra, unsigned rb, unsigned rc, int32_t imm)
{
	return (uint64_t)(op & 0xff) << 56 | (uint64_t)(ra & 0xf) << 52 |
	       (uint64_t)(rb & 0xf) << 48 | (uint64_t)(rc & 0xf) << 44 | (uint32_t)imm;
}

unsigned pg_insn_op(uint64_t w)
{
	return (unsigned)(w >> 56);
}

/* Register fields are 4 bits wide but only 8 registers exist: the top bit is
 * ignored, so that every word decodes to something. */
unsigned pg_insn_ra(uint64_t w)
{
	return (w >> 52) & (PG_NREGS - 1);
}

unsigned pg_insn_rb(uint64_t w)
{
	return (w >> 48) & (PG_NREGS - 1);
}

unsigned pg_insn_rc(uint64_t w)
{
	return (w >> 44) & (PG_NREGS - 1);
}

int32_t pg_insn_imm(uint64_t w)
{
	return (int32_t)(uint32_t)w;
}

const struct pg_opinfo *pg_opinfo(unsigned op)
{
	if (op > 0xff || !ops[op].name)
		return NULL;
	return &ops[op];
}

int pg_op_by_name(const char *name)
{
	for (int op = 0; op < 256; op++)
		if (ops[op].name && !strcmp(ops[op].name, name))
			return op;
	return -1;
}

int pg_op_offending(unsigned op, enum pg_isa isa)
{
	const struct pg_opinfo *oi = pg_opinfo(op);

	if (!oi || !(oi->cls & (PG_CL_CONTROL | PG_CL_BEHAVIOUR)))
		return 0;
	/* The one difference between the two ISAs. */
	return isa == PG_ISA_POPF && op == PG_OP_LPSW;
}

void pg_disasm(uint64_t w, char *buf, size_t len)
{
	const struct pg_opinfo *oi = pg_opinfo(pg_insn_op(w));
	unsigned a = pg_insn_ra(w), b = pg_insn_rb(w), c = pg_insn_rc(w);
	int32_t imm = pg_insn_imm(w);

	if (!oi) {
		snprintf(buf, len, ".word 0x%016llx", (unsigned long long)w);
		return;
	}
	switch (oi->fmt) {
	case PG_FMT_NONE:
		snprintf(buf, len, "%s", oi->name);
		break;
	case PG_FMT_RI:
		snprintf(buf, len, "%s r%u, %d", oi->name, a, imm);
		break;
	case PG_FMT_MEM:
		snprintf(buf, len, "%s r%u, [r%u%+d]", oi->name, a, b, imm);
		break;
	case PG_FMT_ABS:
		snprintf(buf, len, "%s r%u, [%d]", oi->name, a, imm);
		break;
	case PG_FMT_RRR:
		snprintf(buf, len, "%s r%u, r%u, r%u", oi->name, a, b, c);
		break;
	case PG_FMT_RRI:
		snprintf(buf, len, "%s r%u, r%u, %d", oi->name, a, b, imm);
		break;
	case PG_FMT_J:
	case PG_FMT_I:
		snprintf(buf, len, "%s %d", oi->name, imm);
		break;
	case PG_FMT_BR:
		snprintf(buf, len, "%s r%u, r%u, %d", oi->name, a, b, imm);
		break;
	case PG_FMT_RJ:
		snprintf(buf, len, "%s r%u, %d", oi->name, a, imm);
		break;
	case PG_FMT_R:
		snprintf(buf, len, "%s r%u", oi->name, a);
		break;
	case PG_FMT_RR:
		snprintf(buf, len, "%s r%u, r%u", oi->name, a, b);
		break;
	case PG_FMT_A:
		snprintf(buf, len, "%s [%d]", oi->name, imm);
		break;
	}
}
