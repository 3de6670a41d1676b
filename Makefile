# kiln: a minimal microVM monitor.
#   make              build/kiln (static musl), build/kiln-jailer and the snapshot tools
#                     build/kiln-uffd-handler and build/kiln-rebase-snap
#   make check        every test (docs/testing.md); ends with "N passed, N failed, N skipped"
#   make check SAN=1  the same with the unit tests under ASan/UBSan
#   make fuzz         the fuzz harnesses, longer
#   make bench        figures from bench/
#   make demo         boots a demo VM with kiln on this terminal (scripts/demo.sh)
#   make guest-kernel optional minimal vmlinux built from Debian's linux-source

BUILD     ?= build
MUSL_CC   ?= musl-gcc
HOST_CC   ?= gcc
FUZZ_CC   ?= clang
SAN       ?= 0
VERSION   := 0.1.0

WARN      := -Wall -Wextra -Werror
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -DKILN_VERSION=\"$(VERSION)\" -I. $(WARN) \
	-fstack-protector-strong -fno-strict-aliasing

# The product: everything linked into kiln except its main().
LIB_SRCS  := $(sort $(wildcard vmm/*.c boot/*.c virtio/*.c seccomp/*.c))
LIB_SRCS  := $(filter-out vmm/main.c seccomp/gen_filters.c,$(LIB_SRCS))
# nodejs/http-parser for the API: Debian's static archive, built from pure C whose only libc
# reference is __assert_fail, which musl has too (docs/api.md), so it links into kiln as is.
HTTP_PARSER_A := /usr/lib/x86_64-linux-gnu/libhttp_parser.a
# liblzma for lzma_crc64() only: its CRC objects are plain C with no libc calls.
LZMA_A := /usr/lib/x86_64-linux-gnu/liblzma.a
STATIC_LIBS := $(HTTP_PARSER_A) $(LZMA_A)
# The seccomp BPF programs, generated from seccomp/rules.h (see below).
SECCOMP_GEN := $(BUILD)/seccomp_filters.c

# ---- static musl kiln --------------------------------------------------------------
MUSL_INC  := $(BUILD)/musl-include
MUSL_CFLAGS := $(BASE_CFLAGS) -Os -isystem $(MUSL_INC) -ffunction-sections -fdata-sections
MUSL_LDFLAGS := -static -Wl,--gc-sections -Wl,-z,noexecstack -Wl,-z,relro -Wl,-z,now
MUSL_OBJS := $(patsubst %.c,$(BUILD)/musl/%.o,$(LIB_SRCS) vmm/main.c) $(BUILD)/musl/seccomp_filters.o
# Snapshot tools: the example Uffd page-fault handler and Firecracker's rebase-snap.
TOOLS     := $(BUILD)/kiln-uffd-handler $(BUILD)/kiln-rebase-snap

all: $(BUILD)/kiln $(BUILD)/tiny-guest.elf $(BUILD)/kiln-jailer $(TOOLS)

# The tiny test guest (a few hundred instructions) for host-side tests and bench/startup.
TINY_SRCS := $(addprefix tests/guest/tiny/,tiny.S smp.S highmem.S virtio.S)
$(BUILD)/tiny-guest.elf: $(TINY_SRCS) tests/guest/tiny/tiny.h tests/guest/tiny/tiny.ld
	@mkdir -p $(dir $@)
	$(HOST_CC) -nostdlib -static -no-pie -Wl,-T,tests/guest/tiny/tiny.ld -Wl,--build-id=none \
		-Wl,-z,noexecstack -o $@ $(TINY_SRCS)

$(MUSL_INC)/.stamp: Makefile
	@mkdir -p $(MUSL_INC)
	ln -sfn /usr/include/linux $(MUSL_INC)/linux
	ln -sfn /usr/include/asm-generic $(MUSL_INC)/asm-generic
	ln -sfn /usr/include/video $(MUSL_INC)/video
	ln -sfn /usr/include/x86_64-linux-gnu/asm $(MUSL_INC)/asm
	ln -sfn /usr/include/jsmn.h $(MUSL_INC)/jsmn.h
	ln -sfn /usr/include/http_parser.h $(MUSL_INC)/http_parser.h
	ln -sfn /usr/include/lzma.h $(MUSL_INC)/lzma.h
	ln -sfn /usr/include/lzma $(MUSL_INC)/lzma
	@touch $@

$(BUILD)/musl/%.o: %.c $(MUSL_INC)/.stamp
	@mkdir -p $(dir $@)
	$(MUSL_CC) $(MUSL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/kiln.unstripped: $(MUSL_OBJS)
	$(MUSL_CC) $(MUSL_CFLAGS) $(MUSL_LDFLAGS) -o $@ $^ $(STATIC_LIBS)

$(BUILD)/kiln: $(BUILD)/kiln.unstripped
	strip -o $@ $<

# ---- seccomp: filters compiled to BPF at build time (libseccomp is glibc-only) -------------
$(BUILD)/gen_filters: seccomp/gen_filters.c seccomp/rules.h seccomp/seccomp.h
	@mkdir -p $(dir $@)
	$(HOST_CC) $(BASE_CFLAGS) -O1 -o $@ $< -lseccomp

$(SECCOMP_GEN): $(BUILD)/gen_filters
	$(BUILD)/gen_filters $@

$(BUILD)/musl/seccomp_filters.o: $(SECCOMP_GEN) $(MUSL_INC)/.stamp
	@mkdir -p $(dir $@)
	$(MUSL_CC) $(MUSL_CFLAGS) -MMD -MP -c $< -o $@

# kiln with -DKILN_TEST_HOOKS (tests/host/seccomp.sh): same sources, separate objects.
TESTHOOKS_OBJS := $(patsubst $(BUILD)/musl/%,$(BUILD)/musl-testhooks/%,$(MUSL_OBJS))

$(BUILD)/musl-testhooks/seccomp_filters.o: $(SECCOMP_GEN) $(MUSL_INC)/.stamp
	@mkdir -p $(dir $@)
	$(MUSL_CC) $(MUSL_CFLAGS) -DKILN_TEST_HOOKS -MMD -MP -c $< -o $@

$(BUILD)/musl-testhooks/%.o: %.c $(MUSL_INC)/.stamp
	@mkdir -p $(dir $@)
	$(MUSL_CC) $(MUSL_CFLAGS) -DKILN_TEST_HOOKS -MMD -MP -c $< -o $@

$(BUILD)/kiln-testhooks: $(TESTHOOKS_OBJS)
	$(MUSL_CC) $(MUSL_CFLAGS) $(MUSL_LDFLAGS) -o $@ $^ $(STATIC_LIBS)

# ---- kiln-jailer: runs on the host as root, outside the jail: static glibc + libcap-ng ------
JAILER_SRCS := $(sort $(wildcard jailer/*.c))
JAILER_LIB_SRCS := jailer/args.c jailer/cgroup.c jailer/jail.c
CAPNG_STATIC := $(wildcard /usr/lib/x86_64-linux-gnu/libcap-ng.a)
JAILER_LDFLAGS := $(if $(CAPNG_STATIC),-static-pie) -Wl,-z,noexecstack -Wl,-z,relro -Wl,-z,now

$(BUILD)/kiln-jailer: $(JAILER_SRCS) $(wildcard jailer/*.h)
	@mkdir -p $(dir $@)
	$(HOST_CC) $(BASE_CFLAGS) -O2 -fPIE -D_FORTIFY_SOURCE=2 $(JAILER_LDFLAGS) -o $@ \
		$(JAILER_SRCS) -lcap-ng

# ---- snapshot tools: the example Uffd page-fault handler and rebase-snap ------------------
# Static musl like kiln: the KVM test host has no libc of its own.

$(BUILD)/kiln-uffd-handler: tools/uffd_handler.c $(MUSL_INC)/.stamp
	@mkdir -p $(dir $@)
	$(MUSL_CC) $(MUSL_CFLAGS) $(MUSL_LDFLAGS) -o $@ $(filter %.c,$^)

$(BUILD)/kiln-rebase-snap: tools/rebase_snap.c vmm/pwrite_all.h $(MUSL_INC)/.stamp
	@mkdir -p $(dir $@)
	$(MUSL_CC) $(MUSL_CFLAGS) $(MUSL_LDFLAGS) -o $@ $(filter %.c,$^)

# ---- host (glibc) build for unit tests ----------------------------------------------
ifeq ($(SAN),1)
HOST_DIR  := $(BUILD)/san
HOST_CFLAGS := $(BASE_CFLAGS) -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer
else
HOST_DIR  := $(BUILD)/host
HOST_CFLAGS := $(BASE_CFLAGS) -O1 -g
endif
HOST_OBJS := $(patsubst %.c,$(HOST_DIR)/%.o,$(LIB_SRCS)) $(HOST_DIR)/seccomp_filters.o
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(patsubst tests/unit/%.c,$(HOST_DIR)/tests/%,$(UNIT_SRCS))

$(HOST_DIR)/%.o: %.c
	@mkdir -p $(dir $@)
	$(HOST_CC) $(HOST_CFLAGS) -MMD -MP -c $< -o $@

$(HOST_DIR)/seccomp_filters.o: $(SECCOMP_GEN)
	@mkdir -p $(dir $@)
	$(HOST_CC) $(HOST_CFLAGS) -MMD -MP -c $< -o $@

# test_jailer_* link the pure jailer sources, every other test kiln's. Static pattern rules
# over explicit lists, so no test can match the wrong one.
JAILER_HOST_OBJS := $(patsubst %.c,$(HOST_DIR)/%.o,$(JAILER_LIB_SRCS))
UNIT_JAILER_BINS := $(filter $(HOST_DIR)/tests/test_jailer_%,$(UNIT_BINS))
UNIT_KILN_BINS := $(filter-out $(UNIT_JAILER_BINS),$(UNIT_BINS))

$(UNIT_KILN_BINS): $(HOST_DIR)/tests/%: tests/unit/%.c $(HOST_OBJS)
	@mkdir -p $(dir $@)
	$(HOST_CC) $(HOST_CFLAGS) -o $@ $< $(HOST_OBJS) $(STATIC_LIBS) -lcmocka -lpthread

$(UNIT_JAILER_BINS): $(HOST_DIR)/tests/%: tests/unit/%.c $(JAILER_HOST_OBJS)
	@mkdir -p $(dir $@)
	$(HOST_CC) $(HOST_CFLAGS) -o $@ $< $(JAILER_HOST_OBJS) -lcmocka

# These run the snapshot tools (from $BUILD, as scripts/check.sh sets it).
$(HOST_DIR)/tests/test_snapshot_mem $(HOST_DIR)/tests/test_snapshot_uffd: $(TOOLS)

unit: $(UNIT_BINS)

# Races between a vCPU writing guest memory and the device reading it, under ThreadSanitizer.
TSAN_BINS := $(BUILD)/tsan/test_virtq_race
$(BUILD)/tsan/test_virtq_race: tests/unit/test_virtq_race.c virtio/virtq.c vmm/guest_mem.c \
		$(wildcard virtio/*.h vmm/*.h tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(HOST_CC) $(BASE_CFLAGS) -Wno-error=tsan -Wno-tsan -O1 -g -fsanitize=thread -o $@ $(filter %.c,$^) -lcmocka -lpthread

TSAN_BINS += $(BUILD)/tsan/test_blk_race
$(BUILD)/tsan/test_blk_race: tests/unit/test_blk_race.c virtio/virtq.c virtio/mmio.c virtio/blk.c \
		virtio/blk_io.c virtio/blk_uring.c virtio/ratelimit.c vmm/evloop.c vmm/guest_mem.c \
		vmm/log.c $(wildcard virtio/*.h vmm/*.h tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(HOST_CC) $(BASE_CFLAGS) -Wno-error=tsan -Wno-tsan -O1 -g -fsanitize=thread -o $@ \
		$(filter %.c,$^) -lcmocka -lpthread

tsan: $(TSAN_BINS)
	@for t in $(TSAN_BINS); do $$t || exit 1; done

# ---- libFuzzer harnesses --------------------------------------------------------------
FUZZ_SRCS := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_BINS := $(patsubst fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRCS))
FUZZ_CFLAGS := $(BASE_CFLAGS) -O1 -g -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=all -Wno-unused-command-line-argument
FUZZ_RUNS ?= 1000000

$(BUILD)/fuzz/%: fuzz/%.c $(LIB_SRCS) $(SECCOMP_GEN) $(wildcard vmm/*.h boot/*.h virtio/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_LDFLAGS) -o $@ $< $(LIB_SRCS) $(SECCOMP_GEN) $(STATIC_LIBS) \
		-lpthread

# fuzz_virtq_blk checks every completion the device reports as it is reported.
$(BUILD)/fuzz/fuzz_virtq_blk: FUZZ_LDFLAGS = -Wl,--wrap=virtq_push_used

fuzz-build: $(FUZZ_BINS)

fuzz: $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do echo "== $$f"; $$f -max_total_time=300 -print_final_stats=1 \
		fuzz/corpus/$$(basename $$f) || exit 1; done

# ---- tests ------------------------------------------------------------------------------
# tests/jailer/run.sh's kiln-in-jail adopts kiln with it (a static binary: it also runs in
# the KVM test host).
$(BUILD)/jailer-reaper: tests/jailer/reaper.c
	@mkdir -p $(dir $@)
	$(HOST_CC) $(BASE_CFLAGS) -O1 -static -o $@ $<

check: all unit $(if $(filter 1,$(SAN)),,$(TSAN_BINS)) fuzz-build $(BUILD)/kiln-testhooks $(BUILD)/jailer-reaper
	@SAN=$(SAN) BUILD=$(BUILD) HOST_DIR=$(HOST_DIR) FUZZ_RUNS=$(FUZZ_RUNS) \
		scripts/check.sh

bench: all
	@$(MAKE) -s -C bench BUILD=../$(BUILD)

demo: all
	@BUILD=$(BUILD) scripts/demo.sh

guest-kernel:
	scripts/build-guest-kernel.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)

.PHONY: all unit tsan fuzz fuzz-build check bench demo guest-kernel format clean
-include $(shell find $(BUILD)/musl $(BUILD)/musl-testhooks $(BUILD)/host $(BUILD)/san -name '*.d' \
	-type f 2>/dev/null)
