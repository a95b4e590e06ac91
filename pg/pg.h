/* The Popek-Goldberg machine: the course's CPU, its assembler, a tiny OS, a
 * trap-and-emulate VMM, and the checks of the theorem's three properties.
 * See docs/popek-goldberg.md for the ISA and the map from the chapter to the
 * code. Everything here is deterministic: no clock, no I/O but the console
 * buffer, and the random programs come from a seeded generator. */
#ifndef PG_H
#define PG_H

#include <stddef.h>
#include <stdint.h>

/* --- the machine (machine.c, isa.c) --------------------------------------- */

#define PG_NREGS   8
#define PG_CON_MAX 4096
#define PG_FIELD   0xffffu /* B, L and PC are 16-bit fields of the PSW */

enum pg_mode { PG_MODE_S = 0, PG_MODE_U = 1 };

/* The ISA flavour: the standard one satisfies the theorem; in the POPF one,
 * lpsw in user mode silently loads only the PC instead of trapping. */
enum pg_isa { PG_ISA_STANDARD = 0, PG_ISA_POPF = 1 };

/* Trap causes, written to MEM[2] (the argument goes to MEM[3]). */
enum pg_cause {
	PG_TRAP_RESET = 0, /* not a trap: what MEM[2] holds at power-on */
	PG_TRAP_SVC = 1,   /* system call; arg = svc's immediate */
	PG_TRAP_PRIV = 2,  /* privileged instruction in user mode; arg = opcode */
	PG_TRAP_MEM = 3,   /* access past the segment or memory; arg = virtual address */
	PG_TRAP_TIMER = 4, /* timer reached zero */
	PG_TRAP_ILL = 5,   /* undefined opcode; arg = opcode */
	PG_TRAP_DIV = 6,   /* division by zero */
	PG_TRAP_HCALL = 7, /* hypercall; arg = hcall's immediate */
};

enum pg_op {
	PG_OP_ILL = 0x00,
	PG_OP_NOP = 0x01,
	PG_OP_LI = 0x02,
	PG_OP_LD = 0x03,  /* ra = MEM[rb + imm] */
	PG_OP_ST = 0x04,  /* MEM[rb + imm] = ra */
	PG_OP_LDA = 0x05, /* ra = MEM[imm] */
	PG_OP_STA = 0x06, /* MEM[imm] = ra */
	PG_OP_ADD = 0x10,
	PG_OP_SUB = 0x11,
	PG_OP_MUL = 0x12,
	PG_OP_DIV = 0x13,
	PG_OP_MOD = 0x14,
	PG_OP_AND = 0x15,
	PG_OP_OR = 0x16,
	PG_OP_XOR = 0x17,
	PG_OP_SHL = 0x18,
	PG_OP_SHR = 0x19,
	PG_OP_ADDI = 0x1a,
	PG_OP_JMP = 0x20,
	PG_OP_BEQ = 0x21,
	PG_OP_BNE = 0x22,
	PG_OP_BLT = 0x23,
	PG_OP_JAL = 0x24,
	PG_OP_JR = 0x25,
	PG_OP_SVC = 0x30,
	PG_OP_LPSW = 0x40,
	PG_OP_SSEG = 0x41,
	PG_OP_HALT = 0x42,
	PG_OP_OUT = 0x43,
	PG_OP_STIM = 0x44,
	PG_OP_RPSW = 0x45,
	PG_OP_RTIM = 0x46,
	PG_OP_HCALL = 0x50,
	PG_OP_BTRAP = 0xff, /* never defined: what binary translation writes */
};

/* Operand layouts, for the assembler and the disassembler. */
enum pg_fmt {
	PG_FMT_NONE, /* halt */
	PG_FMT_RI,   /* li ra, imm */
	PG_FMT_MEM,  /* ld ra, [rb+imm] */
	PG_FMT_ABS,  /* lda ra, [imm] */
	PG_FMT_RRR,  /* add ra, rb, rc */
	PG_FMT_RRI,  /* addi ra, rb, imm */
	PG_FMT_J,    /* jmp imm */
	PG_FMT_BR,   /* beq ra, rb, imm */
	PG_FMT_RJ,   /* jal ra, imm */
	PG_FMT_R,    /* jr ra */
	PG_FMT_RR,   /* sseg ra, rb */
	PG_FMT_I,    /* svc imm */
	PG_FMT_A,    /* lpsw [imm] */
};

