#!/usr/bin/env bats
# .ci/commands, the list of outside commands: every script calls only what
# it lists (.ci/scan), and .ci/deps names or installs what is missing.

load helpers

setup() {
	spoolq_setup
	TOP=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
	: >"$T/empty"
}

teardown() {
	[[ -z ${SHARED-} ]] || rm -rf -- "$SHARED"
	spoolq_teardown
}

# reported [SCAN-ARGS...]: run .ci/scan and keep the command names it
# reports, sorted, one a line, in $names.
reported() {
	run "$TOP/.ci/scan" "$@"
	names=$(sed -nE 's/^[^:]+:[0-9]+: ([^:]+): not in .*/\1/p' <<<"$output" | sort -u)
}

@test "scan: every script in tests/, examples/, bench/, .ci/ and the Makefile calls only listed commands" {
	run "$TOP/.ci/scan"
	assert_success
	assert_output ''
	# Not a rubber stamp: it does see the commands of those files (of
	# one file of each kind: each whole scan takes minutes).
	cd "$TOP"
	run .ci/scan -a tests/70-qadmin-inspect.bats tests/helpers.bash \
	    examples/demo.sh bench/run .ci/deps Makefile \
	    examples/spoolq-gc.service
	assert_success
	assert_line --regexp '^tests/70-qadmin-inspect\.bats:[0-9]+: col$'
	assert_line --regexp '^tests/helpers\.bash:[0-9]+: perl$'
	assert_line --regexp '^examples/demo\.sh:[0-9]+: sha256sum$'
	assert_line --regexp '^bench/run:[0-9]+: nproc$'
	assert_line --regexp '^\.ci/deps:[0-9]+: dpkg-query$'
	assert_line --regexp '^Makefile:[0-9]+: mandoc$'
	assert_line --regexp '^examples/spoolq-gc\.service:[0-9]+: sed$'
}

@test "scan: a list without col fails, naming the suites that call it" {
	grep -v '^col[[:space:]]' "$TOP/.ci/commands" >"$T/list"
	cd "$TOP"
	reported -l "$T/list" tests/70-qadmin-inspect.bats \
	    tests/80-delivery.bats tests/10-qsend.bats
	assert_failure 1
	assert_equal "$names" col
	assert_line --regexp '^tests/70-qadmin-inspect\.bats:[0-9]+: col: not in '
	assert_line --regexp '^tests/80-delivery\.bats:[0-9]+: col: not in '
	refute_line --partial 'tests/10-qsend.bats:'
}

@test "scan: commands are found in every position a script can call them" {
	# (bats would take a test line in this file's here-document for its own)
	printf 'helper() { c_in_function; }\n%s "x" {\n' @test >"$T/calls.bats"
	cat >>"$T/calls.bats" <<'SH'
	c_plain arg
	x=$(c_subst | c_pipe) && c_and || c_or
	if c_if; then c_then; fi
	while c_while; do break; done
	run c_run -x
	run -0 c_run0
	run ! c_runbang
	timeout -s KILL 5 c_timeout
	env -u X A=b c_env
	xargs -d '\n' -n 1 c_xargs <f
	find . -name y -exec c_find {} \;
	sh -c 'c_sh_c "$1" | c_sh_pipe' _ 1
	bash -ec "c_bash_ec"
	trap 'c_trap' EXIT
	qworker --drain q -- c_qworker arg
	setpriv --reuid=65534 --regid 65534 --clear-groups c_setpriv
	strace -f -e trace=rename -o log c_strace
	wait_for -t 5 c_wait_for
	expect_fail 66 c_expect_fail
	/usr/bin/c_abs
	diff <(c_procsubst) f
	c_time_out=$( { time c_time; } 2>&1 )
}
SH
	reported -l "$T/empty" "$T/calls.bats"
	assert_failure 1
	assert_equal "$names" "$(printf '%s\n' c_abs c_and c_bash_ec c_env c_expect_fail \
	    c_find c_if c_in_function c_or c_pipe c_plain c_procsubst c_qworker c_run \
	    c_run0 c_runbang c_setpriv c_sh_c c_sh_pipe c_strace c_subst c_then \
	    c_time c_timeout c_trap c_wait_for c_while c_xargs diff env find setpriv \
	    sh bash strace timeout xargs | sort)"
	assert_line --regexp "^$T/calls\.bats:3: c_plain: not in "
	assert_line --regexp "^$T/calls\.bats:14: c_sh_pipe: not in "
}

@test "scan: builtins, functions, spoolq tools, project paths and lookups are not outside commands" {
	cat >"$T/fine.sh" <<'SH'
#!/bin/bash
f() { echo x; }
f; printf '%s\n' a; test -e x; [ -e x ]; read -r v <x; cd /; kill -0 1
qsend q a; qrecv q; qack r; qadmin stats; qworker q -- true
"$SPOOLQ_BIN/qsend" q b; ./local.sh; bench/floor; "$cmd" arg
command -v not_a_call; type -P not_a_call_either
SH
	reported -l "$T/empty" "$T/fine.sh"
	assert_success
	assert_output ''
}

@test "scan: Makefile recipes with nested make functions and automatic variables are read as shell" {
	cat >"$T/Makefile" <<'MK'
TOOLS = a b
bin/%: src/%.c
	@mkdir -p $(dir $@)
	m_cc -o $@ $< $(filter-out $(NOT),$(LIBS))
install:
	for t in $(filter-out a,$(TOOLS)); do \
		m_ln -sf a $(DESTDIR)$(BINDIR)/$$t || exit 1; \
	done
MK
	reported -l "$T/empty" "$T/Makefile"
	assert_failure 1
	refute_output --partial 'cannot parse'
	assert_equal "$names" "$(printf '%s\n' m_cc m_ln mkdir | sort)"
}

