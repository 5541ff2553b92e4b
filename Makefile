# Gatehouse build. `make` builds build/gatehouse; `make test` installs dependencies, builds and
# runs every test tier; `make test SAN=1` does the same under AddressSanitizer + UBSan.

SAN ?= 0
ifeq ($(SAN),1)
BUILD ?= build-san
OPT := -O1
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
else
BUILD ?= build
OPT := -O2
SANFLAGS :=
endif

PKGS := openssl libcares libnghttp2 libfyaml jansson
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CPPFLAGS += -Isrc -D_GNU_SOURCE -MMD -MP
WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
	-Wno-format-nonliteral
CFLAGS ?= $(OPT) -g
CFLAGS += -std=c11 $(WARN) $(SANFLAGS) $(PKG_CFLAGS)
LDFLAGS += $(SANFLAGS) -Wl,--as-needed -Wl,-O1
LDLIBS += $(PKG_LIBS) -lev -lpthread -lm

# Always every source file (a static library links only what each binary needs).
override SRCS := $(shell find src -name '*.c' ! -path src/main.c | sort)
# Files embedded in the binary (the dashboard), turned into C by scripts/embed.
GEN_SRCS := $(BUILD)/gen/dashboard.c
OBJS := $(SRCS:%.c=$(BUILD)/%.o) $(GEN_SRCS:%.c=%.o)
LIB := $(BUILD)/libgatehouse.a
BIN := $(BUILD)/gatehouse

UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

PYTEST ?= /usr/bin/python3 -m pytest
PYTEST_ARGS ?= -q -ra

.PHONY: all deps test check unit integration fuzz-check fuzz demo format format-check clean bench \
	bench-probes

all: $(BIN)

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/gen/dashboard.c: src/admin/dashboard.html scripts/embed
	@mkdir -p $(@D)
	./scripts/embed $< dashboard_html > $@

$(BUILD)/gen/%.o: $(BUILD)/gen/%.c
	$(CC) $(CPPFLAGS) $(CFLAGS) -include src/admin/dashboard.h -c $< -o $@

$(LIB): $(OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BIN): $(BUILD)/src/main.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -Itests/unit $(CFLAGS) -o $@ $< $(LIB) $(LDFLAGS) -lcmocka $(LDLIBS)

deps:
	@./scripts/deps

# Dependencies first, in a separate make so that pkg-config sees freshly installed packages.
test: deps
	@$(MAKE) --no-print-directory check

check: $(BIN) unit fuzz-check integration

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

integration: $(BIN)
	GATEHOUSE_BIN=$(abspath $(BIN)) GATEHOUSE_SAN=$(SAN) $(PYTEST) $(PYTEST_ARGS) tests/integration

# Fuzz targets (libFuzzer, clang): built apart from the main build; `fuzz-check` replays the
# corpora and runs each target for a bounded time, `fuzz` runs a longer campaign.
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BUILD ?= build-fuzz
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(FUZZ_BUILD)/%)
FUZZ_CFLAGS := -std=c11 -g -O1 -Isrc -D_GNU_SOURCE -fsanitize=fuzzer-no-link,address,undefined \
	$(PKG_CFLAGS)
FUZZ_OBJS := $(SRCS:%.c=$(FUZZ_BUILD)/%.o) $(FUZZ_BUILD)/gen/dashboard.o
FUZZ_SECONDS ?= 10
FUZZ_LONG_SECONDS ?= 600

$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_BUILD)/gen/dashboard.o: src/admin/dashboard.html scripts/embed
	@mkdir -p $(@D)
	./scripts/embed $< dashboard_html > $(FUZZ_BUILD)/gen/dashboard.c
	clang $(FUZZ_CFLAGS) -include src/admin/dashboard.h -c $(FUZZ_BUILD)/gen/dashboard.c -o $@

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_OBJS)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJS) $(PKG_LIBS) -lev -lpthread -lm

# Keep the fuzz objects between runs (make would delete them as intermediates).
.SECONDARY: $(FUZZ_OBJS) $(FUZZ_BUILD)/gen/dashboard.c

fuzz-check: $(FUZZ_BINS)
	@set -e; for f in $(FUZZ_BINS); do n=$$(basename $$f); c=tests/fuzz/corpus/$${n#fuzz_}; \
	mkdir -p $(FUZZ_BUILD)/corpus/$$n; \
	echo "== $$n: corpus replay + $(FUZZ_SECONDS)s"; \
	$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=0 $(FUZZ_BUILD)/corpus/$$n $$c \
		>$(FUZZ_BUILD)/$$n.log 2>&1 || { tail -n 60 $(FUZZ_BUILD)/$$n.log; exit 1; }; \
	done

fuzz: $(FUZZ_BINS)
	@set -e; for f in $(FUZZ_BINS); do n=$$(basename $$f); c=tests/fuzz/corpus/$${n#fuzz_}; \
	mkdir -p $(FUZZ_BUILD)/corpus/$$n; \
	$$f -max_total_time=$(FUZZ_LONG_SECONDS) $(FUZZ_BUILD)/corpus/$$n $$c; done

demo: deps
	@$(MAKE) --no-print-directory $(BIN)
	./$(BIN) demo $(DEMO_ARGS)

bench: deps
	@$(MAKE) --no-print-directory $(BIN)
	./bench/run $(BIN)

# The prober at scale: 2,000 HTTPS backends probed every 5 s (about 2.5 minutes).
bench-probes: deps
	@$(MAKE) --no-print-directory $(BIN)
	./bench/probe-scale $(BIN)

format:
	clang-format -i $$(find src tests -name '*.[ch]')

format-check:
	clang-format --dry-run --Werror $$(find src tests -name '*.[ch]')

clean:
	rm -rf build build-san build-fuzz

-include $(OBJS:.o=.d) $(BUILD)/src/main.d
