; The tiny OS. It runs in supervisor mode with the segment of MEM[1]
; (B=0, L=SIZE): physical = virtual. It has a trap handler, a round-robin
; scheduler driven by the timer, two system calls, and three user programs,
; each in its own segment: two counters and a prime sieve.
; Built with PV defined, it returns to user space with a hypercall instead
; of lpsw (the paravirtual build): that is the only difference.

	.equ SIZE, 1024
	.equ QUANTUM, 40	; user instructions per time slice
	.equ NPROC, 3
	.equ PSIZE, 10		; a process: saved PSW, alive, r0..r7
	.equ SYS_PUTC, 1	; r0 = 1, r1 = the character
	.equ SYS_EXIT, 2	; r0 = 2
	.equ T_RESET, 0
	.equ T_SVC, 1
	.equ T_TIMER, 4
	.equ A_BASE, 512	; the user programs' segments: no overlap
	.equ B_BASE, 640
	.equ S_BASE, 768

	.org 0
	.word 0			; MEM[0]: the PSW a trap saves
	.psw s, 0, SIZE, entry	; MEM[1]: the PSW a trap loads
	.word T_RESET		; MEM[2]: the trap's cause
	.word 0			; MEM[3]: the trap's argument

; Every trap comes here. No register is free yet, so the user's registers
; go to fixed words first (absolute addressing needs none).
entry:	st r0, [sv0]
	st r1, [sv1]
	st r2, [sv2]
	st r3, [sv3]
	st r4, [sv4]
	st r5, [sv5]
	st r6, [sv6]
	st r7, [sv7]
	ld r0, [2]
	li r1, T_SVC
	beq r0, r1, syscall
	li r1, T_TIMER
	beq r0, r1, tick
	li r1, T_RESET
	beq r0, r1, boot
	li r1, '!'		; any other trap is a fault of the program: kill it
	out r1
	jmp kill

boot:	li r1, banner
	jal r7, kputs
	rpsw r0			; behaviour-sensitive: the mode we run in
	li r1, 48
	shr r0, r0, r1
	li r1, 's'
	li r2, 0
	beq r0, r2, boot1
	li r1, 'u'
boot1:	out r1
	li r1, '\n'
	out r1
	jmp schedule

; kputs: prints the string at r1; uses r1-r3, returns through r7.
kputs:	ld r2, [r1]
	li r3, 0
	beq r2, r3, kputs1
	out r2
	addi r1, r1, 1
	jmp kputs
kputs1:	jr r7

syscall: ld r0, [sv0]
	li r1, SYS_PUTC
	beq r0, r1, putc
	li r1, SYS_EXIT
	beq r0, r1, kill
	li r1, '?'		; an unknown system call kills the caller
	out r1
	jmp kill
putc:	ld r1, [sv1]
	out r1
; resume: back to the process whose registers are in sv0..sv7 and whose
; PSW is in MEM[0]. The timer keeps what is left of its slice.
resume:	ld r0, [sv0]
	ld r1, [sv1]
	ld r2, [sv2]
	ld r3, [sv3]
	ld r4, [sv4]
	ld r5, [sv5]
	ld r6, [sv6]
	ld r7, [sv7]
.ifdef PV
	hcall 0			; paravirtual: ask the VMM to load MEM[0]
.else
	lpsw [0]		; to user mode, in the process's segment
.endif

tick:	jal r7, save
	jmp schedule

; save: copies MEM[0] and sv0..sv7 into the current process's entry.
save:	ld r1, [cur]
	li r2, PSIZE
	mul r2, r1, r2
	addi r2, r2, procs
	ld r3, [0]
	st r3, [r2]
	ld r3, [sv0]
	st r3, [r2+2]
	ld r3, [sv1]
	st r3, [r2+3]
	ld r3, [sv2]
	st r3, [r2+4]
	ld r3, [sv3]
	st r3, [r2+5]
	ld r3, [sv4]
	st r3, [r2+6]
	ld r3, [sv5]
	st r3, [r2+7]
	ld r3, [sv6]
	st r3, [r2+8]
	ld r3, [sv7]
	st r3, [r2+9]
	jr r7

