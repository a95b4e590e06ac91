; A malicious guest OS. Its kernel tries, one after the other, to reach
; memory that is not its own: the next VM's, and the VMM's. On its bare
; machine each attempt simply traps (there is no memory there); under the
; VMM each must trap too, and touch nothing. Its trap handler prints X and
; goes on with the next attempt, whose address is in 'stage'.

	.equ SIZE, 1024

	.org 0
	.word 0
	.psw s, 0, SIZE, entry
	.word 0
	.word 0

entry:	ld r0, [2]
	li r1, 0
	beq r0, r1, boot
	li r1, 'X'		; the attempt trapped
	out r1
	ld r1, [stage]
	jr r1

boot:	li r1, 'e'
	out r1
	li r1, ':'
	out r1
; 1: a segment starting where the next VM's memory begins
	li r1, try2
	st r1, [stage]
	li r1, SIZE
	li r2, 64
	sseg r1, r2		; our own next fetch now faults
	li r3, 666
	st r3, [0]		; the next VM's MEM[0]
; 2: a segment longer than our memory, and a store past its end
try2:	li r1, try3
	st r1, [stage]
	li r1, 0
	li r2, 65535
	sseg r1, r2
	li r3, 666
	st r3, [SIZE+5]
; 3: a supervisor PSW whose segment starts far above our memory
try3:	li r1, try4
	st r1, [stage]
	lpsw [psw3]
; 4: a user program with a 64K segment from 0 reading past our memory
try4:	li r1, done
	st r1, [stage]
	lpsw [psw4]
peek:	ld r1, [SIZE+100]
	st r1, [SIZE+101]
done:	li r1, '\n'
	out r1
	halt

stage:	.word 0
psw3:	.psw s, 60000, 4096, 0
psw4:	.psw u, 0, 65535, peek
