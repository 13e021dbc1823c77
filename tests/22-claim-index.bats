#!/usr/bin/env bats
# The claim index of each host, run/index.HOST (spoolq(5), The claim
# index): order, damage, staleness, several hosts, concurrent consumers.

load helpers

setup() {
	spoolq_setup
	mkq q durability=none
}

teardown() {
	spoolq_teardown
}

# need_uts: skip unless host names can be set in a UTS namespace.
need_uts() {
	local out
	command -v unshare >/dev/null || skip "no unshare(1)"
	out=$(unshare -u true 2>&1) || skip "unshare -u cannot run here: $out"
}

# on HOST CMD...: run CMD with the host name HOST (a UTS namespace).
on() {
	unshare -u sh -c 'hostname "$1" && shift && exec "$@"' _ "$@"
}

# by_hand: put a message in new/ by hand (as spoolq(5) allows) with an ID
# older than any the tools made, so that a listing of new/ puts it first.
by_hand() {
	printf hand >"$(qdir q)/tmp/hand"
	mv "$(qdir q)/tmp/hand" "$(qdir q)/new/1000000000.000000000.1_0_00000000.hand"
}

# header_field N: field N of the header line of this host's index.
header_field() {
	head -c 256 "$(index_of q)" | awk -v n="$1" '{ print $n }'
}

@test "claim index: one per host, run/index.HOST; a shared run/index of older versions is ignored and qadmin gc removes it" {
	seq 1 3 | qsend -l q
	printf 'spoolq-index-1 garbage\n' >"$(qdir q)/run/index"
	run -0 qrecv -A q
	assert_output 1
	assert_file_exists "$(index_of q)"
	[[ $(header_field 1) == spoolq-index-2 ]] || fail "header: $(head -c 256 "$(index_of q)")"
	# An index no consumer saved for 36 h is gone with its host.
	: >"$(index_of q ghost)"
	touch -d '3 days ago' "$(index_of q ghost)"
	run -0 qadmin gc q
	assert_line "gc run/index removed (claim index of an older version)"
	assert_line "gc run/index.ghost removed (claim index of a host idle for 36h)"
	assert_file_not_exists "$(qdir q)/run/index"
	assert_file_exists "$(index_of q)"
	run -0 qrecv -A -n 5 q
	assert_output "$(seq 2 3)"
}

@test "claim index: a retry falling due joins the claim order at once, ahead of newer names, without listing new/ again" {
	local r
	seq 1 5 | qsend -l q
	r=$(qrecv q)
	assert_equal "$(cat "$r")" 1
	# Only a new listing of new/ would offer this one before 2..5.
	by_hand
	qack --retry --delay 0 "$r"
	run -0 qrecv -A -n 10 q
	assert_output "$(printf '%s\n' 1 2 3 4 5 hand)"
}

@test "claim index: a recovered claim (lease over) joins the claim order at once, without listing new/ again" {
	local r
	seq 1 3 | qsend -l q
	r=$(qrecv --lease 1s q)
	assert_equal "$(cat "$r")" 1
	by_hand
	wait_lease_over "$r"
	run -0 qrecv q
	assert_equal "$(cat "$output")" 1
	assert_equal "$(field "$output" a)" 2
	qack "$output"
	run -0 qrecv -A -n 10 q
	assert_output "$(printf '%s\n' 2 3 hand)"
}

@test "claim index: claims given back (qrecv could not print them) are claimed again at once, ahead of newer names" {
	[[ -w /dev/full ]] || skip "no /dev/full"
	seq 1 5 | qsend -l q
	run bash -c 'qrecv -n 3 q >/dev/full'
	(( status == 74 )) || fail "qrecv to a full stdout: $status $output"
	assert_count new q 5
	by_hand
	run -0 qrecv -A -n 10 q
	assert_output "$(printf '%s\n' 1 2 3 4 5 hand)"
}

@test "claim index: one consumer claims in send order across snapshots (more than 65536 names), retries and hosts' listings" {
	seq 1 70000 | qsend -l q
	run -0 qrecv -A -n 30000 q
	[[ $output == "$(seq 1 30000)" ]] || fail "order: $(head -3 <<<"$output")..."
	seq 70001 70010 | qsend -l q
	run -0 qrecv -A -n 50000 q
	[[ $output == "$(seq 30001 70010)" ]] || fail "order: $(head -3 <<<"$output")..."
	assert_count new q 0
}

