# spoolq - message queues as directories.  GNU make.

PREFIX	?= /usr/local
BINDIR	?= $(PREFIX)/bin
MANDIR	?= $(PREFIX)/share/man
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
EXAMPLESDIR ?= $(PREFIX)/share/doc/spoolq/examples
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/vendor-completions
DESTDIR	?=

CC	?= cc
CFLAGS	?= -O2 -g
WARN	 = -Wall -Wextra -Wshadow -Wpointer-arith -Wcast-qual \
	   -Wstrict-prototypes -Wmissing-prototypes
ifdef CI
WARN	+= -Werror
endif
ifdef WERROR
WARN	+= -Werror
endif
PKGS	 = libbsd-overlay inih
DEPS_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# Linked statically: loading three shared libraries would cost more than
# everything else a one-message qsend does (SPEC 6: start-up within 1.2x
# of a trivial program).
DEPS_LIBS   := -Wl,-Bstatic $(shell pkg-config --static --libs $(PKGS) \
	       2>/dev/null) -Wl,-Bdynamic
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(DEPS_CFLAGS) -Ilib $(CPPFLAGS) $(CFLAGS) \
	     $(EXTRA_CFLAGS) -MMD -MP
ALL_LDFLAGS = $(LDFLAGS) $(EXTRA_LDFLAGS)

# Build directory: "." for the normal build, build-asan for the sanitized one.
O	?= .

