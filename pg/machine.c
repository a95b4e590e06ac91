/* The course's CPU: two modes, one segment, a PSW, traps through MEM[0] and
 * MEM[1], and a timer. This file is the hardware; the same code runs the
 * bare machine, the real machine under the VMM, and the software CPU of the
 * emulating VMM, so that "the same program" always means the same semantics. */
#include <string.h>

#include "pg.h"

void pg_console_putc(struct pg_console *c, char ch)
{
	if (c->len < PG_CON_MAX)
		c->buf[c->len] = ch;
	c->len++;
}

void pg_machine_init(struct pg_machine *m, uint64_t *mem, uint32_t size, enum pg_isa isa,
		     struct pg_console *con)
{
	memset(m, 0, sizeof(*m));
	m->mem = mem;
	m->size = size;
	m->isa = isa;
	m->con = con;
}

/* Power-on is a trap that saves nothing: the CPU starts in the PSW of MEM[1],
 * with MEM[2] (the cause) left at PG_TRAP_RESET by whoever loaded memory. */
void pg_machine_reset(struct pg_machine *m)
{
	m->psw = pg_psw_unpack(m->mem[1]);
	m->halted = 0;
}

int pg_translate(const struct pg_machine *m, uint64_t a, uint32_t *pa)
{
	/* Past the segment, or past physical memory: the same trap, so that a
	 * VMM that shortens a segment to keep it inside a VM is invisible. */
	if (a >= m->psw.l || m->psw.b + a >= m->size)
		return -1;
	*pa = (uint32_t)(m->psw.b + a);
	return 0;
}

/* Saves the PSW (with the given PC) into MEM[0], the cause into MEM[2..3],
 * and loads the supervisor's PSW from MEM[1]. */
static int trap(struct pg_machine *m, enum pg_cause cause, uint64_t arg, uint32_t pc)
{
	m->psw.pc = pc;
	m->mem[0] = pg_psw_pack(m->psw);
	m->mem[2] = cause;
	m->mem[3] = arg;
	m->psw = pg_psw_unpack(m->mem[1]);
	m->traps++;
	m->trapped = 1;
	return 1;
}

/* A privileged instruction's user-mode behaviour; 1 if it trapped. In the
 * POPF variant lpsw does not trap: it loads only the PC and keeps mode and
 * segment, silently, as x86's popf keeps IF. */
static int user_privileged(struct pg_machine *m, unsigned op, int32_t imm, uint32_t pc)
{
	uint32_t pa;

	if (op != PG_OP_LPSW || m->isa != PG_ISA_POPF)
		return trap(m, PG_TRAP_PRIV, op, pc);
	if (pg_translate(m, (uint64_t)(int64_t)imm, &pa))
		return trap(m, PG_TRAP_MEM, (uint64_t)(int64_t)imm, pc);
	m->psw.pc = pg_psw_unpack(m->mem[pa]).pc;
	return 0;
}

/* Runs the privileged instructions in supervisor mode; 1 if it trapped. */
static int supervisor(struct pg_machine *m, uint64_t w, uint32_t pc)
{
	uint64_t *r = m->r;
	unsigned a = pg_insn_ra(w), b = pg_insn_rb(w);
	int64_t imm = pg_insn_imm(w);
	uint32_t pa;

	switch (pg_insn_op(w)) {
	case PG_OP_LPSW:
		if (pg_translate(m, (uint64_t)imm, &pa))
			return trap(m, PG_TRAP_MEM, (uint64_t)imm, pc);
		m->psw = pg_psw_unpack(m->mem[pa]);
		break;
	case PG_OP_SSEG:
		m->psw.b = r[a] & PG_FIELD;
		m->psw.l = r[b] & PG_FIELD;
		break;
	case PG_OP_HALT:
		m->halted = 1;
		break;
	case PG_OP_OUT:
		if (m->con)
			pg_console_putc(m->con, (char)(r[a] & 0xff));
		break;
	case PG_OP_STIM:
		m->timer = r[a];
		break;
	case PG_OP_RPSW:
		r[a] = pg_psw_pack(m->psw); /* PC already points past rpsw */
		break;
	case PG_OP_RTIM:
		r[a] = m->timer;
		break;
	}
	return 0;
}

