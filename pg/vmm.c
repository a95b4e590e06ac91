/* The trap-and-emulate VMM, exactly as in the course. It is the supervisor of
 * the real machine: every guest, its kernel included, runs in real user mode,
 * in a segment inside its own slice of memory. Each VM has a virtual PSW.
 * A trap from the guest kernel is emulated on the vPSW; a trap from a guest
 * application is reflected into the guest kernel. The VMM is C code playing
 * the role of the code at the real MEM[1]: the machine returns to it after
 * each trap (trap_exit), having saved the guest's PSW into the real MEM[0]. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"

#define VMM_FILL 0x5eed5eed5eed5eedull /* the VMM's and the guard's words, to see a stray write */

int pg_vm_translate(const struct pg_vm *vm, uint64_t a, uint32_t *host_pa)
{
	/* Both bounds: the guest's own segment, and the VM's slice, so that a
	 * vPSW with a huge segment never reaches past the VM. */
	if (a >= vm->vpsw.l || vm->vpsw.b + a >= vm->size)
		return -1;
	*host_pa = (uint32_t)(vm->base + vm->vpsw.b + a);
	return 0;
}

/* The guest's physical word i (0..3 are its trap slots). */
static uint64_t *vm_word(struct pg_vmm *v, struct pg_vm *vm, uint32_t i)
{
	return &v->mem[vm->base + i];
}

/* A trap inside the VM, as its own hardware would take it: the vPSW goes to
 * the VM's MEM[0], the VM's MEM[1] becomes the vPSW. */
static void deliver(struct pg_vmm *v, struct pg_vm *vm, uint64_t cause, uint64_t arg)
{
	*vm_word(v, vm, 0) = pg_psw_pack(vm->vpsw);
	*vm_word(v, vm, 2) = cause;
	*vm_word(v, vm, 3) = arg;
	vm->vpsw = pg_psw_unpack(*vm_word(v, vm, 1));
}

/* The real PSW that runs the guest: user mode, its segment relocated by the
 * VM's addr0 and cut so that it ends inside the VM. The cut is invisible:
 * the bare machine traps on the same accesses (past its memory). */
static struct pg_psw real_psw(struct pg_vm *vm)
{
	uint32_t room = vm->vpsw.b < vm->size ? vm->size - vm->vpsw.b : 0;
	struct pg_psw p = {
		.m = PG_MODE_U,
		.b = vm->base + (room ? vm->vpsw.b : 0),
		.l = vm->vpsw.l < room ? vm->vpsw.l : room,
		.pc = vm->vpsw.pc,
	};

	if (p.l != vm->vpsw.l) {
		vm->st.clamped++;
		vm->last_clamp = vm->vpsw;
	}
	return p;
}

/* One virtual timer tick for a user-mode instruction the VMM ran itself. */
static void vtimer_tick(struct pg_vmm *v, struct pg_vm *vm)
{
	if (vm->vtimer && --vm->vtimer == 0) {
		vm->st.vtimer++;
		deliver(v, vm, PG_TRAP_TIMER, 0);
	}
}

/* lpsw [a] at pc, on the guest's behalf, in the guest's current mode: the
 * hypercall and the patched instruction both mean exactly this. */
static void vm_lpsw(struct pg_vmm *v, struct pg_vm *vm, int64_t a, uint32_t pc)
{
	uint32_t pa;

	vm->vpsw.pc = pc;
	if (vm->vpsw.m == PG_MODE_U && v->host.isa == PG_ISA_STANDARD) {
		deliver(v, vm, PG_TRAP_PRIV, PG_OP_LPSW);
		return;
	}
	if (pg_vm_translate(vm, (uint64_t)a, &pa)) {
		deliver(v, vm, PG_TRAP_MEM, (uint64_t)a);
		return;
	}
	if (vm->vpsw.m == PG_MODE_S) {
		vm->vpsw = pg_psw_unpack(v->mem[pa]);
		return;
	}
	/* The POPF form in user mode: only the PC, and it counts as a user
	 * instruction for the timer. */
	vm->vpsw.pc = pg_psw_unpack(v->mem[pa]).pc;
	vtimer_tick(v, vm);
}

