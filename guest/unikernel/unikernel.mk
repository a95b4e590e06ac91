# The unikernel runtime and example applications (included by the Makefile).
UK_DIR    := guest/unikernel
UK_BUILD  := $(BUILD)/unikernels
UK_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -ffreestanding -fno-pic -fno-pie \
             -mno-red-zone -fno-stack-protector -fno-asynchronous-unwind-tables \
             -fno-tree-loop-distribute-patterns -fcf-protection=none -mcmodel=small \
             -Iinclude -I$(UK_DIR)/include -I$(UK_DIR)/runtime -MMD -MP
UK_LDFLAGS := -nostdlib -static -no-pie -Wl,-T,$(UK_DIR)/runtime/unikernel.ld \
              -Wl,-z,max-page-size=4096 -Wl,-z,noexecstack -Wl,--build-id=none

UK_RT_OBJS := $(UK_BUILD)/rt/entry.o $(UK_BUILD)/rt/rt.o $(UK_BUILD)/rt/fmt.o \
              $(UK_BUILD)/rt/string.o $(UK_BUILD)/rt/trap.o $(UK_BUILD)/rt/pci.o
# The virtio drivers are an archive: an application links only those it uses
# (their rings and buffers are static, and hello needs none of them).
UK_RT_LIB  := $(UK_BUILD)/rt/libwrt-virtio.a
UK_RT_LIB_OBJS := $(UK_BUILD)/rt/virtio.o $(UK_BUILD)/rt/virtio_rng.o \
                  $(UK_BUILD)/rt/virtio_blk.o $(UK_BUILD)/rt/virtio_net.o
UK_APPS    := $(basename $(notdir $(wildcard $(UK_DIR)/apps/*.c)))
# Apps that also get a CPL0 build, NAME-cpl0.elf: same objects, another note.
UK_CPL0_APPS := loop halt attack
UK_ELFS    := $(UK_APPS:%=$(UK_BUILD)/%.elf) $(UK_CPL0_APPS:%=$(UK_BUILD)/%-cpl0.elf)

unikernels: $(UK_ELFS)

$(UK_BUILD)/rt/%.o: $(UK_DIR)/runtime/%.S
	@mkdir -p $(@D)
	$(CC) $(UK_CFLAGS) -c $< -o $@
# The runtime is system code: no SSE, so that it also runs at CPL0 on KVMs
# that emulate CPL0 and lack SSE emulation (PVM), and so that the fault
# handler never touches the application's SSE state.
$(UK_BUILD)/rt/%.o: $(UK_DIR)/runtime/%.c
	@mkdir -p $(@D)
	$(CC) $(UK_CFLAGS) -mgeneral-regs-only -c $< -o $@
$(UK_BUILD)/rt/note-cpl0.o: $(UK_DIR)/runtime/note.S
	@mkdir -p $(@D)
	$(CC) $(UK_CFLAGS) -DWISP_FLAGS=WISP_NOTE_CPL0 -c $< -o $@
# Applications may use SSE, except loop, whose CPL0 build must run on PVM.
$(UK_CPL0_APPS:%=$(UK_BUILD)/apps/%.o): UK_APP_FLAGS := -mgeneral-regs-only
$(UK_BUILD)/apps/%.o: $(UK_DIR)/apps/%.c
	@mkdir -p $(@D)
	$(CC) $(UK_CFLAGS) $(UK_APP_FLAGS) -DWRT_APP_NAME='"$*"' -c $< -o $@

$(UK_RT_LIB): $(UK_RT_LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(UK_BUILD)/%.elf: $(UK_BUILD)/apps/%.o $(UK_RT_OBJS) $(UK_BUILD)/rt/note.o $(UK_RT_LIB) $(UK_DIR)/runtime/unikernel.ld
	$(CC) $(UK_LDFLAGS) -o $@ $(filter %.o,$^) $(UK_RT_LIB)
$(UK_BUILD)/%-cpl0.elf: $(UK_BUILD)/apps/%.o $(UK_RT_OBJS) $(UK_BUILD)/rt/note-cpl0.o $(UK_DIR)/runtime/unikernel.ld
	$(CC) $(UK_LDFLAGS) -o $@ $(filter %.o,$^)
