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
