# wisp build. `make` builds bin/ (optimised); `make test` builds everything
# again under ASan+UBSan in build/san and runs every test (unit, fuzz corpus
# replay, integration with the real gcloud). Sources are found by folder, so
# adding a file needs no edit here.

CC      ?= cc
# V=1 shows whole compiler command lines.
Q       := $(if $(V),,@)
FUZZCC  ?= clang
MODE    ?= release
PKGS    := libh2o-evloop openssl jansson cjose sqlite3 libpq libcurl libprotobuf-c
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lwslay -lz -lpthread

# protoc-c makes C from each proto/NAME.proto into build/gen (shared by every
# mode); the results are part of libwisp.
GEN     := build/gen

WARN    := -Wall -Wextra -Wstrict-prototypes -Wformat=2 -Wshadow -Wvla -Werror \
           -Wno-missing-field-initializers
CFLAGS_COMMON := -std=c17 -D_GNU_SOURCE -Iinclude -Ilib -I$(GEN) $(WARN) $(PKG_CFLAGS) -MMD -MP

ifeq ($(MODE),san)
  OUT    := build/san
  CFLAGS := $(CFLAGS_COMMON) -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all \
            -fno-omit-frame-pointer -DWISP_DEBUG
  LDFLAGS := -fsanitize=address,undefined
else
  OUT    := build/release
  CFLAGS := $(CFLAGS_COMMON) -O2 -g
  LDFLAGS :=
endif

GEN_SRC   := $(patsubst proto/%.proto,$(GEN)/%.pb-c.c,$(sort $(wildcard proto/*.proto)))
LIB_SRC   := $(sort $(wildcard lib/*/*.c)) $(GEN_SRC)
LIB_OBJ   := $(LIB_SRC:%.c=$(OUT)/%.o)
LIBWISP   := $(OUT)/libwisp.a
BINS      := wispd wisp wisp-node wisp-metadata
BIN_OUT   := $(if $(filter san,$(MODE)),$(OUT)/bin,bin)
UNIT_SRC  := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(OUT)/tests/%)
FUZZ_SRC  := $(sort $(wildcard tests/fuzz/fuzz_*.c))

.PHONY: all test unit units fuzz integration bench clean deps
# Keep object files libFuzzer targets are built from (make would treat them
# as intermediate and delete them).
.SECONDARY:

all: $(addprefix $(BIN_OUT)/,$(BINS))

$(GEN)/%.pb-c.c $(GEN)/%.pb-c.h: proto/%.proto
	@mkdir -p $(GEN)
	@echo "  PROTOC  $<"
	$(Q)protoc-c --c_out=$(GEN) -Iproto $<

$(OUT)/%.o: %.c | $(GEN_SRC)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(LIBWISP): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^

# A binary is every .c under src/NAME/, linked with libwisp.
define bin_rule
$(1)_SRC := $$(sort $$(shell find src/$(1) -name '*.c' 2>/dev/null))
$(1)_OBJ := $$($(1)_SRC:%.c=$(OUT)/%.o)
$(BIN_OUT)/$(1): $$($(1)_OBJ) $(LIBWISP)
	@mkdir -p $$(dir $$@)
	@echo "  LINK    $$@"
	$(Q)$(CC) $(LDFLAGS) -o $$@ $$($(1)_OBJ) $(LIBWISP) $(PKG_LIBS)
endef
$(foreach b,$(BINS),$(eval $(call bin_rule,$(b))))

$(OUT)/tests/%: tests/unit/%.c $(LIBWISP) | $(GEN_SRC)
	@mkdir -p $(dir $@)
	@echo "  TEST    $@"
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIBWISP) $(PKG_LIBS) -lcmocka

# The test command: everything under sanitizers, then every suite (.ci/run
# installs what is missing first, the PostgreSQL server among it).
test:
	$(MAKE) --no-print-directory MODE=san all units
	$(MAKE) --no-print-directory fuzz
	MODE=san tests/run-unit.sh build/san/tests
	tests/run-integration.sh build/san/bin

units: $(UNIT_BIN)

unit:
	$(MAKE) MODE=san all units
	tests/run-unit.sh build/san/tests

# Fuzz targets: built with clang's libFuzzer over the library sources, then
# replayed over their corpora (and run briefly for new inputs).
FUZZ_OUT := build/fuzz
FUZZ_CFLAGS := -std=c17 -D_GNU_SOURCE -Iinclude -Ilib -I$(GEN) $(PKG_CFLAGS) -g -O1 \
               -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
$(FUZZ_OUT)/%.o: %.c | $(GEN_SRC)
	@mkdir -p $(dir $@)
	@echo "  FUZZCC  $<"
	$(Q)$(FUZZCC) $(FUZZ_CFLAGS) -c $< -o $@
$(FUZZ_OUT)/fuzz_%: tests/fuzz/fuzz_%.c $(LIB_SRC:%.c=$(FUZZ_OUT)/%.o)
	@echo "  FUZZ    $@"
	$(Q)$(FUZZCC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(PKG_LIBS)
fuzz: $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_OUT)/%)
	tests/run-fuzz.sh $(FUZZ_OUT)

integration: all
	tests/run-integration.sh bin

bench: all
	bench/run.sh

deps:
	scripts/deps.sh

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' 2>/dev/null)

# The roles are built into libwisp (lib/iam/roles_data.c includes the file).
$(OUT)/lib/iam/roles_data.o $(FUZZ_OUT)/lib/iam/roles_data.o: data/roles.json
