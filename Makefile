# cork: a C runtime embedding Lua 5.4. Plain make; see README.md.
#
#   make            build ./cork (and libcork.a)
#   make deps       install build + test dependencies (Debian, apt-get)
#   make test       unit, Lua, CLI and integration tests (prove, TAP)
#   make asan       the whole suite under ASan + UBSan (build/asan/)
#   make bench      benchmarks (ratios measured side by side)
#   make libcurl    cork's own trimmed libcurl (optional; tools/libcurl.sh)
#   make demo       install what is missing, build, run `cork run demo`
#   make install PREFIX=/usr/local    cork, libcork, cork(1), bash/zsh completion
#   make clean

VERSION  := 0.1.0
PREFIX   ?= /usr/local
BUILD    ?= build
CC       ?= cc
Q        := $(if $(V),,@)

# Binding modules: src/NAME.c exports luaopen_cork_NAME, preloaded as "cork.NAME";
# a private C module under a Lua one, cork._NAME, is src/NAME.c too
# (cork._docker under lua/cork/docker.lua).
MODULES  := core scope proc fs yaml log net ca _docker json canary
MODULE_SRC := $(patsubst _%,%,$(MODULES))
# Modules made of several files: the extra objects of each.
MODULE_EXTRA := docker_transport docker_json docker_image docker_exec docker_events

# pkg-config name -> Debian package, checked before anything is compiled.
PKGS     := lua5.4:liblua5.4-dev lua5.4-cjson:lua-cjson-dev yaml-0.1:libyaml-dev \
            libcurl:libcurl4-openssl-dev openssl:libssl-dev
PKG_NAMES := $(foreach p,$(PKGS),$(word 1,$(subst :, ,$(p))))

WARN     := -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes \
            -Wformat=2 -Wno-unused-parameter
CFLAGS   ?= -O2 -g
SAN      ?=
ALL_CFLAGS  = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(SAN) -fPIC -Isrc -Iinclude -I$(BUILD) \
              $(shell pkg-config --cflags $(PKG_NAMES) 2>/dev/null) -DCORK_VERSION='"$(VERSION)"'
# libcurl and OpenSSL are not linked: cork.docker loads libcurl (dlopen) on
# first use, cork.ca libcrypto, so a process that never talks to Docker or
# makes a certificate maps neither (src/docker_transport.c, src/ca.c)
LIBS        = $(shell pkg-config --libs $(filter-out libcurl openssl,$(PKG_NAMES)) 2>/dev/null) -lm -lpthread -ldl
ALL_LDFLAGS = $(LDFLAGS) $(SAN)

RUNTIME_SRC := runtime error auxlib
LIB_OBJS := $(addprefix $(BUILD)/,$(addsuffix .o,$(RUNTIME_SRC) $(MODULE_SRC) $(MODULE_EXTRA))) \
            $(BUILD)/embedded.o $(BUILD)/modules.o
MAIN_OBJ := $(BUILD)/main.o
EMBED_FILES := $(shell find lua recipes -type f ! -name '*~' ! -name '.*' 2>/dev/null | LC_ALL=C sort)
C_TESTS  := $(patsubst tests/c/%.c,$(BUILD)/tests/%,$(wildcard tests/c/test_*.c))

.PHONY: all deps test unit-test asan bench libcurl demo install clean check-docs fuzz
all: $(BUILD)/cork $(BUILD)/libcork.so $(BUILD)/cork.pc $(BUILD)/cork.1 $(if $(filter build,$(BUILD)),cork)

cork: $(BUILD)/cork
	$(Q)ln -sf $(BUILD)/cork cork

$(BUILD)/cork: $(MAIN_OBJ) $(BUILD)/libcork.a
	@echo "  LINK  $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $(MAIN_OBJ) $(BUILD)/libcork.a $(LIBS)

$(BUILD)/libcork.a: $(LIB_OBJS)
	@echo "  AR    $@"
	$(Q)rm -f $@ && ar rcs $@ $^

# The shared library exports exactly the API of include/cork.h (src/libcork.map).
$(BUILD)/libcork.so: $(LIB_OBJS) src/libcork.map
	@echo "  LINK  $@"
	$(Q)$(CC) -shared -Wl,-soname,libcork.so.0 -Wl,--version-script=src/libcork.map $(ALL_LDFLAGS) \
	  -o $@ $(LIB_OBJS) $(LIBS)
	$(Q)ln -sf libcork.so $(BUILD)/libcork.so.0

