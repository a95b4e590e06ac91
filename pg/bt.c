/* Binary translation, the first fix for an ISA that breaks the theorem.
 * Before the guest kernel runs a basic block, the VMM scans it and rewrites
 * each offending instruction (sensitive, but silent in user mode) into an
 * undefined opcode, which traps; the VMM then emulates the original. The
 * real timer brings the VMM back at the block's end to scan the next one.
 * This is the scan-and-patch design of VirtualBox's raw mode (CSAM/PATM),
 * not VMware's translation cache: patches are in place, so a guest that read
 * its own kernel code would see them. VMware hides them with page
 * protection; this machine has only a segment, so the guests we translate
 * keep code and data apart (see pg_rand_program_split). */
#include <stdio.h>
#include <stdlib.h>

#include "pg.h"

#define BT_BLOCK_MAX 32 /* scan no further: a block is run and rescanned */

static void patch(struct pg_vmm *v, struct pg_vm *vm, uint32_t pa)
{
	uint64_t orig = v->mem[pa];
	uint64_t now = (orig & ~(0xffull << 56)) | (uint64_t)PG_OP_BTRAP << 56;

	for (size_t i = 0; i < vm->npatch; i++)
		if (vm->patch[i].pa == pa) { /* the guest rewrote a patched word */
			vm->patch[i].orig = orig;
			vm->patch[i].now = now;
			goto done;
		}
	if (vm->npatch == vm->patchcap) {
		size_t cap = vm->patchcap ? vm->patchcap * 2 : 16;
		struct pg_patch *p = realloc(vm->patch, cap * sizeof(*p));

		if (!p) {
			fprintf(stderr, "pg: bt: out of memory at %zu patches\n", vm->npatch);
			abort();
		}
		vm->patch = p;
		vm->patchcap = cap;
	}
	vm->patch[vm->npatch++] = (struct pg_patch){.pa = pa, .orig = orig, .now = now};
done:
	v->mem[pa] = now;
	vm->st.patched++;
}

uint32_t pg_bt_scan(struct pg_vmm *v, struct pg_vm *vm)
{
	uint32_t n, pa;

	for (n = 0; n < BT_BLOCK_MAX; n++) {
		const struct pg_opinfo *oi;
		unsigned op;

		if (pg_vm_translate(vm, (vm->vpsw.pc + n) & PG_FIELD, &pa))
			break; /* the fetch will trap: the block ends there */
		vm->st.scanned++;
		op = pg_insn_op(v->mem[pa]);
		if (pg_op_offending(op, v->host.isa)) {
			patch(v, vm, pa);
			return n + 1;
		}
		oi = pg_opinfo(op);
		if (!oi || (oi->cls & PG_CL_BLOCKEND))
			return n + 1;
	}
	return n;
}

uint64_t pg_bt_original(const struct pg_vm *vm, uint32_t pa, uint64_t word)
{
	for (size_t i = 0; i < vm->npatch; i++)
		if (vm->patch[i].pa == pa && vm->patch[i].now == word)
			return vm->patch[i].orig;
	return word;
}

void pg_bt_unpatch(struct pg_vmm *v, struct pg_vm *vm)
{
	for (size_t i = 0; i < vm->npatch; i++)
		if (v->mem[vm->patch[i].pa] == vm->patch[i].now)
			v->mem[vm->patch[i].pa] = vm->patch[i].orig;
	vm->npatch = 0;
}