/* The chapter's instruction classes, as flags. */
#define PG_CL_PRIV	0x1 /* traps in user mode (standard ISA) */
#define PG_CL_CONTROL	0x2 /* control-sensitive: changes the system state */
#define PG_CL_BEHAVIOUR 0x4 /* behaviour-sensitive: result depends on the mode */
#define PG_CL_BLOCKEND	0x8 /* ends a basic block (binary translation) */

struct pg_opinfo {
	const char *name;
	enum pg_fmt fmt;
	unsigned cls;
};

/* The Processor Status Word; packed in one memory word as
 * PC | L << 16 | B << 32 | M << 48. L is the segment's length: virtual
 * addresses 0..L-1 map to physical B..B+L-1. */
struct pg_psw {
	uint32_t m, b, l, pc;
};

struct pg_console {
	char buf[PG_CON_MAX];
	size_t len; /* characters written, even past PG_CON_MAX */
};

/* Called after each fetch, before the instruction runs (traces). */
typedef void (*pg_hook_fn)(void *arg, const struct pg_psw *psw, uint64_t word);

struct pg_machine {
	uint64_t *mem;
	uint32_t size; /* words of physical memory, at least 4 */
	uint64_t r[PG_NREGS];
	struct pg_psw psw;
	uint64_t timer; /* user-mode instructions left before the interrupt; 0 = off */
	enum pg_isa isa;
	int halted;
	int trap_exit;	    /* pg_run returns after each trap: C code plays the supervisor */
	int trapped;	    /* the last step took a trap */
	uint64_t steps;	    /* fetch attempts */
	uint64_t user_done; /* user-mode instructions that completed without trapping */
	uint64_t traps;
	struct pg_console *con;
	pg_hook_fn hook;
	void *hook_arg;
};

enum pg_exit { PG_EXIT_HALT, PG_EXIT_BUDGET, PG_EXIT_TRAP };

/* Packs a PSW into a memory word. */
uint64_t pg_psw_pack(struct pg_psw p);
/* Unpacks a memory word into a PSW (fields masked to their width). */
struct pg_psw pg_psw_unpack(uint64_t w);
/* Builds a PSW from its four fields. */
struct pg_psw pg_psw_make(uint32_t m, uint32_t b, uint32_t l, uint32_t pc);

/* Encodes an instruction word. */
uint64_t pg_insn(enum pg_op op, unsigned ra, unsigned rb, unsigned rc, int32_t imm);
/* The opcode of an instruction word. */
unsigned pg_insn_op(uint64_t w);
/* Register field a (b, c) of an instruction word. */
unsigned pg_insn_ra(uint64_t w);
unsigned pg_insn_rb(uint64_t w);
unsigned pg_insn_rc(uint64_t w);
/* The signed 32-bit immediate of an instruction word. */
int32_t pg_insn_imm(uint64_t w);
/* The description of an opcode, or NULL if it is undefined. */
const struct pg_opinfo *pg_opinfo(unsigned op);
/* Looks an opcode up by mnemonic; -1 if there is none. */
int pg_op_by_name(const char *name);
/* Whether op is sensitive (control or behaviour) but does not trap in user mode. */
int pg_op_offending(unsigned op, enum pg_isa isa);
/* Disassembles one word into buf ("addi r1, r1, 1"). */
void pg_disasm(uint64_t w, char *buf, size_t len);

/* Sets up a machine on caller-owned memory, registers and timer zero, not reset. */
void pg_machine_init(struct pg_machine *m, uint64_t *mem, uint32_t size, enum pg_isa isa,
		     struct pg_console *con);
/* Power-on: loads the PSW from MEM[1] like a trap that saves nothing. */
void pg_machine_reset(struct pg_machine *m);
/* Translates virtual address a through the PSW's segment; -1 if it traps. */
int pg_translate(const struct pg_machine *m, uint64_t a, uint32_t *pa);
/* Runs one fetch-execute step, with its trap if any; returns 1 if it trapped. */
int pg_step(struct pg_machine *m);
/* Runs until halt, max_steps fetch attempts, or (with trap_exit) a trap. */
enum pg_exit pg_run(struct pg_machine *m, uint64_t max_steps);
/* Appends a character to a console. */
void pg_console_putc(struct pg_console *c, char ch);

/* --- traces (trace.c) ------------------------------------------------------- */

/* One guest instruction as the guest sees it: its mode and segment, PC, word. */
struct pg_rec {
	uint8_t m;
	uint16_t b, l, pc;
	uint64_t word;
};

