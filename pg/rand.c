/* Random guest programs for the randomised checks. A program is a whole
 * memory image: MEM[1] is its power-on PSW, and the rest is mostly random
 * instructions, with operands drawn small enough to hit the program's own
 * memory, segments and PSWs often: so that random code goes to user mode,
 * traps back, sets the timer, faults and halts within a hundred steps. */
#include "pg.h"

#define SPLIT_CODE  44 /* split programs: code in [4, 44), then a jump back */
#define SPLIT_DATA  48 /* data they may write in [48, 56) */
#define SPLIT_PSWS  56 /* PSWs they may load in [56, 64) */
#define SPLIT_WORDS 64

uint64_t pg_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint32_t below(uint64_t *s, uint32_t n)
{
	return (uint32_t)(pg_rand(s) % n);
}

/* A PSW mostly inside the program's memory; an evil one mostly not. */
static uint64_t rand_psw(uint64_t *s, uint32_t size, int evil)
{
	uint32_t m = below(s, 10) < 7 ? PG_MODE_U : PG_MODE_S;
	uint32_t b = below(s, 3) ? 0 : below(s, size + 8);
	uint32_t l = below(s, 3) ? size : below(s, size + 16);

	if (evil && below(s, 2)) {
		b = below(s, 2) ? size + below(s, 64) : below(s, PG_FIELD + 1);
		l = below(s, PG_FIELD + 1);
	}
	return pg_psw_pack(pg_psw_make(m, b, l, below(s, size)));
}

static const uint8_t ops_all[] = {
	PG_OP_NOP,  PG_OP_LI,	PG_OP_LI,   PG_OP_LI,	 PG_OP_LD,   PG_OP_ST,	 PG_OP_LDA,
	PG_OP_STA,  PG_OP_ADD,	PG_OP_SUB,  PG_OP_MUL,	 PG_OP_DIV,  PG_OP_MOD,	 PG_OP_AND,
	PG_OP_OR,   PG_OP_XOR,	PG_OP_SHL,  PG_OP_SHR,	 PG_OP_ADDI, PG_OP_ADDI, PG_OP_JMP,
	PG_OP_BEQ,  PG_OP_BNE,	PG_OP_BLT,  PG_OP_JAL,	 PG_OP_JR,   PG_OP_SVC,	 PG_OP_SVC,
	PG_OP_LPSW, PG_OP_LPSW, PG_OP_LPSW, PG_OP_SSEG,	 PG_OP_HALT, PG_OP_OUT,	 PG_OP_STIM,
	PG_OP_STIM, PG_OP_RPSW, PG_OP_RTIM, PG_OP_HCALL, PG_OP_ILL,
};

/* Mostly instructions that do not trap, so that the timer gets to fire. */
static const uint8_t ops_calm[] = {
	PG_OP_NOP,  PG_OP_LI,  PG_OP_LI,  PG_OP_ADD, PG_OP_SUB, PG_OP_XOR, PG_OP_ADDI,
	PG_OP_ADDI, PG_OP_JMP, PG_OP_BEQ, PG_OP_BNE, PG_OP_BLT, PG_OP_LDA, PG_OP_SVC,
};

/* No indexed memory, no jr, no sseg, no hcall: see pg_rand_program_split. */
static const uint8_t ops_split[] = {
	PG_OP_NOP,  PG_OP_LI,	PG_OP_LI,   PG_OP_LI,	PG_OP_LDA,  PG_OP_STA, PG_OP_STA,
	PG_OP_ADD,  PG_OP_SUB,	PG_OP_MUL,  PG_OP_DIV,	PG_OP_XOR,  PG_OP_SHR, PG_OP_ADDI,
	PG_OP_ADDI, PG_OP_JMP,	PG_OP_BEQ,  PG_OP_BNE,	PG_OP_BLT,  PG_OP_JAL, PG_OP_SVC,
	PG_OP_SVC,  PG_OP_LPSW, PG_OP_LPSW, PG_OP_LPSW, PG_OP_HALT, PG_OP_OUT, PG_OP_STIM,
	PG_OP_STIM, PG_OP_RPSW, PG_OP_RTIM, PG_OP_ILL,
};

