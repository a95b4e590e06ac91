# wisp-oci: the OCI runtime (docs/oci.md). Dynamic (jansson, liburing come
# from their static archives as for wisp-client); its library code
# (src/oci/*.c but oci_main.c) is in libwisp.a like every layer's.
$(BUILD)/wisp-oci: $(BUILD)/obj/src/oci/oci_main.o $(BUILD)/libwisp.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/asan/wisp-oci: $(BUILD)/asan/obj/src/oci/oci_main.o $(BUILD)/asan/libwisp.a
	$(CC) $(ASAN_CFLAGS) -o $@ $^ $(LDLIBS)

all: $(BUILD)/wisp-oci
test-build: $(BUILD)/asan/wisp-oci $(BUILD)/asan/wisp $(BUILD)/wisp-oci
oci: $(BUILD)/wisp-oci $(BUILD)/asan/wisp-oci
.PHONY: oci

# podman run --rm with runc vs wisp-oci (bench/oci.sh), here or in the lab.
bench-oci: $(BUILD)/wisp-oci $(BUILD)/wisp $(BUILD)/bench/true unikernels
	scripts/deps.sh oci
	scripts/on-kvm.sh --name bench-oci -- bench/oci.sh
.PHONY: bench-oci