/* Emulates a privileged instruction of the guest kernel on the vPSW. */
static void emulate(struct pg_vmm *v, struct pg_vm *vm, uint64_t w, uint32_t pc)
{
	uint64_t *r = vm->r;
	unsigned a = pg_insn_ra(w), b = pg_insn_rb(w);

	vm->st.emulated++;
	vm->vpsw.pc = (pc + 1) & PG_FIELD;
	switch (pg_insn_op(w)) {
	case PG_OP_LPSW:
		vm_lpsw(v, vm, pg_insn_imm(w), pc);
		break;
	case PG_OP_SSEG: /* any value is fine: real_psw keeps it inside the VM */
		vm->vpsw.b = r[a] & PG_FIELD;
		vm->vpsw.l = r[b] & PG_FIELD;
		break;
	case PG_OP_HALT:
		vm->halted = 1;
		break;
	case PG_OP_OUT:
		pg_console_putc(&vm->con, (char)(r[a] & 0xff));
		break;
	case PG_OP_STIM:
		vm->vtimer = r[a];
		break;
	case PG_OP_RPSW: /* the mode the guest believes in, not the real one */
		r[a] = pg_psw_pack(vm->vpsw);
		break;
	case PG_OP_RTIM: /* its own timer: frozen while its kernel runs, as bare */
		r[a] = vm->vtimer;
		break;
	}
}

/* Handles the trap that just ended a direct run of vm. */
static void handle_trap(struct pg_vmm *v, struct pg_vm *vm, int vt_armed)
{
	struct pg_psw saved = pg_psw_unpack(v->mem[0]);
	uint64_t cause = v->mem[2], arg = v->mem[3], w;
	uint32_t pc = saved.pc, pa;

	vm->st.exits++;
	vm->vpsw.pc = pc;
	if (cause == PG_TRAP_TIMER) {
		/* The guest's own timer, or else the VMM's slice or the end of a
		 * translated block: those the guest must not see. */
		if (vt_armed && vm->vtimer == 0) {
			vm->st.vtimer++;
			deliver(v, vm, PG_TRAP_TIMER, 0);
		}
		return;
	}
	if (cause == PG_TRAP_HCALL && v->pv) {
		vm->st.hcalls++;
		vm_lpsw(v, vm, (int32_t)arg, (pc - 1) & PG_FIELD);
		return;
	}
	if (cause == PG_TRAP_ILL && arg == PG_OP_BTRAP && !pg_vm_translate(vm, pc, &pa) &&
	    (w = pg_bt_original(vm, pa, v->mem[pa])) != v->mem[pa]) {
		vm->st.emulated++;
		vm_lpsw(v, vm, pg_insn_imm(w), pc);
		return;
	}
	if (vm->vpsw.m == PG_MODE_S && cause == PG_TRAP_PRIV && !pg_vm_translate(vm, pc, &pa)) {
		emulate(v, vm, v->mem[pa], pc);
		return;
	}
	/* A guest application's trap, or a guest kernel's own system call or
	 * fault: the guest kernel gets it, as on its bare machine. */
	vm->st.reflected++;
	deliver(v, vm, cause, arg);
}

/* Runs vm directly on the hardware until it traps, its slice ends, or its
 * step bound is reached. */
static void run_direct(struct pg_vmm *v, struct pg_vm *vm, uint32_t *slice_left)
{
	struct pg_machine *h = &v->host;
	int vt_armed = vm->vpsw.m == PG_MODE_U && vm->vtimer;
	uint64_t t = *slice_left, s0 = h->steps, d0 = h->user_done, done;
	enum pg_exit ex;

	if (vt_armed && vm->vtimer < t)
		t = vm->vtimer;
	if (v->kind == PG_VMM_BT && vm->vpsw.m == PG_MODE_S) {
		uint32_t n = pg_bt_scan(v, vm);

		if (n && n < t)
			t = n; /* come back at the block's end to translate the next */
	}
	memcpy(h->r, vm->r, sizeof(h->r));
	h->psw = real_psw(vm);
	h->timer = t;
	ex = pg_run(h, vm->limit - vm->steps);
	done = h->user_done - d0;
	memcpy(vm->r, h->r, sizeof(vm->r));
	vm->steps += h->steps - s0;
	vm->st.direct += done;
	*slice_left = done < *slice_left ? *slice_left - (uint32_t)done : 0;
	if (vt_armed)
		vm->vtimer -= done;
	if (ex == PG_EXIT_TRAP)
		handle_trap(v, vm, vt_armed);
	else
		vm->vpsw.pc = h->psw.pc;
}