struct pg_trace {
	struct pg_rec *rec;
	size_t n, cap;
};

/* Appends a record (grows the array; aborts on out-of-memory). */
void pg_trace_push(struct pg_trace *t, uint32_t m, uint32_t b, uint32_t l, uint32_t pc,
		   uint64_t word);
/* Frees a trace and empties it. */
void pg_trace_free(struct pg_trace *t);
/* A hook that records the machine's own view (bare runs). */
void pg_trace_hook(void *arg, const struct pg_psw *psw, uint64_t word);

/* --- the assembler (asm.c) -------------------------------------------------- */

#define PG_ASM_MAXSYM 256

struct pg_sym {
	char name[32];
	int64_t value;
};

struct pg_asm {
	struct pg_sym sym[PG_ASM_MAXSYM];
	int nsym;
};

/* Assembles src into mem[0..size), with the given names defined for .ifdef
 * (NULL-terminated list, may be NULL); symbols go to out if not NULL.
 * Returns 0 or -EINVAL with "line N: reason" in err. */
int pg_assemble(const char *src, const char *const *defs, uint64_t *mem, uint32_t size,
		struct pg_asm *out, char *err, size_t errlen);
/* The value of a symbol after assembly; -1 if absent. */
int64_t pg_asm_lookup(const struct pg_asm *a, const char *name);

/* --- the guests (os.c, os.s, evil.s) ------------------------------------ */

#define PG_OS_SIZE 1024 /* words of memory the OS expects */

/* Builds the tiny OS image; pv selects the paravirtual build (hcall). */
int pg_os_build(uint64_t *mem, uint32_t size, int pv, struct pg_asm *syms);
/* Builds the malicious guest's image. */
int pg_evil_build(uint64_t *mem, uint32_t size, struct pg_asm *syms);

#define PG_VMMASM_BASE 256 /* where vmm.s puts its guest */

/* Builds the assembly VMM (vmm.s) for a machine of size words; its guest's
 * image goes at mem + PG_VMMASM_BASE. */
int pg_vmmasm_build(uint64_t *mem, uint32_t size, struct pg_asm *syms);
/* Builds the OS under levels nested assembly VMMs, in
 * PG_OS_SIZE + levels * PG_VMMASM_BASE words; 0 or -1. */
int pg_nest_build(uint64_t *mem, int levels);

/* --- the VMM (vmm.c, bt.c) -------------------------------------------------- */

#define PG_VMM_MAXVM	2
#define PG_VMM_RESERVED 64 /* words the VMM keeps for itself, below the VMs */
#define PG_VMM_GUARD	64 /* words above the VMs nobody may touch */

enum pg_vmm_kind {
	PG_VMM_TRAP,	/* trap-and-emulate */
	PG_VMM_BT,	/* trap-and-emulate, guest kernel code scanned and patched first */
	PG_VMM_EMULATE, /* no direct execution: a software CPU runs the guest */
};

struct pg_vm_stats {
	uint64_t direct;    /* guest instructions the hardware ran */
	uint64_t emulated;  /* guest-kernel privileged instructions the VMM emulated */
	uint64_t reflected; /* guest traps delivered to the guest kernel */
	uint64_t hcalls;    /* paravirtual hypercalls */
	uint64_t vtimer;    /* virtual timer interrupts delivered */
	uint64_t exits;	    /* VMM entries, whatever the reason */
	uint64_t scanned;   /* words the binary translator read */
	uint64_t patched;   /* instructions it rewrote */
	uint64_t clamped;   /* resumes whose segment had to be cut to the VM's memory */
};

struct pg_patch {
	uint32_t pa; /* physical host address */
	uint64_t orig, now;
};

struct pg_vm {
	uint32_t base, size; /* addr0 and length of its slice of host memory */
	struct pg_psw vpsw;
	uint64_t r[PG_NREGS];
	uint64_t vtimer;
	int halted;
	uint64_t steps, limit; /* guest fetch attempts so far, and the bound */
	struct pg_console con;
	struct pg_trace trace;
	struct pg_vm_stats st;
	struct pg_patch *patch;
	size_t npatch, patchcap;
	struct pg_psw last_clamp; /* the last out-of-bounds segment, for the log */
};