static uint64_t rand_insn(uint64_t *s, uint32_t size, int evil, int calm)
{
	unsigned op =
		calm ? ops_calm[below(s, sizeof(ops_calm))] : ops_all[below(s, sizeof(ops_all))];
	const struct pg_opinfo *oi = pg_opinfo(op);
	int64_t imm = 0;

	if (evil && below(s, 4) == 0) /* escape attempts */
		op = below(s, 2) ? PG_OP_SSEG : PG_OP_STA;
	oi = pg_opinfo(op);
	switch (oi ? oi->fmt : PG_FMT_NONE) {
	case PG_FMT_RI: {
		uint32_t k = below(s, 10);

		imm = k < 4   ? below(s, size)
		      : k < 7 ? (int64_t)below(s, 7) - 3
			      : (int32_t)pg_rand(s);
		if (evil && k >= 7)
			imm = below(s, PG_FIELD + 1);
		break;
	}
	case PG_FMT_MEM:
		imm = (int64_t)below(s, size + 4) - 2;
		break;
	case PG_FMT_ABS:
		imm = evil && below(s, 2) ? size + below(s, PG_FIELD) : below(s, size + 4);
		break;
	case PG_FMT_RRI:
		imm = (int64_t)below(s, 9) - 4;
		break;
	case PG_FMT_J:
	case PG_FMT_BR:
	case PG_FMT_RJ:
		imm = below(s, size);
		break;
	case PG_FMT_I:
		imm = below(s, 4);
		break;
	case PG_FMT_A:
		imm = below(s, 2) ? 0 : below(s, size);
		break;
	default:
		break;
	}
	return pg_insn((enum pg_op)op, below(s, PG_NREGS), below(s, PG_NREGS), below(s, PG_NREGS),
		       (int32_t)imm);
}

/* A PSW for a user program, from the PSW table. */
static uint64_t user_psw(uint64_t *s, uint32_t size, int evil, int calm)
{
	uint32_t b = calm ? 0 : below(s, size / 2), l = calm ? size : 8 + below(s, size);

	if (evil && below(s, 2))
		return rand_psw(s, size, evil);
	return pg_psw_pack(pg_psw_make(below(s, 8) ? PG_MODE_U : PG_MODE_S, b, l,
				       below(s, l < size ? l : size)));
}

/* Three programs in four are shaped like an OS: a trap handler at 4 that may
 * arm the timer, runs a few random instructions, and loads a PSW, either the
 * one the trap saved or one from the table at the top of memory; everything
 * else is random. The rest start anywhere with any MEM[1]. One in four is
 * calm: fewer instructions that trap, user segments over all of memory, so
 * that user code runs long enough for the timer. */
static void program(uint64_t *s, uint64_t *mem, uint32_t size, int evil)
{
	uint32_t table = size - 4, i = 4;
	int calm = below(s, 4) == 0;

	for (uint32_t k = 4; k < table; k++) {
		uint32_t r = below(s, 20);

		mem[k] = r < 17 || calm ? rand_insn(s, size, evil, calm)
			 : r < 19	? rand_psw(s, size, evil)
					: below(s, size);
	}
	for (uint32_t k = table; k < size; k++)
		mem[k] = user_psw(s, size, evil, calm);
	mem[0] = rand_psw(s, size, evil);
	mem[2] = PG_TRAP_RESET;
	mem[3] = 0;
	if (below(s, 4)) {
		mem[0] = user_psw(s, size, evil, calm);
		mem[1] = pg_psw_pack(pg_psw_make(PG_MODE_S, 0, size, 4));
		for (uint32_t k = below(s, 4); k > 0; k--) /* work that cannot trap */
			mem[i++] = pg_insn(below(s, 2) ? PG_OP_ADDI : PG_OP_LI, below(s, 7),
					   below(s, 7), 0, (int32_t)below(s, size));
		if (below(s, 2)) {
			mem[i++] = pg_insn(PG_OP_LI, 7, 0, 0, (int32_t)(1 + below(s, 24)));
			mem[i++] = pg_insn(PG_OP_STIM, 7, 0, 0, 0);
		}
		mem[i] = pg_insn(PG_OP_LPSW, 0, 0, 0,
				 (int32_t)(below(s, 2) ? 0 : table + below(s, 4)));
	} else {
		mem[1] = below(s, 8) ? pg_psw_pack(pg_psw_make(PG_MODE_S, 0, size,
							       4 + below(s, size - 4)))
				     : rand_psw(s, size, evil);
	}
}