/* The emulating VMM: a software CPU on the VM's slice; nothing runs directly. */
static void run_emulated(struct pg_vmm *v, struct pg_vm *vm, uint32_t *slice_left)
{
	struct pg_machine cpu;
	uint64_t n = vm->limit - vm->steps;

	if (*slice_left < n)
		n = *slice_left;
	pg_machine_init(&cpu, v->mem + vm->base, vm->size, v->host.isa, &vm->con);
	memcpy(cpu.r, vm->r, sizeof(cpu.r));
	cpu.psw = vm->vpsw;
	cpu.timer = vm->vtimer;
	cpu.hook = pg_trace_hook;
	cpu.hook_arg = &vm->trace;
	pg_run(&cpu, n);
	memcpy(vm->r, cpu.r, sizeof(vm->r));
	vm->vpsw = cpu.psw;
	vm->vtimer = cpu.timer;
	vm->halted = cpu.halted;
	vm->steps += cpu.steps;
	vm->st.emulated += cpu.steps;
	vm->st.exits += cpu.steps;
	*slice_left = cpu.steps < *slice_left ? *slice_left - (uint32_t)cpu.steps : 0;
}

/* Records each guest instruction as the guest sees it: its virtual mode and
 * segment, and the word it wrote, not our patch. */
static void vmm_hook(void *arg, const struct pg_psw *psw, uint64_t word)
{
	struct pg_vmm *v = arg;
	struct pg_vm *vm = &v->vm[v->cur];

	if (pg_insn_op(word) == PG_OP_BTRAP)
		word = pg_bt_original(vm, psw->b + psw->pc, word);
	pg_trace_push(&vm->trace, vm->vpsw.m, vm->vpsw.b, vm->vpsw.l, psw->pc, word);
}

int pg_vmm_init(struct pg_vmm *v, enum pg_vmm_kind kind, enum pg_isa isa, int pv, int nvm,
		uint32_t vm_size, uint32_t slice)
{
	uint64_t size = PG_VMM_RESERVED + (uint64_t)nvm * vm_size + PG_VMM_GUARD;

	memset(v, 0, sizeof(*v));
	/* B is 16 bits: every VM must be reachable by a segment. */
	if (nvm < 1 || nvm > PG_VMM_MAXVM || vm_size < 4 || size > PG_FIELD + 1 || !slice)
		return -EINVAL;
	v->mem = malloc(size * sizeof(*v->mem));
	if (!v->mem)
		return -ENOMEM;
	v->size = (uint32_t)size;
	for (uint32_t i = 0; i < v->size; i++)
		v->mem[i] = VMM_FILL;
	/* The VMM's own PSW: where the hardware goes on a trap (our C code). */
	v->mem[1] = pg_psw_pack(pg_psw_make(PG_MODE_S, 0, PG_FIELD, 0));
	pg_machine_init(&v->host, v->mem, v->size, isa, NULL);
	v->host.trap_exit = 1;
	v->host.hook = vmm_hook;
	v->host.hook_arg = v;
	v->kind = kind;
	v->pv = pv;
	v->nvm = nvm;
	v->slice = slice;
	for (int i = 0; i < nvm; i++) {
		v->vm[i].base = PG_VMM_RESERVED + (uint32_t)i * vm_size;
		v->vm[i].size = vm_size;
		memset(v->mem + v->vm[i].base, 0, vm_size * sizeof(*v->mem));
	}
	return 0;
}

uint64_t *pg_vmm_vm_mem(struct pg_vmm *v, int i)
{
	return v->mem + v->vm[i].base;
}

void pg_vmm_start(struct pg_vmm *v, uint64_t limit)
{
	for (int i = 0; i < v->nvm; i++) {
		struct pg_vm *vm = &v->vm[i];

		vm->vpsw = pg_psw_unpack(*vm_word(v, vm, 1)); /* power-on, as bare */
		vm->limit = limit;
	}
	v->cur = 0;
}

static int runnable(const struct pg_vm *vm)
{
	return !vm->halted && vm->steps < vm->limit;
}

void pg_vmm_run(struct pg_vmm *v)
{
	uint32_t slice_left = v->slice;

	for (;;) {
		struct pg_vm *vm = &v->vm[v->cur];
		int next = -1;

		if (runnable(vm) && slice_left) {
			if (v->kind == PG_VMM_EMULATE)
				run_emulated(v, vm, &slice_left);
			else
				run_direct(v, vm, &slice_left);
			continue;
		}
		for (int i = 1; i <= v->nvm && next < 0; i++)
			if (runnable(&v->vm[(v->cur + i) % v->nvm]))
				next = (v->cur + i) % v->nvm;
		if (next < 0)
			break;
		v->cur = next;
		slice_left = v->slice;
	}
	for (int i = 0; i < v->nvm; i++)
		pg_bt_unpatch(v, &v->vm[i]);
}

void pg_vmm_free(struct pg_vmm *v)
{
	for (int i = 0; i < v->nvm; i++) {
		pg_trace_free(&v->vm[i].trace);
		free(v->vm[i].patch);
	}
	free(v->mem);
	v->mem = NULL;
}
