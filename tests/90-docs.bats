#!/usr/bin/env bats
# The examples of README.md and the man pages run as written: each
# document's examples in a scratch spool of their own, with the tools
# under test (tests/doc-examples says how and lists the comments that mark
# the few that cannot run here; those are reported, never skipped quietly).

load helpers

setup() { spoolq_setup; }
teardown() { spoolq_teardown; }

# examples FILE: run FILE's examples; report the ones not run on the TAP
# stream; fail with the report when one failed.
examples() {
	local top=$BATS_TEST_DIRNAME/.. line
	run --separate-stderr "$top/tests/doc-examples" "$top/$1"
	while IFS= read -r line; do
		[[ $line == "not run "* || $line == *": output not compared" ]] &&
		    echo "# $line" >&3
	done <<<"$output"
	[[ -z $stderr ]] || fail "doc-examples: $stderr"
	assert_success
	assert_output --partial "ok ${1##*/}:"
}

@test "docs: README.md examples run as shown" {
	examples README.md
}

@test "docs: qsend.1 examples run as shown" {
	examples man/qsend.1
}

@test "docs: qrecv.1 examples run as shown" {
	examples man/qrecv.1
}

@test "docs: qack.1 examples run as shown" {
	examples man/qack.1
}

@test "docs: qworker.1 examples run as shown" {
	examples man/qworker.1
}

@test "docs: qbridge.1 examples run as shown" {
	examples man/qbridge.1
}

@test "docs: qadmin.1 examples run as shown" {
	examples man/qadmin.1
}

@test "docs: spoolq.5 examples run as shown" {
	examples man/spoolq.5
}

@test "docs: spoolq.7 examples run as shown" {
	examples man/spoolq.7
}

@test "docs: spoolq(7) lists and refers to every tool the Makefile builds, and README's overview names each" {
	local top=$BATS_TEST_DIRNAME/.. tools t overview
	tools=$(sed -n 's/^TOOLS[[:space:]]*=//p' "$top/Makefile")
	[[ $(wc -w <<<"$tools") -ge 6 ]] || fail "TOOLS not read: $tools"
	overview=$(sed -n '/^## What it is/,/^There is no daemon/p' "$top/README.md")
	for t in $tools; do
		grep -qx ".It Xr $t 1" "$top/man/spoolq.7" ||
		    fail "spoolq.7: $t is not in the list of tools"
		sed -n '/^\.Sh SEE ALSO/,$p' "$top/man/spoolq.7" |
		    grep -qx "\.Xr $t 1 ,\{0,1\}" ||
		    fail "spoolq.7: $t is not in SEE ALSO"
		[[ $overview == *"\`$t\`"* ]] ||
		    fail "README.md, What it is: $t is not named"
	done
}
