#!/usr/bin/env bats
# qrecv's output: a reader that went away (a closed pipe) or a full disk
# never strands claims.  What was not written whole goes back to new/ at
# once, uncounted, and qrecv exits 74 instead of dying of SIGPIPE; with
# -A a body that could not be written is given back, not lost.

load helpers

setup() {
	spoolq_setup
	mkq q
}

teardown() {
	spoolq_teardown
}

# closed_pipe CMD...: run CMD with stdout on a pipe whose reading end is
# already closed, so its first write fails (EPIPE, or SIGPIPE if not
# ignored).  No race: the reader is gone before CMD starts.
closed_pipe() {
	perl -e 'pipe(my $r, my $w) or die "pipe: $!\n"; close($r);
	    open(STDOUT, ">&", $w) or die "dup: $!\n"; close($w);
	    exec { $ARGV[0] } @ARGV or die "$ARGV[0]: $!\n"' "$@"
}

# all_ready N: N messages in new/, none claimed, none counted as attempted.
all_ready() {
	assert_count new q "$1"
	assert_count cur q 0
	assert_count tmp q 0
	local n
	for n in $(names new q); do
		! field "$n" a >/dev/null || fail "attempt counted: $n"
	done
}

@test "qrecv: a closed pipe gives every claim back at once and exits 74, not 141" {
	qsend q a b c
	run --separate-stderr closed_pipe qrecv -n 3 q
	refute_crash
	(( status == 74 )) || fail "exit $status, want 74: $stderr"
	assert [ -n "$stderr" ]
	[[ $stderr == *"qrecv: stdout: Broken pipe"* ]] || fail "stderr: $stderr"
	all_ready 3
	assert_same $'a\nb\nc' "$(bodies new q)"
}

@test "qrecv --meta: a closed pipe gives the claims back (74)" {
	qsend -H color=red q a b
	run --separate-stderr closed_pipe qrecv --meta -n 2 q
	refute_crash
	(( status == 74 )) || fail "exit $status: $stderr"
	all_ready 2
	assert_count attr q 2
}

@test "qrecv: the issue's pipeline: qrecv -n 3 q | (exec 0<&-; sleep 0.5) strands nothing" {
	qsend q a b c
	# Whichever comes first, the write or the close, nothing waits out a
	# lease: either the receipts went into the pipe (and are the
	# reader's), or the claims are back in new/.
	run bash -c 'qrecv -n 3 q | (exec 0<&-; sleep 0.5); echo "${PIPESTATUS[0]}"'
	refute_crash
	case ${lines[-1]} in
	74) all_ready 3 ;;
	0) assert_count cur q 3 ;;
	*) fail "qrecv exit ${lines[-1]}: $output" ;;
	esac
}

@test "qrecv: a full disk as stdout gives the claims back (74)" {
	[[ -w /dev/full ]] || skip "no /dev/full"
	qsend q a b c
	run --separate-stderr bash -c 'qrecv -n 3 q >/dev/full'
	refute_crash
	(( status == 74 )) || fail "exit $status: $stderr"
	all_ready 3
}

@test "qrecv -A: a closed pipe loses no body: every message back in new/, exit 74" {
	qsend -H color=red q a b c
	run --separate-stderr closed_pipe qrecv -A -n 3 q
	refute_crash
	(( status == 74 )) || fail "exit $status: $stderr"
	all_ready 3
	assert_same $'a\nb\nc' "$(bodies new q)"
	# The sidecars stayed with their messages.
	assert_count attr q 3
	run -0 qrecv -A -n 3 q
	assert_output $'a\nb\nc'
	assert_count attr q 0
	assert_count tmp q 0
}

@test "qrecv -A: a reader that leaves in the middle of a body: that body is given back whole" {
	head -c 1048576 /dev/urandom >"$T/big"
	sum=$(md5sum <"$T/big" | cut -d' ' -f1)
	qsend -f q "$T/big"
	qsend q after
	run bash -c 'qrecv -A -n 2 q | head -c 10 >/dev/null; echo "${PIPESTATUS[0]}"'
	refute_crash
	[[ ${lines[-1]} == 74 ]] || fail "qrecv exit ${lines[-1]}: $output"
	all_ready 2
	[[ $(cat "$(qdir q)/new/$(names new q | head -n 1)" | md5sum | cut -d' ' -f1) == "$sum" ]] ||
	    fail "the big body changed"
}

@test "qrecv -A: delivered bodies are acknowledged, undelivered ones given back; at most once" {
	qsend q one two
	run -0 qrecv -A -n 2 q
	assert_output $'one\ntwo'
	assert_count new q 0
	assert_count cur q 0
	assert_count tmp q 0
}

@test "qadmin gc: a body taken by qrecv -A (tmp/ with a running lease) is kept; a crashed take goes with its lease" {
	local id=1000000000.000000001.1_0_0000beef.h
	printf 'taken' >"$(qdir q)/tmp/$id,a=1,l=9999999999"
	printf 'crashed' >"$(qdir q)/tmp/$id.2,a=1,l=1000000000"
	touch -d '2001-01-01' "$(qdir q)/tmp/$id,a=1,l=9999999999" "$(qdir q)/tmp/$id.2,a=1,l=1000000000"
	run -0 qadmin gc q
	assert_same "$id,a=1,l=9999999999" "$(names tmp q)"
}

@test "qack --touch: a closed pipe takes the touch back (74): the receipt held stays good" {
	qsend q a b
	mapfile -t r < <(qrecv -n 2 q)
	run --separate-stderr closed_pipe qack --touch 1h "${r[0]}" "${r[1]}"
	refute_crash
	(( status == 74 )) || fail "exit $status: $stderr"
	[[ $stderr == *"qack: stdout: Broken pipe"* ]] || fail "stderr: $stderr"
	assert_same "$(printf '%s\n' "${r[0]##*/}" "${r[1]##*/}")" "$(names cur q)"
	run -0 qack "${r[0]}" "${r[1]}"
	assert_count cur q 0
}

@test "qrecv -A in an archiving queue: a body written is archived, one not written goes back to new/ from the archive" {
	qadmin config q set archive=yes >/dev/null
	qsend q kept back
	run -0 qrecv -A q
	assert_output kept
	assert_count archive q 1
	run --separate-stderr closed_pipe qrecv -A q
	(( status == 74 )) || fail "exit $status: $stderr"
	all_ready 1
	assert_same back "$(bodies new q)"
	assert_count archive q 1
}
