# The Popek-Goldberg machine (docs/popek-goldberg.md): the course's theory
# chapter made runnable. `make pg` builds the demo, `make pg-demo` runs it,
# `make test-pg` runs every check under ASan and UBSan.
CC    ?= gcc
BUILD ?= build

PG_WARN        := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
PG_CFLAGS      := -std=gnu11 $(PG_WARN) -Ipg -O2 -g
PG_ASAN_CFLAGS := -std=gnu11 $(PG_WARN) -Ipg -O1 -g -fno-omit-frame-pointer \
		  -fsanitize=address,undefined -fno-sanitize-recover=undefined
PG_SRCS        := pg/machine.c pg/isa.c pg/trace.c pg/asm.c pg/os.c pg/vmm.c pg/bt.c \
		  pg/check.c pg/rand.c
PG_TEST_SRCS   := $(wildcard pg/tests/*.c)
PG_GEN         := $(BUILD)/pg/gen/guests.c

# The guests' assembly becomes C strings, so the programs need no files at
# run time.
PG_ASM_SRCS    := pg/os.s pg/evil.s pg/vmm.s
$(PG_GEN): $(PG_ASM_SRCS) pg/pg.mk
	@mkdir -p $(@D)
	@{ echo '/* Generated from $(PG_ASM_SRCS) by pg/pg.mk. */'; \
	  for f in $(PG_ASM_SRCS); do \
	    n=pg_$$(basename $$f .s)_src; \
	    echo "extern const char $$n[];"; echo "const char $$n[] ="; \
	    sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $$f; \
	    echo ';'; \
	  done; } > $@

$(BUILD)/pg/pg-demo: pg/demo.c $(PG_SRCS) $(PG_GEN) pg/pg.h
	@mkdir -p $(@D)
	$(CC) $(PG_CFLAGS) -o $@ pg/demo.c $(PG_SRCS) $(PG_GEN)

$(BUILD)/pg/asan/pg-test: $(PG_TEST_SRCS) $(PG_SRCS) $(PG_GEN) pg/pg.h pg/tests/check.h
	@mkdir -p $(@D)
	$(CC) $(PG_ASAN_CFLAGS) -o $@ $(PG_TEST_SRCS) $(PG_SRCS) $(PG_GEN)

pg: $(BUILD)/pg/pg-demo

test-pg: $(BUILD)/pg/asan/pg-test
	$(BUILD)/pg/asan/pg-test

pg-demo: $(BUILD)/pg/pg-demo
	@$(BUILD)/pg/pg-demo

.PHONY: pg test-pg pg-demo