void pg_rand_program(uint64_t *state, uint64_t *mem, uint32_t size)
{
	program(state, mem, size, 0);
}

void pg_rand_program_evil(uint64_t *state, uint64_t *mem, uint32_t size)
{
	program(state, mem, size, 1);
}

/* A PSW for split programs: segment at 0, so that code stays below
 * SPLIT_DATA physically too, and a PC inside the code. */
static uint64_t split_psw(uint64_t *s)
{
	uint32_t l = below(s, 3) ? SPLIT_WORDS : 4 + below(s, SPLIT_WORDS - 4);

	return pg_psw_pack(pg_psw_make(below(s, 2), 0, l, 4 + below(s, SPLIT_CODE - 4)));
}

static uint64_t split_insn(uint64_t *s)
{
	unsigned op = ops_split[below(s, sizeof(ops_split))];
	int64_t imm = 0;

	switch (op) {
	case PG_OP_LI:
		imm = below(s, 2) ? below(s, SPLIT_WORDS) : (int64_t)below(s, 7) - 3;
		break;
	case PG_OP_LDA: /* the trap slots or the data */
		imm = below(s, 4) ? SPLIT_DATA + below(s, SPLIT_WORDS - SPLIT_DATA) : below(s, 4);
		break;
	case PG_OP_STA:
		imm = SPLIT_DATA + below(s, SPLIT_PSWS - SPLIT_DATA);
		break;
	case PG_OP_ADDI:
		imm = (int64_t)below(s, 9) - 4;
		break;
	case PG_OP_JMP:
	case PG_OP_BEQ:
	case PG_OP_BNE:
	case PG_OP_BLT:
	case PG_OP_JAL:
		imm = 4 + below(s, SPLIT_CODE - 4);
		break;
	case PG_OP_SVC:
		imm = below(s, 4);
		break;
	case PG_OP_LPSW: /* the saved PSW, or one of the table */
		imm = below(s, 2) ? 0 : SPLIT_PSWS + below(s, SPLIT_WORDS - SPLIT_PSWS);
		break;
	}
	return pg_insn((enum pg_op)op, below(s, PG_NREGS), below(s, PG_NREGS), below(s, PG_NREGS),
		       (int32_t)imm);
}

/* Code in [4, 44) and a jump back in [44, 48); every PC anywhere is in the
 * code; loads read only the trap slots and [48, 64), stores write only
 * [48, 56), lpsw reads only MEM[0] and [56, 64). So no instruction ever
 * reads a word the binary translator may have patched. */
void pg_rand_program_split(uint64_t *state, uint64_t *mem, uint32_t size)
{
	for (uint32_t i = 0; i < size; i++)
		mem[i] = 0;
	if (size < SPLIT_WORDS)
		return;
	mem[0] = split_psw(state);
	mem[1] = below(state, 8)
			 ? pg_psw_pack(pg_psw_make(PG_MODE_S, 0, SPLIT_WORDS, 4 + below(state, 8)))
			 : split_psw(state);
	for (uint32_t i = 4; i < SPLIT_CODE; i++)
		mem[i] = split_insn(state);
	for (uint32_t i = SPLIT_CODE; i < SPLIT_DATA; i++)
		mem[i] = pg_insn(PG_OP_JMP, 0, 0, 0, 4);
	for (uint32_t i = SPLIT_DATA; i < SPLIT_PSWS; i++)
		mem[i] = below(state, SPLIT_WORDS);
	for (uint32_t i = SPLIT_PSWS; i < SPLIT_WORDS; i++)
		mem[i] = split_psw(state);
}

void pg_paravirtualise(uint64_t *mem, uint32_t size)
{
	for (uint32_t i = 0; i < size; i++)
		if (pg_insn_op(mem[i]) == PG_OP_LPSW)
			mem[i] = pg_insn(PG_OP_HCALL, 0, 0, 0, pg_insn_imm(mem[i]));
}