struct pg_vmm {
	struct pg_machine host;
	uint64_t *mem;
	uint32_t size;
	enum pg_vmm_kind kind;
	int pv; /* honour hcall as a hypercall */
	int nvm, cur;
	uint32_t slice; /* direct instructions per VM before switching */
	struct pg_vm vm[PG_VMM_MAXVM];
};

/* Creates a VMM with nvm VMs of vm_size words each; 0 or -errno. */
int pg_vmm_init(struct pg_vmm *v, enum pg_vmm_kind kind, enum pg_isa isa, int pv, int nvm,
		uint32_t vm_size, uint32_t slice);
/* A VM's memory, where its image is loaded before pg_vmm_start. */
uint64_t *pg_vmm_vm_mem(struct pg_vmm *v, int i);
/* Powers the VMs on: each vPSW comes from its MEM[1]; limit bounds its steps. */
void pg_vmm_start(struct pg_vmm *v, uint64_t limit);
/* Runs the VMs, round robin, until each has halted or reached its limit. */
void pg_vmm_run(struct pg_vmm *v);
/* Frees what the VMM allocated. */
void pg_vmm_free(struct pg_vmm *v);
/* Binary translation: scans the guest-kernel block at the vPSW, patches its
 * offending instructions; returns the block's length (0: nothing to run). */
uint32_t pg_bt_scan(struct pg_vmm *v, struct pg_vm *vm);
/* The word the guest wrote at host address pa, if word is our patch there. */
uint64_t pg_bt_original(const struct pg_vm *vm, uint32_t pa, uint64_t word);
/* Translates a guest virtual address through the vPSW, kept inside the VM:
 * the one checked accessor to guest memory; 0 or -1. */
int pg_vm_translate(const struct pg_vm *vm, uint64_t a, uint32_t *host_pa);
/* Puts every patched word back, so the guest's memory is its own again. */
void pg_bt_unpatch(struct pg_vmm *v, struct pg_vm *vm);

/* --- the checks (check.c) ----------------------------------------------- */

/* What one guest did: enough to compare a bare run with a virtual one. */
struct pg_result {
	uint64_t *mem;
	uint32_t size;
	uint64_t r[PG_NREGS];
	struct pg_psw psw;
	int halted;
	struct pg_console con;
	struct pg_trace trace;
	struct pg_vm_stats st;
};

/* How two results differ; kind is NULL if they do not. */
struct pg_diff {
	const char *kind; /* "trace", "user trace", "output", "memory", "registers", "psw" */
	size_t at;	  /* trace index or memory address */
};

/* Runs an image on the bare machine for at most limit steps. */
void pg_run_bare(const uint64_t *img, uint32_t size, enum pg_isa isa, uint64_t limit,
		 struct pg_result *res);
/* Runs n images (n <= 2) at once under a VMM; 0 or -errno. */
int pg_run_vmm(const uint64_t *const *img, int n, uint32_t size, enum pg_vmm_kind kind,
	       enum pg_isa isa, int pv, uint32_t slice, uint64_t limit, struct pg_result *res);
/* Whether the user-mode instructions of two traces are the same; *n gets their count. */
int pg_user_trace_equal(const struct pg_result *a, const struct pg_result *b, size_t *n);
/* Frees a result. */
void pg_result_free(struct pg_result *r);
/* Compares a bare result with a virtual one; pv maps hcall back to lpsw. */
struct pg_diff pg_compare(const struct pg_result *bare, const struct pg_result *virt, int pv);
/* Prints where two traces part, with the instructions around it. */
void pg_diff_print(const struct pg_result *bare, const struct pg_result *virt, struct pg_diff d);
/* Fraction of guest instructions that ran directly, in percent. */
double pg_direct_pct(const struct pg_result *r);

/* --- random guests (rand.c) ------------------------------------------------ */

/* splitmix64: the one source of randomness, seeded. */
uint64_t pg_rand(uint64_t *state);
/* Fills size words with a random guest program exercising both modes. */
void pg_rand_program(uint64_t *state, uint64_t *mem, uint32_t size);
/* A random program that keeps code and data apart (for binary translation,
 * whose patches the guest could otherwise read). */
void pg_rand_program_split(uint64_t *state, uint64_t *mem, uint32_t size);
/* A random program biased towards escaping: huge segments, stores far away. */
void pg_rand_program_evil(uint64_t *state, uint64_t *mem, uint32_t size);
/* The paravirtual build of a program: every lpsw becomes hcall. */
void pg_paravirtualise(uint64_t *mem, uint32_t size);

#endif