# cork(1), made by cork itself from the text `cork help` prints (tools/man.lua).
$(BUILD)/cork.1: $(BUILD)/cork tools/man.lua
	@echo "  MAN   $@"
	$(Q)$(BUILD)/cork script tools/man.lua > $@.tmp && mv $@.tmp $@

# Rewritten whenever PREFIX changes (`make install PREFIX=...` after `make`).
$(BUILD)/cork.pc: FORCE | $(BUILD)
	$(Q)printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$${prefix}/lib' 'includedir=$${prefix}/include' '' \
	  'Name: cork' 'Description: the cork runtime (C + embedded Lua 5.4) as a library' \
	  'Version: $(VERSION)' 'Cflags: -I$${includedir}' \
	  'Libs: -L$${libdir} -lcork' 'Libs.private: $(strip $(LIBS))' > $@.tmp
	$(Q)if cmp -s $@.tmp $@; then rm -f $@.tmp; else echo "  GEN   $@"; mv $@.tmp $@; fi
FORCE:

# Checked when the first file is compiled (not when the Makefile is read), so
# that `make deps test` on a fresh machine installs first, then builds.
$(BUILD)/.pkgs-ok: Makefile | $(BUILD)
	$(Q)command -v pkg-config >/dev/null || { echo "cork: pkg-config not found: install the Debian package pkg-config (or run: make deps)"; exit 1; }
	$(Q)for p in $(PKGS); do name=$${p%%:*}; deb=$${p#*:}; \
	  pkg-config --exists $$name || { echo "cork: missing $$name: install the Debian package $$deb (or run: make deps)"; exit 1; }; \
	done; touch $@

$(BUILD)/%.o: src/%.c | $(BUILD) $(BUILD)/.pkgs-ok
	@echo "  CC    $<"
	$(Q)$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/%.o: $(BUILD)/%.c
	@echo "  CC    $<"
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

# lua/ and recipes/ are compiled in as source text (never bytecode).
$(BUILD)/embed: tools/embed.c | $(BUILD)
	@echo "  HOSTCC $<"
	$(Q)$(CC) -O2 -Wall -Wextra -o $@ $<

$(BUILD)/embedded.c: $(BUILD)/embed $(EMBED_FILES) Makefile
	@echo "  EMBED $(words $(EMBED_FILES)) files"
	$(Q)$(BUILD)/embed $(EMBED_FILES) > $@.tmp && mv $@.tmp $@

# The luaopen_cork_* functions are declared in src/modules.h, one place.
$(BUILD)/modules.c: Makefile src/modules.h | $(BUILD)
	@echo "  GEN   $@"
	$(Q)for m in $(MODULES); do grep -q "luaopen_cork_$$m(" src/modules.h || \
	  { echo "src/modules.h: declare luaopen_cork_$$m" >&2; exit 1; }; done
	$(Q){ echo '#include "lua.h"'; echo '#include "modules.h"'; \
	  echo 'const struct cork_module cork_modules[] = {'; \
	  for m in $(MODULES); do echo "  {\"cork.$$m\", luaopen_cork_$$m},"; done; \
	  echo '  {0, 0}'; echo '};'; } > $@

$(BUILD)/modules.o: src/modules.h
$(BUILD)/runtime.o: $(BUILD)/modules.c

$(BUILD) $(BUILD)/tests:
	$(Q)mkdir -p $@

$(BUILD)/tests/%: tests/c/%.c tests/c/tap.h $(BUILD)/libcork.a | $(BUILD)/tests
	@echo "  CC    $<"
	$(Q)$(CC) $(ALL_CFLAGS) -Itests/c -o $@ $< $(BUILD)/libcork.a $(LIBS) $(ALL_LDFLAGS)

# ---- tests ------------------------------------------------------------------
export CORK_BIN = $(CURDIR)/$(BUILD)/cork
export CORK_ROOT = $(CURDIR)
PROVE ?= prove

# `make test` installs what is missing first (tools/deps.sh, apt-get), so it
# is the whole set-up on a fresh Debian machine.
test: deps
	$(Q)$(MAKE) --no-print-directory all $(C_TESTS)
	$(Q)tests/run-all $(BUILD)

unit-test: all $(C_TESTS)
	$(Q)CORK_SKIP_INTEGRATION=1 tests/run-all $(BUILD)

asan:
	$(Q)$(MAKE) --no-print-directory BUILD=build/asan CFLAGS="-O1 -g -fno-omit-frame-pointer" \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" test

# libFuzzer on the manifest loader (tests/fuzz/fuzz_manifest.c): a clang build
# of libcork under build/fuzz, FUZZ_TIME seconds of fuzzing from the corpus in
# tests/fuzz/corpus, then the new interesting inputs merged back into it.
FUZZ_TIME ?= 180
FUZZ_SAN  := -fsanitize=address,undefined -fno-sanitize-recover=undefined
fuzz:
	$(Q)$(MAKE) --no-print-directory BUILD=build/fuzz CC=clang CFLAGS="-O1 -g -fno-omit-frame-pointer" \
	  SAN="-fsanitize=fuzzer-no-link $(FUZZ_SAN)" build/fuzz/libcork.a
	@echo "  CC    tests/fuzz/fuzz_manifest.c"
	$(Q)clang -std=c11 -D_GNU_SOURCE $(WARN) -O1 -g -fsanitize=fuzzer $(FUZZ_SAN) -Isrc -Iinclude \
	  $(shell pkg-config --cflags $(PKG_NAMES)) -o build/fuzz/fuzz_manifest tests/fuzz/fuzz_manifest.c \
	  build/fuzz/libcork.a $(LIBS)
	$(Q)rm -rf build/fuzz/corpus && mkdir -p build/fuzz/corpus
	build/fuzz/fuzz_manifest -max_total_time=$(FUZZ_TIME) -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
	  -dict=tests/fuzz/manifest.dict -artifact_prefix=build/fuzz/ build/fuzz/corpus tests/fuzz/corpus
	build/fuzz/fuzz_manifest -merge=1 -max_len=4096 tests/fuzz/corpus build/fuzz/corpus

check-docs:
	$(Q)tests/cli/docs.sh

bench:
	$(Q)tools/deps.sh bench
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tools/libcurl.sh $(BUILD)/libcurl || echo "bench: cork uses Debian's libcurl in this run"
	$(Q)bench/run-all $(BUILD)

# cork's own libcurl, $(BUILD)/libcurl/libcurl.so.4 and libcurl-notls.so.4
# (tools/libcurl.sh: built from Debian's source package of the installed
# libcurl4 with HTTP, unix sockets and OpenSSL only, and once more without
# TLS; a few minutes). cork loads them from beside its binary (or
# PREFIX/lib/cork after `make install`): the TLS-less one for an engine on a
# unix socket, Debian's libcurl.so.4 when neither is there: 4 MiB less
# resident and about 30 ms less per process that talks to Docker
# (docs/performance.md).
libcurl:
	$(Q)tools/libcurl.sh $(BUILD)/libcurl

deps:
	$(Q)tools/deps.sh $(if $(DEPS),$(DEPS),all)

# README's first command: installs what the demo needs (build tools,
# busybox-static, docker.io), builds cork, and runs `cork run demo` against
# the engine at DOCKER_HOST (or /var/run/docker.sock), or a private engine
# started for it (and stopped afterwards) when none answers (tools/demo.sh).
demo:
	$(Q)tools/deps.sh demo
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tools/demo.sh $(BUILD)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include
	install -m 0755 $(BUILD)/cork $(DESTDIR)$(PREFIX)/bin/cork
	for l in libcurl.so.4 libcurl-notls.so.4; do if [ -f $(BUILD)/libcurl/$$l ]; then \
	  install -d $(DESTDIR)$(PREFIX)/lib/cork && install -m 0644 $(BUILD)/libcurl/$$l $(DESTDIR)$(PREFIX)/lib/cork/$$l; fi; done
	install -m 0644 $(BUILD)/libcork.a $(DESTDIR)$(PREFIX)/lib/libcork.a
	install -m 0644 include/cork.h $(DESTDIR)$(PREFIX)/include/cork.h
	install -m 0755 $(BUILD)/libcork.so $(DESTDIR)$(PREFIX)/lib/libcork.so.$(VERSION)
	ln -sf libcork.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libcork.so.0
	ln -sf libcork.so.0 $(DESTDIR)$(PREFIX)/lib/libcork.so
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 0644 $(BUILD)/cork.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/cork.pc
	install -d $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/bash-completion/completions \
	  $(DESTDIR)$(PREFIX)/share/zsh/site-functions
	install -m 0644 $(BUILD)/cork.1 $(DESTDIR)$(PREFIX)/share/man/man1/cork.1
	install -m 0644 completions/cork.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/cork
	install -m 0644 completions/_cork $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_cork

clean:
	rm -rf build cork

-include $(wildcard $(BUILD)/*.d)
