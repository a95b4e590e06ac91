; The trap-and-emulate VMM in the machine's own assembly: the paper's
; recursive-virtualisation theorem made runnable. It hosts one guest in
; [BASE, SIZE) of its memory, SIZE being the length of its own segment
; (MEM[1].L, set by the loader), so that the same image can run bare, under
; the C VMM, or as the guest of another copy of itself. It keeps a vPSW
; (vm, vb, vl, vpc) and a virtual timer, and does what pg/vmm.c does:
; emulate the guest kernel's privileged instructions, reflect everything
; else, and cut segments so that they stay inside the guest.

	.equ BASE, 256
	.equ T_RESET, 0
	.equ T_PRIV, 2
	.equ T_MEM, 3
	.equ OP_LPSW, 64
	.equ OP_SSEG, 65
	.equ OP_HALT, 66
	.equ OP_OUT, 67
	.equ OP_STIM, 68
	.equ OP_RPSW, 69

	.org 0
	.word 0
	.psw s, 0, 0, entry	; the loader puts the machine's size in L
	.word T_RESET
	.word 0

entry:	st r0, [g0]		; the guest's registers, kept while we run
	st r1, [g1]
	st r2, [g2]
	st r3, [g3]
	st r4, [g4]
	st r5, [g5]
	st r6, [g6]
	st r7, [g7]
	ld r0, [2]
	li r1, T_RESET
	beq r0, r1, boot
	ld r1, [0]		; the guest's PC, from the PSW the trap saved
	li r2, 65535
	and r1, r1, r2
	st r1, [vpc]
	ld r1, [vm]
	li r2, 0
	beq r1, r2, fromk
	rtim r1			; a guest application ran: its timer counted
	st r1, [vtimer]
	jmp reflect		; and all its traps go to the guest kernel
fromk:	li r1, T_PRIV
	beq r0, r1, emul
; reflect: the trap in MEM[2..3] happens inside the guest.
reflect: jal r7, pack
	st r1, [BASE]
	ld r1, [2]
	st r1, [BASE+2]
	ld r1, [3]
	st r1, [BASE+3]
	ld r1, [BASE+1]
	jal r7, unpack
; resume: user mode, segment relocated by BASE and cut to the guest.
resume:	ld r1, [vb]
	ld r2, [vmsize]
	li r3, 0
	blt r1, r2, rs1
	li r1, 0
	jmp rs2
rs1:	sub r3, r2, r1		; room left above vb
rs2:	addi r1, r1, BASE
	ld r2, [vl]
	blt r2, r3, rs3
	addi r2, r3, 0
rs3:	li r4, 1
	li r5, 16
	shl r4, r4, r5
	or r4, r4, r1
	shl r4, r4, r5
	or r4, r4, r2
	shl r4, r4, r5
	ld r1, [vpc]
	or r4, r4, r1
	st r4, [realpsw]
	li r1, 0		; the guest's timer runs only in its user mode
	ld r2, [vm]
	beq r2, r1, rs4
	ld r1, [vtimer]
rs4:	stim r1
	ld r0, [g0]
	ld r1, [g1]
	ld r2, [g2]
	ld r3, [g3]
	ld r4, [g4]
	ld r5, [g5]
	ld r6, [g6]
	ld r7, [g7]
	lpsw [realpsw]

boot:	ld r1, [1]		; our own L: the machine's size
	li r2, 16
	shr r1, r1, r2
	li r2, 65535
	and r1, r1, r2
	addi r1, r1, -BASE
	st r1, [vmsize]
	ld r1, [BASE+1]		; the guest powers on in its MEM[1]
	jal r7, unpack
	jmp resume

; emul: a privileged instruction of the guest kernel, on the vPSW.
emul:	ld r1, [vb]
	ld r2, [vpc]
	add r1, r1, r2
	ld r5, [r1+BASE]	; the instruction
	li r3, 56
	shr r6, r5, r3		; opcode
	li r3, 52
	shr r1, r5, r3
	li r3, 7
	and r1, r1, r3
	ld r1, [r1+g0]		; r1 = the guest's ra
	li r3, 48
	shr r2, r5, r3
	li r3, 7
	and r2, r2, r3
	ld r2, [r2+g0]		; r2 = the guest's rb
	ld r3, [vpc]
	addi r3, r3, 1
	li r4, 65535
	and r3, r3, r4
	st r3, [vpc]
	li r3, OP_LPSW
	beq r6, r3, e_lpsw
	li r3, OP_SSEG
	beq r6, r3, e_sseg
	li r3, OP_HALT
	beq r6, r3, e_halt
	li r3, OP_OUT
	beq r6, r3, e_out
	li r3, OP_STIM
	beq r6, r3, e_stim
	li r3, OP_RPSW
	beq r6, r3, e_rpsw
	ld r1, [vtimer]		; rtim
	jmp setra
e_rpsw:	jal r7, pack
setra:	li r3, 52		; the guest's ra = r1
	shr r2, r5, r3
	li r3, 7
	and r2, r2, r3
	st r1, [r2+g0]
	jmp resume
e_sseg:	li r3, 65535
	and r1, r1, r3
	st r1, [vb]
	and r2, r2, r3
	st r2, [vl]
	jmp resume
e_halt:	halt
e_out:	out r1
	jmp resume
e_stim:	st r1, [vtimer]
	jmp resume
e_lpsw:	ld r3, [vpc]		; a fault must report the lpsw's own PC
	addi r3, r3, -1
	li r4, 65535
	and r3, r3, r4
	st r3, [vpc]
	li r3, 32		; r1 = the immediate, sign-extended
	shl r1, r5, r3
	shr r1, r1, r3
	li r3, 1
	li r4, 31
	shl r3, r3, r4
	blt r1, r3, e_lp1
	li r3, 1
	li r4, 32
	shl r3, r3, r4
	sub r1, r1, r3
e_lp1:	li r4, 0
	blt r1, r4, e_fault
	ld r4, [vl]
	blt r1, r4, e_lp2
	jmp e_fault
e_lp2:	ld r4, [vb]
	add r4, r4, r1
	ld r3, [vmsize]
	blt r4, r3, e_lp3
	jmp e_fault
e_lp3:	ld r1, [r4+BASE]
	jal r7, unpack
	jmp resume
e_fault: st r1, [3]
	li r1, T_MEM
	st r1, [2]
	jmp reflect

; pack: r1 = the vPSW as a word. Uses r2, r3.
pack:	ld r1, [vm]
	li r2, 16
	shl r1, r1, r2
	ld r3, [vb]
	or r1, r1, r3
	shl r1, r1, r2
	ld r3, [vl]
	or r1, r1, r3
	shl r1, r1, r2
	ld r3, [vpc]
	or r1, r1, r3
	jr r7

; unpack: the vPSW = the word in r1. Uses r2-r4.
unpack:	li r2, 65535
	li r3, 16
	and r4, r1, r2
	st r4, [vpc]
	shr r1, r1, r3
	and r4, r1, r2
	st r4, [vl]
	shr r1, r1, r3
	and r4, r1, r2
	st r4, [vb]
	shr r1, r1, r3
	li r2, 1
	and r4, r1, r2
	st r4, [vm]
	jr r7

g0:	.word 0
g1:	.word 0
g2:	.word 0
g3:	.word 0
g4:	.word 0
g5:	.word 0
g6:	.word 0
g7:	.word 0
vm:	.word 0
vb:	.word 0
vl:	.word 0
vpc:	.word 0
vtimer:	.word 0
vmsize:	.word 0
realpsw: .word 0