@test "claim index: a stale copy of this host's index (cursor behind) loses and repeats nothing" {
	local saved=$BATS_TEST_TMPDIR/saved
	seq 1 6 | qsend -l q
	run -0 qrecv -A q
	assert_output 1
	cp "$(index_of q)" "$saved"
	run -0 qrecv -A -n 2 q
	assert_output "$(seq 2 3)"
	cp "$saved" "$(index_of q)"
	run -0 qrecv -A -n 10 q
	assert_output "$(seq 4 6)"
	expect_fail 1 qrecv q
}

@test "claim index: a damaged block, side list or header reads as used up: new/ is listed again, nothing lost or skipped" {
	local idx cur r3 r4 n
	idx=$(index_of q)
	seq 1 6 | qsend -l q
	run -0 qrecv -A q
	assert_output 1
	# One byte of the next name (2's): trusted, 2 would be skipped.
	cur=$((10#$(header_field 4)))
	printf X | dd of="$idx" bs=1 seek=$((cur + 3)) conv=notrunc status=none
	by_hand
	run -0 qrecv -A -n 2 q
	assert_output "$(printf '%s\n' hand 2)"
	# The side list, holding 4 (promoted with 3, 3 claimed): trusted,
	# 4 would come after 5 and 6.
	r3=$(qrecv q)
	r4=$(qrecv q)
	assert_equal "$(cat "$r3")$(cat "$r4")" 34
	qack --retry --delay 0 "$r3" "$r4"
	run -0 qrecv -A q
	assert_output 3
	cur=$((10#$(header_field 5)))
	printf X | dd of="$idx" bs=1 seek=$((256 + cur + 3)) conv=notrunc status=none
	run -0 qrecv -A -n 10 q
	assert_output "$(seq 4 6)"
	# The header, its cursor moved past 8 by hand without its checksum:
	# trusted, 8 would come after 9.
	seq 7 9 | qsend -l q
	run -0 qrecv -A q
	assert_output 7
	n=$(names new q | head -1)
	perl -i -pe 'if ($. == 1) { s/^(\S+ \S+ \S+ )(\d{20})/$1 . sprintf("%020d", $2 + '"$((${#n} + 1))"')/e }' "$idx"
	run -0 qrecv -A -n 10 q
	assert_output "$(seq 8 9)"
}

@test "claim index: two hosts keep one index each and claim alternately in send order, each message once" {
	need_uts
	local i out=
	seq 1 10 | qsend -l q
	for i in 1 2 3 4 5; do
		out+=$(on alpha qrecv -A q)$'\n'
		out+=$(on beta qrecv -A q)$'\n'
	done
	assert_equal "$out" "$(seq 1 10)"$'\n'
	assert_file_exists "$(index_of q alpha)"
	assert_file_exists "$(index_of q beta)"
	assert_file_not_exists "$(qdir q)/run/index"
	# A retry made on beta is promoted by alpha's next claim, and
	# claimed ahead of newer names though alpha's index never heard of it.
	seq 11 13 | qsend -l q
	run -0 on beta qrecv q
	assert_equal "$(cat "$output")" 11
	on beta qack --retry --delay 0 "$output"
	run -0 on alpha qrecv -A -n 5 q
	assert_output "$(seq 11 13)"
	assert_count new q 0
	assert_count retry q 0
}

@test "claim index: concurrent consumers on two hosts claim every message exactly once" {
	need_uts
	local h j f
	seq 1 3000 | qsend -l q
	for h in alpha beta; do
		for j in 1 2; do
			on "$h" sh -c 'while qrecv -A -n 7 q; do :; done' \
			    >"$BATS_TEST_TMPDIR/out.$h.$j" 2>&1 &
		done
	done
	wait
	for f in "$BATS_TEST_TMPDIR"/out.*; do
		grep -qv '^[0-9]*$' "$f" && fail "$f: $(grep -v '^[0-9]*$' "$f" | head -3)"
	done
	assert_equal "$(cat "$BATS_TEST_TMPDIR"/out.* | sort -n)" "$(seq 1 3000)"
	assert_count new q 0
	assert_count cur q 0
}