@test "scan: a script that cannot be parsed is an error" {
	printf 'if then fi (\n' >"$T/broken.sh"
	run "$TOP/.ci/scan" -l "$T/empty" "$T/broken.sh"
	assert_failure
	assert_output --partial "$T/broken.sh:1: cannot parse"
}

# fake_repo LIST-LINES...: a copy of .ci/deps with its own list, readable
# by everyone, in $SHARED.
fake_repo() {
	SHARED=$(mktemp -d /tmp/spoolq-deps.XXXXXX)
	chmod 755 "$SHARED"
	mkdir "$SHARED/.ci"
	cp "$TOP/.ci/deps" "$SHARED/.ci/deps"
	printf '%s\n' '# test list' "$@" >"$SHARED/.ci/commands"
	chmod -R a+rX "$SHARED"
}

# as_user CMD...: run CMD as nobody when root (without sudo rights).
as_user() {
	if (( EUID == 0 )); then
		setpriv --reuid=65534 --regid=65534 --clear-groups "$@"
	else
		"$@"
	fi
}

@test "deps: as a user without sudo, one command names every missing package of every group" {
	if (( EUID == 0 )); then
		command -v setpriv >/dev/null || skip "no setpriv to drop root"
	elif sudo -n true 2>/dev/null; then
		skip "this user has password-less sudo: .ci/deps would install"
	fi
	fake_repo 'sh dash build' \
	    'spoolq-no-such-b pkg-b build' \
	    'spoolq-no-such-lib.pc pkg-lib build' \
	    '/nonexistent/spoolq/file pkg-file test' \
	    'spoolq-no-such-t pkg-t test,bench' \
	    'spoolq-no-such-t2 pkg-b test' \
	    'spoolq-no-such-x pkg-x extra' \
	    'spoolq-maybe - ci'
	run as_user sh "$SHARED/.ci/deps"
	assert_failure 1
	assert_line "apt-get install -y --no-install-recommends pkg-b pkg-lib pkg-file pkg-t"
	assert_line --partial "missing: spoolq-no-such-b, spoolq-no-such-lib.pc, /nonexistent/spoolq/file, spoolq-no-such-t, spoolq-no-such-t2"
	assert_equal "$(grep -c 'apt-get' <<<"$output")" 1
	# One group: only what it needs.
	run as_user sh "$SHARED/.ci/deps" bench extra
	assert_failure 1
	assert_line "apt-get install -y --no-install-recommends pkg-t pkg-x"
}

@test "deps: nothing missing is a silent success; bad groups and bad lines are errors" {
	fake_repo 'sh dash build' "$(command -v cat) coreutils test" 'spoolq-maybe - ci'
	run sh "$SHARED/.ci/deps"
	assert_success
	assert_output ''
	run sh "$SHARED/.ci/deps" nosuchgroup
	assert_failure 64
	assert_output --partial 'usage: .ci/deps'
	printf 'sh dash\n' >>"$SHARED/.ci/commands"
	run sh "$SHARED/.ci/deps"
	assert_failure 78
	assert_output --partial "commands:5: want NAME PACKAGE GROUPS"
}

@test "deps: the project's list names a package for col, and make check checks the whole list first" {
	run awk '$1 == "col" { print $2 }' "$TOP/.ci/commands"
	assert_output bsdextrautils
	run make --no-print-directory -C "$TOP" -n check
	assert_success
	assert_line --index 0 'sh .ci/deps build test fuzz bench demo examples ci'
}

@test "deps: debian/control builds with every library package the build group of the list names" {
	# What build-essential brings (compiler, libc headers, make, the
	# shell and its tools) is not named in Build-Depends (Debian policy
	# 4.2); every other package of the build group must be.
	local essential=' binutils coreutils dash gcc libc6-dev make mawk sed '
	local want have p missing=
	want=$(awk '!/^#/ && NF >= 3 && $3 ~ /(^|,)build(,|$)/ { print $2 }' \
	    "$TOP/.ci/commands" | sort -u)
	[[ -n $want ]] || fail "no build packages in .ci/commands"
	have=$(sed -n '/^Build-Depends:/,/^[A-Z]/p' "$TOP/debian/control" |
	    sed -E 's/^Build-Depends://; s/\(.*\)//; s/[ ,]+/\n/g' | sed '/^$/d')
	for p in $want; do
		[[ $essential == *" $p "* ]] && continue
		grep -qx -- "$p" <<<"$have" || missing+=" $p"
	done
	[[ -z $missing ]] || fail "not in debian/control Build-Depends:$missing"
	grep -qx debhelper-compat <<<"$have" ||
	    fail "Build-Depends not read: $have"
}

@test "tests: a wait's condition is read again at each look, never expanded once when the wait begins" {
	# wait_for test "$(count cur q)" = 1 expands the count once: a state
	# reached a moment later is never seen.  Such a condition belongs in
	# single quotes (eval '...', bash -c '...') or a function.  wait_for
	# may have -t SECONDS, wait_until always has its SECONDS.
	local re='^[[:space:]]*(wait_for( -t [^ ]+)?|wait_until [^ ]+) (test|\[|\[\[) [^'"'"']*"?\$\('
	run grep -nE "$re" "$TOP"/tests/*.bats "$TOP"/tests/*.bash
	assert_failure 1
	assert_output ''
	# The pattern finds the shapes it is for.
	printf '%s\n' '	wait_for test "$(count cur q)" = 1' \
	    '	wait_for -t 30 [ "$(count cur q)" = 1 ]' \
	    '	wait_until 30 test "$(grep -c ok "$LOG")" -ge $((n / 8)) || break' \
	    >"$T/racy.bats"
	run grep -cE "$re" "$T/racy.bats"
	assert_output 3
}