TOOLS	 = qsend qrecv qack qadmin qworker qbridge
LIB_SRC	 = $(wildcard lib/*.c)
CMD_COMMON = cmd/tool.c
UNIT_SRC = $(wildcard tests/unit/*_test.c)
FUZZ_SRC = $(wildcard tests/fuzz/*_fuzz.c)
MANS	 = $(wildcard man/*.[157])

LIB_OBJ	 = $(LIB_SRC:%.c=$(O)/%.o)
LIBA	 = $(O)/lib/libspoolq.a
BINS	 = $(TOOLS:%=$(O)/bin/%)
UNITS	 = $(UNIT_SRC:%.c=$(O)/%)

# Entry points first make sure the libraries are there, then build in a
# sub-make, whose pkg-config calls see what was just installed.
all: deps-check
	@$(MAKE) --no-print-directory build

build: $(BINS) $(O)/bench/floor $(O)/bench/spawn $(O)/bench/latency \
	$(O)/bench/bridge-base $(O)/bench/pass

$(O)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "CC $@"
	@$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(LIBA): $(LIB_OBJ)
	@rm -f $@
	@echo "AR $@"
	@$(AR) rcs $@ $^

QADMIN_OBJ = $(patsubst %.c,$(O)/%.o,$(wildcard cmd/qadmin_*.c))
$(O)/bin/qadmin: $(O)/cmd/qadmin.o $(QADMIN_OBJ) $(O)/cmd/tool.o $(LIBA)
	@mkdir -p $(dir $@)
	@echo "LD $@"
	@$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $^ $(DEPS_LIBS)

QWORKER_OBJ = $(patsubst %.c,$(O)/%.o,$(wildcard cmd/qworker_*.c))
$(O)/bin/qworker: $(O)/cmd/qworker.o $(QWORKER_OBJ) $(O)/cmd/tool.o $(LIBA)
	@mkdir -p $(dir $@)
	@echo "LD $@"
	@$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $^ $(DEPS_LIBS)

# qbridge: the core and one file per broker, each with its client library
# from Debian (hiredis, nats.c, rabbitmq-c), linked dynamically.
BRIDGE_PKGS = hiredis libnats librabbitmq libssl libcrypto
BRIDGE_OBJ = $(patsubst %.c,$(O)/%.o,$(wildcard cmd/qbridge_*.c))
BRIDGE_LIBS := $(shell pkg-config --libs $(BRIDGE_PKGS) 2>/dev/null)
$(O)/bin/qbridge: $(O)/cmd/qbridge.o $(BRIDGE_OBJ) $(O)/cmd/tool.o $(LIBA)
	@mkdir -p $(dir $@)
	@echo "LD $@"
	@$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $^ $(DEPS_LIBS) $(BRIDGE_LIBS)

$(O)/bin/%: $(O)/cmd/%.o $(O)/cmd/tool.o $(LIBA)
	@mkdir -p $(dir $@)
	@echo "LD $@"
	@$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $^ $(DEPS_LIBS)

$(O)/tests/unit/%_test: $(O)/tests/unit/%_test.o $(LIBA)
	@echo "LD $@"
	@$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $^ $(DEPS_LIBS)

$(O)/tests/fuzz/%_fuzz: $(O)/tests/fuzz/%_fuzz.o $(LIBA)
	@echo "LD $@"
	@$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -fsanitize=fuzzer -o $@ $^ \
	    $(DEPS_LIBS)

$(O)/bench/floor $(O)/bench/spawn $(O)/bench/latency: $(O)/bench/%: bench/%.c
	@mkdir -p $(dir $@)
	@echo "CC $@"
	@$(CC) -O2 -std=c11 -D_GNU_SOURCE $(WARN) -o $@ $<

# The groups' maintenance pass, timed through the library (bench/groups).
$(O)/bench/pass: bench/pass.c $(LIBA)
	@mkdir -p $(dir $@)
	@echo "CC $@"
	@$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $^ $(DEPS_LIBS)

# The baselines of bench/bridge: the brokers' client libraries alone.
$(O)/bench/bridge-base: bench/bridge-base.c
	@mkdir -p $(dir $@)
	@echo "CC $@"
	@$(CC) -O2 -std=c11 -D_GNU_SOURCE $(WARN) -o $@ $< $(BRIDGE_LIBS)

units: $(UNITS)

# What each entry point needs from .ci/commands: .ci/deps installs what is
# missing in one apt-get when it may, else prints the one command to run.
# make check checks the whole list (all but extra) before it builds.
DEPS_GROUPS = build
check: DEPS_GROUPS = build test fuzz bench demo examples ci
check-crash: DEPS_GROUPS = build test
check-bridge: DEPS_GROUPS = build test
check-asan: DEPS_GROUPS = build test
check-cluster: DEPS_GROUPS = build cluster
check-valgrind: DEPS_GROUPS = build test extra
check-system: DEPS_GROUPS = build system
demo: DEPS_GROUPS = build demo
bench: DEPS_GROUPS = build bench
lint: DEPS_GROUPS = build
fuzzers fuzz: DEPS_GROUPS = build fuzz

deps-check:
	@sh .ci/deps $(DEPS_GROUPS)

asan: deps-check
	@$(MAKE) --no-print-directory O=build-asan CFLAGS="-O1 -g -fno-omit-frame-pointer" \
	    EXTRA_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all" \
	    EXTRA_LDFLAGS="-fsanitize=address,undefined" \
	    $(TOOLS:%=build-asan/bin/%) units

# libFuzzer harnesses of every parser of outside input (tests/fuzz/), built
# with clang into build-fuzz/, the library instrumented for coverage and
# AddressSanitizer and UndefinedBehaviorSanitizer.  `make fuzz` runs each
# for FUZZ_TIME seconds (default 60), `make check` for 10; tests/fuzz/run
# prints a TAP line per harness with its executions and coverage.
FUZZ_TIME ?= 60
FUZZ_CC	?= clang
FUZZ_SAN = -fsanitize=address,undefined -fno-sanitize-recover=all

fuzzers: deps-check
	@$(MAKE) --no-print-directory O=build-fuzz CC=$(FUZZ_CC) \
	    CFLAGS="-O1 -g -fno-omit-frame-pointer" \
	    EXTRA_CFLAGS="$(FUZZ_SAN) -fsanitize=fuzzer-no-link" \
	    EXTRA_LDFLAGS="$(FUZZ_SAN)" $(FUZZ_SRC:%.c=build-fuzz/%)

fuzz: fuzzers
	@FUZZ_TIME=$(FUZZ_TIME) tests/fuzz/run

# CHECK_FLAGS=--cluster adds the short run of the cluster scenarios
# (.ci/run does; it needs the cluster group of .ci/commands).
check: all
	@$(MAKE) --no-print-directory units asan fuzzers
	@FUZZ_TIME=10 tests/run --asan --fuzz $(CHECK_FLAGS)

# The scenarios on GlusterFS over loopback, two mounts as two hosts
# (tests/cluster/run): needs root, /dev/fuse and the cluster group of
# .ci/commands; says why and skips when it cannot.  CLUSTER_FLAGS=--short
# for the quick variant.
check-cluster: all
	@tests/cluster/run $(CLUSTER_FLAGS)

# Crash at every step: tests/crash/run kills each transition at every
# system call under strace and checks what it leaves (make check kills it
# only at the calls that change files).
check-crash: all
	@tests/crash/run --all

# The qbridge suites alone, with 10,000 messages per round trip instead
# of make check's 1,000 (the brokers are real servers: minutes).
check-bridge: all
	@QBRIDGE_TEST_N=10000 bats tests/97-qbridge-*.bats

check-asan: asan
	@SPOOLQ_BIN=$(CURDIR)/build-asan/bin SPOOLQ_UNIT=$(CURDIR)/build-asan/tests/unit \
	    tests/run --no-stress

check-valgrind: all
	@$(MAKE) --no-print-directory units
	@SPOOLQ_WRAP="valgrind -q --error-exitcode=99 --leak-check=full" \
	    tests/run --no-stress

# The package on a booted Debian 12: tests/system/boot-test builds it,
# boots a fresh root under systemd-nspawn, and there installs it with apt
# and runs qworker@jobs through systemctl.  As root, with the network;
# a few minutes, so not part of make check.
check-system: deps-check
	@tests/system/boot-test

demo: all
	@examples/demo.sh

bench: all
	@bench/run
	@bench/worker
	@bench/delivery
	@bench/bridge
	@bench/groups

lint: deps-check
	@for m in $(MANS); do mandoc -Tlint -Wwarning $$m || exit 1; done

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 \
	    $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man7
	install -m 755 $(BINS) $(DESTDIR)$(BINDIR)/
	for m in $(MANS); do \
		s=$${m##*.}; install -m 644 $$m $(DESTDIR)$(MANDIR)/man$$s/; \
	done
	@$(MAKE) --no-print-directory install-extras

uninstall:
	for t in $(TOOLS); do rm -f $(DESTDIR)$(BINDIR)/$$t; done
	for m in $(MANS); do \
		s=$${m##*.}; rm -f $(DESTDIR)$(MANDIR)/man$$s/$${m##*/}; \
	done
	@$(MAKE) --no-print-directory uninstall-extras