kill:	ld r1, [cur]
	li r2, PSIZE
	mul r2, r1, r2
	addi r2, r2, procs
	li r3, 0
	st r3, [r2+1]
	ld r3, [nalive]
	addi r3, r3, -1
	st r3, [nalive]
	li r4, 0
	bne r3, r4, schedule
	li r1, bye
	jal r7, kputs
	halt

; schedule: round robin, the next live process after the current one.
schedule: ld r1, [cur]
sched1:	addi r1, r1, 1
	li r2, NPROC
	blt r1, r2, sched2
	li r1, 0
sched2:	li r2, PSIZE
	mul r2, r1, r2
	addi r2, r2, procs
	ld r3, [r2+1]
	li r4, 0
	beq r3, r4, sched1
	st r1, [cur]
	ld r3, [r2]
	st r3, [0]
	ld r3, [r2+2]
	st r3, [sv0]
	ld r3, [r2+3]
	st r3, [sv1]
	ld r3, [r2+4]
	st r3, [sv2]
	ld r3, [r2+5]
	st r3, [sv3]
	ld r3, [r2+6]
	st r3, [sv4]
	ld r3, [r2+7]
	st r3, [sv5]
	ld r3, [r2+8]
	st r3, [sv6]
	ld r3, [r2+9]
	st r3, [sv7]
	li r3, QUANTUM
	stim r3
	jmp resume

cur:	.word NPROC-1
nalive:	.word NPROC
sv0:	.word 0
sv1:	.word 0
sv2:	.word 0
sv3:	.word 0
sv4:	.word 0
sv5:	.word 0
sv6:	.word 0
sv7:	.word 0
procs:	.psw u, A_BASE, 128, 0	; counter a
	.word 1
	.space 8
	.psw u, B_BASE, 128, 0	; counter b
	.word 1
	.space 8
	.psw u, S_BASE, 256, 0	; prime sieve
	.word 1
	.space 8
banner:	.string "os: booted in mode "
bye:	.string "\nos: all programs exited, halt\n"

; --- counter a: prints a0 .. a9, with a short wait between -------------
	.section A_BASE
	li r0, SYS_PUTC
	li r5, 0
a_loop:	li r1, 'a'
	svc 0
	addi r1, r5, '0'
	svc 0
	li r1, ' '
	svc 0
	li r2, 0
	li r3, 9
a_wait:	addi r2, r2, 1
	blt r2, r3, a_wait
	addi r5, r5, 1
	li r4, 10
	blt r5, r4, a_loop
	li r0, SYS_EXIT
	svc 0

; --- counter b: the same, slower --------------------------------------
	.section B_BASE
	li r0, SYS_PUTC
	li r5, 0
b_loop:	li r1, 'b'
	svc 0
	addi r1, r5, '0'
	svc 0
	li r1, ' '
	svc 0
	li r2, 0
	li r3, 23
b_wait:	addi r2, r2, 1
	blt r2, r3, b_wait
	addi r5, r5, 1
	li r4, 10
	blt r5, r4, b_loop
	li r0, SYS_EXIT
	svc 0

; --- the sieve of Eratosthenes: prints the primes below N --------------
	.section S_BASE
	.equ N, 50
	.equ FLAGS, 128		; flags[n] != 0: n is composite
	li r0, SYS_PUTC
	li r5, 2
s_loop:	ld r1, [r5+FLAGS]
	li r2, 0
	bne r1, r2, s_next
	jal r7, s_print
	add r3, r5, r5
s_mark:	li r4, N
	blt r3, r4, s_set
	jmp s_next
s_set:	li r1, 1
	st r1, [r3+FLAGS]
	add r3, r3, r5
	jmp s_mark
s_next:	addi r5, r5, 1
	li r4, N
	blt r5, r4, s_loop
	li r0, SYS_EXIT
	svc 0
; s_print: prints r5 in decimal and a space; returns through r7.
s_print: li r2, 10
	div r3, r5, r2
	li r4, 0
	beq r3, r4, s_ones
	addi r1, r3, '0'
	svc 0
s_ones:	mod r1, r5, r2
	addi r1, r1, '0'
	svc 0
	li r1, ' '
	svc 0
	jr r7