/* ALU and memory; 1 if it trapped. */
static int innocuous(struct pg_machine *m, uint64_t w, uint32_t pc, uint32_t next)
{
	uint64_t *r = m->r;
	unsigned op = pg_insn_op(w), a = pg_insn_ra(w), b = pg_insn_rb(w), c = pg_insn_rc(w);
	uint64_t imm = (uint64_t)(int64_t)pg_insn_imm(w), ea;
	uint32_t pa;

	switch (op) {
	case PG_OP_NOP:
		break;
	case PG_OP_LI:
		r[a] = imm;
		break;
	case PG_OP_LD:
	case PG_OP_ST:
	case PG_OP_LDA:
	case PG_OP_STA:
		ea = (op == PG_OP_LD || op == PG_OP_ST) ? r[b] + imm : imm;
		if (pg_translate(m, ea, &pa))
			return trap(m, PG_TRAP_MEM, ea, pc);
		if (op == PG_OP_LD || op == PG_OP_LDA)
			r[a] = m->mem[pa];
		else
			m->mem[pa] = r[a];
		break;
	case PG_OP_ADD:
		r[a] = r[b] + r[c];
		break;
	case PG_OP_SUB:
		r[a] = r[b] - r[c];
		break;
	case PG_OP_MUL:
		r[a] = r[b] * r[c];
		break;
	case PG_OP_DIV:
	case PG_OP_MOD:
		if (!r[c])
			return trap(m, PG_TRAP_DIV, 0, pc);
		r[a] = op == PG_OP_DIV ? r[b] / r[c] : r[b] % r[c];
		break;
	case PG_OP_AND:
		r[a] = r[b] & r[c];
		break;
	case PG_OP_OR:
		r[a] = r[b] | r[c];
		break;
	case PG_OP_XOR:
		r[a] = r[b] ^ r[c];
		break;
	case PG_OP_SHL:
		r[a] = r[b] << (r[c] & 63);
		break;
	case PG_OP_SHR:
		r[a] = r[b] >> (r[c] & 63);
		break;
	case PG_OP_ADDI:
		r[a] = r[b] + imm;
		break;
	case PG_OP_JMP:
		m->psw.pc = imm & PG_FIELD;
		break;
	case PG_OP_BEQ:
		if (r[a] == r[b])
			m->psw.pc = imm & PG_FIELD;
		break;
	case PG_OP_BNE:
		if (r[a] != r[b])
			m->psw.pc = imm & PG_FIELD;
		break;
	case PG_OP_BLT:
		if ((int64_t)r[a] < (int64_t)r[b])
			m->psw.pc = imm & PG_FIELD;
		break;
	case PG_OP_JAL:
		r[a] = next;
		m->psw.pc = imm & PG_FIELD;
		break;
	case PG_OP_JR:
		m->psw.pc = r[a] & PG_FIELD;
		break;
	case PG_OP_SVC:
		return trap(m, PG_TRAP_SVC, imm & 0xffffffffu, next);
	case PG_OP_HCALL:
		return trap(m, PG_TRAP_HCALL, imm & 0xffffffffu, next);
	default:
		return trap(m, PG_TRAP_ILL, op, pc);
	}
	return 0;
}

int pg_step(struct pg_machine *m)
{
	uint32_t pc = m->psw.pc, next = (pc + 1) & PG_FIELD, mode = m->psw.m, pa;
	const struct pg_opinfo *oi;
	uint64_t w;
	int trapped;

	m->trapped = 0;
	if (m->halted)
		return 0;
	m->steps++;
	if (pg_translate(m, pc, &pa))
		return trap(m, PG_TRAP_MEM, pc, pc);
	w = m->mem[pa];
	if (m->hook)
		m->hook(m->hook_arg, &m->psw, w);
	m->psw.pc = next;
	oi = pg_opinfo(pg_insn_op(w));
	if (oi && (oi->cls & PG_CL_PRIV))
		trapped = mode == PG_MODE_U ? user_privileged(m, pg_insn_op(w), pg_insn_imm(w), pc)
					    : supervisor(m, w, pc);
	else
		trapped = innocuous(m, w, pc, next);
	if (trapped)
		return 1;
	/* The timer counts completed user-mode instructions only: in supervisor
	 * mode it is frozen, which is how this machine masks interrupts (a
	 * nested trap would overwrite MEM[0]). */
	if (mode == PG_MODE_U) {
		m->user_done++;
		if (m->timer && --m->timer == 0)
			return trap(m, PG_TRAP_TIMER, 0, m->psw.pc);
	}
	return 0;
}

enum pg_exit pg_run(struct pg_machine *m, uint64_t max_steps)
{
	for (uint64_t i = 0; i < max_steps && !m->halted; i++)
		if (pg_step(m) && m->trap_exit)
			return PG_EXIT_TRAP;
	return m->halted ? PG_EXIT_HALT : PG_EXIT_BUDGET;
}
