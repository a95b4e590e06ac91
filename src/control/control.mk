# The control plane (included by the Makefile): wispd, the daemon, and
# wisp-vmm, the VMM process of each daemon-run VM. Files named *_main.c hold
# a program's main() and stay out of libwisp.a.
WISPD_LIBS := -lmicrohttpd -ljansson

all: $(BUILD)/wispd $(BUILD)/wisp-vmm

$(BUILD)/wispd: $(BUILD)/obj/src/control/wispd_main.o $(BUILD)/libwisp.a
	$(CC) $(CFLAGS) -o $@ $^ $(WISPD_LIBS) $(LDLIBS)
$(BUILD)/asan/wispd: $(BUILD)/asan/obj/src/control/wispd_main.o $(BUILD)/asan/libwisp.a
	$(CC) $(ASAN_CFLAGS) -o $@ $^ $(WISPD_LIBS) $(LDLIBS)

# Static: 10,000 copies share one read-only image and carry no dynamic
# linker state, relocations or shared-library mappings (docs/control-plane.md).
$(BUILD)/wisp-vmm: $(BUILD)/obj/src/control/vmm_main.o $(BUILD)/libwisp.a
	$(CC) $(CFLAGS) -static -o $@ $^ $(LDLIBS_STATIC)
# ASan cannot link statically; the test build of the VMM is dynamic.
$(BUILD)/asan/wisp-vmm: $(BUILD)/asan/obj/src/control/vmm_main.o $(BUILD)/asan/libwisp.a
	$(CC) $(ASAN_CFLAGS) -o $@ $^ $(LDLIBS)

# Unit tests of daemon code link its libraries.
$(BUILD)/asan/tests/test_wispd: LDLIBS += $(WISPD_LIBS)

# The migration transport (TLS by GnuTLS): dynamic, one process per
# migration, so that wisp-vmm stays static and never links a TLS library.
all: $(BUILD)/wisp-tls
$(BUILD)/wisp-tls: $(BUILD)/obj/src/control/tls_main.o $(BUILD)/libwisp.a
	$(CC) $(CFLAGS) -o $@ $^ -lgnutls $(LDLIBS)
$(BUILD)/asan/wisp-tls: $(BUILD)/asan/obj/src/control/tls_main.o $(BUILD)/asan/libwisp.a
	$(CC) $(ASAN_CFLAGS) -o $@ $^ -lgnutls $(LDLIBS)
