# KupenStack: one non-recursive Makefile (as Redis and wrk).
#   make               build bin/kupenstack
#   make test          every tier: unit, lua, then the real-cluster tiers (tests/env)
#   make test SAN=1    the same with ASan + UBSan
#   make bench | lint | fuzz | install | clean | deps
PREFIX ?= /usr/local
DESTDIR ?=
CC ?= cc
CFLAGS ?= -O2 -g
LUA_DIR ?= $(PREFIX)/share/lua/5.1
KS_DATA ?= $(PREFIX)/share/kupenstack

PKGS := libuv libcurl yaml-0.1 libcjson luajit librabbitmq libcrypto libssl
# The build dependencies are installed by `make deps` (tests/env/deps, apt-get), never
# while this file is parsed. `make test` and `make demo` run it first, then build in a
# make of their own; any other build on a machine without them stops here, saying so.
NO_BUILD_GOALS := deps clean test check demo lint fuzz
ifneq ($(filter-out $(NO_BUILD_GOALS),$(or $(MAKECMDGOALS),all)),)
ifneq ($(shell pkg-config --exists $(PKGS) 2>/dev/null && echo yes),yes)
$(error build dependencies missing (pkg-config: $(PKGS)): run `make deps` first, as root)
endif
endif
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm

BUILD := build
ifeq ($(SAN),1)
BUILD := build/san
CFLAGS += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)
KS_CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter -Wno-format-truncation \
	-iquote host -MMD -MP -DKS_VERSION='"$(VERSION)"' -DKS_DATA='"$(KS_DATA)"' $(PKG_CFLAGS)

ifeq ($(V),1)
Q :=
else
Q := @
endif

HOST_SRC := $(filter-out host/main.c,$(wildcard host/*.c host/*/*.c))
HOST_OBJ := $(HOST_SRC:%.c=$(BUILD)/%.o)
LIB := $(BUILD)/libks.a
# The sanitizer build has a binary of its own, so that both passes can run at once (.ci/run).
BIN := bin/kupenstack
ifeq ($(SAN),1)
BIN := $(BUILD)/bin/kupenstack
endif
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
KT_SRC := $(wildcard tests/kube/kt_*.c)
KT_BIN := $(KT_SRC:tests/kube/%.c=$(BUILD)/tests/%)
BENCH_SRC := $(wildcard bench/bench_*.c)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)

all: $(BIN)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(KS_CFLAGS) $(CFLAGS) -c $< -o $@

$(LIB): $(HOST_OBJ)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

# The binary finds its library at ../stdlib beside it (host/cmd/common.c): the sanitizer
# build's gets a link to the tree's.
$(BIN): $(BUILD)/host/main.o $(LIB)
	@mkdir -p $(dir $@)
	$(Q)[ -e $(dir $@)../stdlib ] || ln -s $(CURDIR)/stdlib $(dir $@)../stdlib
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIB)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/tests/kt_%: $(BUILD)/tests/kube/kt_%.o $(BUILD)/tests/kube/kt.o $(LIB)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(LIB)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

# Benchmarks against the live API server link the real-cluster test helpers and
# bench/live.c: listed here.
BENCH_LIVE_BIN := $(BUILD)/bench/bench_reconcile $(BUILD)/bench/bench_watch_live
# Only test and benchmark objects see the test headers.
$(BUILD)/tests/%.o $(BUILD)/bench/%.o: KS_CFLAGS += -iquote tests/unit -iquote tests/kube
$(BENCH_LIVE_BIN): $(BUILD)/bench/%: $(BUILD)/bench/%.o $(BUILD)/bench/live.o $(BUILD)/tests/kube/kt.o $(LIB)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

# Tiers. Each prints "N passed, N failed"; tests/run sums them.
unit: $(BIN) $(UNIT_BIN)
	@KS_BIN=$(BIN) tests/run unit $(UNIT_BIN)

test-lua:
	@tests/run lua

test-kube: $(BIN) $(KT_BIN)
	@KS_BIN=$(BIN) tests/run kube $(KT_BIN)

# `make test` on a fresh machine: the dependencies first (quick when all are there), then
# the build and the tiers in a make that reads the flags pkg-config now has.
test check:
	@tests/env/deps
	@$(MAKE) --no-print-directory test-all

test-all: test-bins
	@KS_SAN=$(SAN) KS_BIN=$(BIN) tests/run all $(UNIT_BIN) -- $(KT_BIN)

# What the tiers run, built (.ci/run builds both passes' before running them side by side).
test-bins: $(BIN) $(UNIT_BIN) $(KT_BIN)

bench: $(BIN) $(BENCH_BIN)
	@bench/run $(BENCH_BIN)

FUZZ_SECONDS ?= 60
fuzz:
	@tests/fuzz/run $(FUZZ_SECONDS) $(FUZZ_SRC)

lint:
	@tests/lint

deps:
	@tests/env/deps

demo:
	@tests/env/demo

# The binary finds its library at KS_DATA/stdlib, compiled in from PREFIX: host/cmd/common.c
# (ks_cmd_stdlib) is compiled again here with this PREFIX and linked before the archive
# (bin/kupenstack may have been built with another).
# The library also goes to LUA_DIR, the Lua module path (LuaRocks' tree for the rock).
install: $(LIB) $(BUILD)/host/main.o
	@mkdir -p $(BUILD)/install
	$(Q)$(CC) $(KS_CFLAGS) $(CFLAGS) -c host/cmd/common.c -o $(BUILD)/install/common.o
	$(Q)$(CC) $(LDFLAGS) -o $(BUILD)/install/kupenstack $(BUILD)/host/main.o \
		$(BUILD)/install/common.o $(LIB) $(PKG_LIBS)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(LUA_DIR) $(DESTDIR)$(KS_DATA)
	install -m 0755 $(BUILD)/install/kupenstack $(DESTDIR)$(PREFIX)/bin/kupenstack
	cd stdlib && find ks -name '*.lua' ! -name '*_spec.lua' \
		-exec install -D -m 0644 {} $(DESTDIR)$(KS_DATA)/stdlib/{} \; \
		-exec install -D -m 0644 {} $(DESTDIR)$(LUA_DIR)/{} \;
	find plugins crds deploy -type f ! -name '*_spec.lua' \
		-exec install -D -m 0644 {} $(DESTDIR)$(KS_DATA)/{} \;

clean:
	rm -rf build bin

.PHONY: all unit test-lua test-kube test test-all check bench fuzz lint deps demo install clean
.SECONDARY:

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