# systemd units (ExecStart= naming BINDIR), shell completions and the
# examples (those in C go with the library: LIBEXAMPLESDIR), where Debian
# looks for them.  Nothing is enabled or started.
UNITFILES = examples/qworker@.service examples/qbridge@.service \
	    examples/spoolq-gc.service examples/spoolq-gc.timer
EXAMPLES = $(filter-out %.c,$(wildcard examples/*))
C_EXAMPLES = $(wildcard examples/*.c)
# Computed here: the recipes name plain variables only, which .ci/scan
# reads as words.
BASHCOMP_LINKS = $(filter-out qadmin,$(TOOLS))
EXAMPLES_PARENT = $(dir $(EXAMPLESDIR))
C_EXAMPLES_INSTALLED = $(addprefix $(DESTDIR)$(LIBEXAMPLESDIR)/,$(notdir $(C_EXAMPLES)))

install-extras:
	install -d $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(BASHCOMPDIR) \
	    $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(EXAMPLESDIR)
	for e in $(EXAMPLES); do \
		if [ -x $$e ]; then m=755; else m=644; fi; \
		install -m $$m $$e $(DESTDIR)$(EXAMPLESDIR)/ || exit 1; \
	done
	for u in $(UNITFILES); do \
		sed -e "s|/usr/local/bin/|$(BINDIR)/|g" \
		    -e "s|^Environment=PATH=|&$(BINDIR):|" $$u \
		    >$(DESTDIR)$(SYSTEMDUNITDIR)/$${u##*/} && \
		chmod 644 $(DESTDIR)$(SYSTEMDUNITDIR)/$${u##*/} || exit 1; \
	done
	install -m 644 completion/spoolq.bash $(DESTDIR)$(BASHCOMPDIR)/qadmin
	for t in $(BASHCOMP_LINKS); do \
		ln -sf qadmin $(DESTDIR)$(BASHCOMPDIR)/$$t || exit 1; \
	done
	install -m 644 completion/_spoolq $(DESTDIR)$(ZSHCOMPDIR)/_spoolq

uninstall-extras:
	for u in $(UNITFILES); do \
		rm -f $(DESTDIR)$(SYSTEMDUNITDIR)/$${u##*/}; \
	done
	for t in $(TOOLS); do rm -f $(DESTDIR)$(BASHCOMPDIR)/$$t; done
	rm -f $(DESTDIR)$(ZSHCOMPDIR)/_spoolq
	for e in $(EXAMPLES); do rm -f $(DESTDIR)$(EXAMPLESDIR)/$${e##*/}; done
	rmdir $(DESTDIR)$(EXAMPLESDIR) $(DESTDIR)$(EXAMPLES_PARENT) \
	    2>/dev/null || true

clean:
	rm -rf bin build-asan build-fuzz lib/*.o lib/*.d lib/*.a cmd/*.o \
	    cmd/*.d tests/unit/*.o tests/unit/*.d $(UNITS) bench/floor \
	    bench/spawn bench/latency bench/bridge-base bench/pass

# ---------------------------------------------------------------- libspoolq
# The C library for programs.  lib/libspoolq.so.0 is built from objects of
# its own (-fPIC) and exports exactly the functions declared in the public
# headers: lib/libspoolq.map, the version script, is made from them, so a
# function added there is exported and every other one (internal.h) stays
# local.  spoolq.h and the headers it includes are installed into
# $(INCLUDEDIR)/spoolq, found through spoolq.pc.  The tools keep linking
# libspoolq.a statically (start-up cost, SPEC 6).
LIBDIR	?= $(PREFIX)/lib
LIBEXAMPLESDIR ?= $(EXAMPLESDIR)
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
VERSION	:= $(shell sed -n 's/^.define SQ_VERSION[^"]*"\(.*\)"/\1/p' lib/spoolq.h)
SONAME	 = libspoolq.so.0
# spoolq.h and the headers it includes: a header added to it is installed
# and exported with it.
PUB_H	:= lib/spoolq.h $(addprefix lib/,$(shell sed -n \
	   's/^\#include "\([a-z_]*\.h\)"$$/\1/p' lib/spoolq.h))
PIC_OBJ	 = $(LIB_SRC:lib/%.c=$(O)/lib/pic/%.o)
SOLIB	 = $(O)/lib/$(SONAME)
SHLIB_LIBS := $(shell pkg-config --libs libbsd-overlay inih 2>/dev/null)

build: $(SOLIB) $(O)/lib/spoolq.pc

$(O)/lib/pic/%.o: lib/%.c
	@mkdir -p $(dir $@)
	@echo "CC $@"
	@$(CC) $(ALL_CFLAGS) -fPIC -c -o $@ $<

$(O)/lib/libspoolq.map: $(PUB_H)
	@echo "GEN $@"
	@{ echo '{ global:'; \
	    awk '/^[a-z]/ && !/^typedef/ && match($$0, /sq_[a-z0-9_]+\(/) { \
		print "\t" substr($$0, RSTART, RLENGTH - 1) ";" }' $(PUB_H) | sort -u; \
	    echo 'local: *; };'; } >$@

$(SOLIB): $(PIC_OBJ) $(O)/lib/libspoolq.map
	@echo "LD $@"
	@$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -shared -Wl,-soname,$(SONAME) \
	    -Wl,--version-script=$(O)/lib/libspoolq.map -Wl,-z,defs \
	    -o $@ $(PIC_OBJ) $(SHLIB_LIBS)

$(O)/lib/spoolq.pc: lib/spoolq.pc.in lib/spoolq.h
	@echo "GEN $@"
	@sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' \
	    lib/spoolq.pc.in >$@

install: install-lib
uninstall: uninstall-lib
clean: clean-lib

# spoolq.pc names the install paths: rebuilt for every install.
install-lib: all
	@rm -f $(O)/lib/spoolq.pc
	@$(MAKE) --no-print-directory $(O)/lib/spoolq.pc
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR) \
	    $(DESTDIR)$(INCLUDEDIR)/spoolq $(DESTDIR)$(MANDIR)/man3
	install -m 644 $(SOLIB) $(LIBA) $(DESTDIR)$(LIBDIR)/
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libspoolq.so
	install -m 644 $(PUB_H) $(DESTDIR)$(INCLUDEDIR)/spoolq/
	install -m 644 $(O)/lib/spoolq.pc $(DESTDIR)$(PKGCONFIGDIR)/
	install -m 644 man/libspoolq.3 $(DESTDIR)$(MANDIR)/man3/
	install -d $(DESTDIR)$(LIBEXAMPLESDIR)
	install -m 644 $(C_EXAMPLES) $(DESTDIR)$(LIBEXAMPLESDIR)/

uninstall-lib:
	rm -f $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libspoolq.so \
	    $(DESTDIR)$(LIBDIR)/libspoolq.a $(DESTDIR)$(PKGCONFIGDIR)/spoolq.pc \
	    $(DESTDIR)$(MANDIR)/man3/libspoolq.3 \
	    $(C_EXAMPLES_INSTALLED)
	rm -rf $(DESTDIR)$(INCLUDEDIR)/spoolq

clean-lib:
	rm -rf lib/pic lib/$(SONAME) lib/libspoolq.map lib/spoolq.pc

.PHONY: install-lib uninstall-lib clean-lib

.PHONY: all build units deps-check asan fuzzers fuzz check check-crash \
	check-asan check-valgrind check-system check-cluster demo bench lint \
	install uninstall \

.PHONY: all build units deps-check asan fuzzers fuzz check check-crash check-bridge \
	check-asan check-valgrind check-system demo bench lint install uninstall \
	install-extras uninstall-extras clean
.SECONDARY:

-include $(LIB_OBJ:.o=.d) $(wildcard $(O)/cmd/*.d $(O)/tests/unit/*.d \
    $(O)/lib/pic/*.d \
    $(O)/tests/fuzz/*.d)
