#!/usr/bin/env bats
# Backpressure: the queue.conf bounds max_messages and max_bytes (over
# ready + retry + in-flight) with overflow = reject, block or drop-oldest,
# and min_free_disk; run/usage and how soon consumption shows; concurrent
# producers against a bound; a bounded queue behind an exchange.
#
# A bounded queue's send throughput is a benchmark (make bench), not
# measured here.

load helpers

setup() {
	spoolq_setup
}

teardown() {
	spoolq_teardown
}

# assert_tmp_empty QUEUE: no entry at all, dot files included, in tmp/.
assert_tmp_empty() {
	local left
	left=$(ls -A "$(qdir "$1")/tmp")
	[[ -z $left ]] || fail "left in $1/tmp/:"$'\n'"$left"
}

# elapsed_ok START LO HI: seconds since START (from now_f) within LO..HI.
elapsed_ok() {
	float_between "$(elapsed_since "$1")" "$2" "$3"
}

# ------------------------------------------------------------ reject

@test "max_messages=3, reject: seq 5 | qsend -l sends 1, 2, 3, then exits 75 'queue full'; nothing partial in tmp/" {
	mkq q max_messages=3
	run --separate-stderr qsend -l -p q < <(seq 5)
	refute_crash
	assert_equal "$status" 75
	[[ $stderr == *"3 messages sent before the error"* ]] || fail "stderr: $stderr"
	[[ $stderr == *"q: queue full"* ]] || fail "stderr: $stderr"
	assert_lines_eq "$(printf '1\n2\n3')" "$(bodies new q)"
	assert_lines_eq "$output" "$(names new q)"
	assert_tmp_empty q
	assert_count dead q 0
}

@test "reject: a send into a full queue exits 75 and changes nothing, for arguments, -f and stdin" {
	local before
	mkq q max_messages=2
	qsend q one two
	before=$(snapshot "$SPOOLQ_DIR")
	expect_fail 75 qsend q three
	assert_output --partial 'queue full'
	printf 'x' > "$T/f"
	expect_fail 75 qsend -f q "$T/f"
	expect_fail 75 qsend q < "$T/f"
	expect_fail 75 qsend -0 q < <(printf 'a\0b\0')
	assert_unchanged "$before"
}

@test "max_bytes=10 with 4-byte bodies: two fit, the third is refused (75)" {
	mkq q max_bytes=10
	run --separate-stderr qsend -l q < <(printf 'aaaa\nbbbb\ncccc\n')
	assert_equal "$status" 75
	[[ $stderr == *"queue full"*"2 messages sent before the error"* ]] || fail "stderr: $stderr"
	assert_lines_eq "$(printf 'aaaa\nbbbb')" "$(bodies new q)"
	# 2 more bytes still fit: 8 + 2 <= 10; then not even 1 more.
	qsend q cc
	expect_fail 75 qsend q d
	assert_count new q 3
	assert_tmp_empty q
}

@test "max_bytes: a body larger than the bound is refused even by an empty queue" {
	mkq q max_bytes=10
	expect_fail 65 qsend q 'eleven byte'	# never fits: permanent
	assert_count new q 0
	assert_tmp_empty q
	qsend q 'ten bytes!'
	assert_count new q 1
}

@test "sizes take k, M, G suffixes (powers of 1024); bad values exit 78 naming the key" {
	mkq q max_bytes=64k min_free_disk=1M
	assert_equal "$(qadmin config q get max_bytes)" 65536
	assert_equal "$(qadmin config q get min_free_disk)" 1048576
	qadmin config q set max_bytes=2G > /dev/null
	assert_equal "$(qadmin config q get max_bytes)" 2147483648
	qadmin config q set max_bytes=500 > /dev/null
	assert_equal "$(qadmin config q get max_bytes)" 500
	expect_fail 78 qadmin create x max_messages=-1
	assert_output --partial 'max_messages'
	expect_fail 78 qadmin create x max_messages=many
	expect_fail 78 qadmin create x max_bytes=10X
	assert_output --partial 'max_bytes: 10X: not a size'
	expect_fail 78 qadmin create x min_free_disk=lots
	assert_output --partial 'min_free_disk'
	expect_fail 78 qadmin create x overflow=wait
	assert_output --partial 'overflow: wait: must be reject, block or drop-oldest'
	assert [ ! -e "$SPOOLQ_DIR/x" ]
	# The same in queue.conf: the tools name file, line and key.
	printf '[queue]\nmax_messages = 3\noverflow = sometimes\n' > "$SPOOLQ_DIR/q/queue.conf"
	expect_fail 78 qsend q body
	assert_output --partial "queue.conf:3: overflow"
	assert_count new q 0
}

@test "in-flight and retry messages count toward the bound; dead letters do not" {
	local r
	mkq q max_messages=2
	qsend q a b
	r=$(qrecv q)			# a in flight
	expect_fail 75 qsend q c
	qack --retry "$r"		# a waits in retry/
	assert_count retry q 1
	expect_fail 75 qsend q c
	r=$(qrecv q)			# b in flight
	qack --reject "$r"		# b is a dead letter
	assert_count dead q 1
	qsend q c
	expect_fail 75 qsend q d
	assert_count new q 1
	assert_count retry q 1
}

@test "--timeout does not make reject wait: a full queue exits 75 at once" {
	local t0
	mkq q max_messages=1
	qsend q one
	t0=$(now_f)
	# At once, not after the 10 s: a bound far above scheduling delays.
	expect_fail 75 qsend --timeout 10s q two
	elapsed_ok "$t0" 0 5
}

# ------------------------------------------------------------ drop-oldest

@test "drop-oldest: max_messages=3, seq 5: the two oldest go to dead/ with r=overflow, the newest three stay" {
	local n
	mkq q max_messages=3 overflow=drop-oldest
	run qsend -l q < <(seq 5)
	assert_success
	assert_lines_eq "$(printf '3\n4\n5')" "$(bodies new q)"
	assert_lines_eq "$(printf '1\n2')" "$(bodies dead q)"
	for n in $(names dead q); do
		assert_equal "$(field "$n" r)" overflow
	done
	qsend q 6
	assert_lines_eq "$(printf '4\n5\n6')" "$(bodies new q)"
	assert_lines_eq "$(printf '1\n2\n3')" "$(bodies dead q)"
	assert_tmp_empty q
}

@test "drop-oldest: only ready messages are dropped; with everything in flight the send exits 75" {
	mkq q max_messages=2 overflow=drop-oldest
	qsend q one two
	qrecv -n 2 q > "$T/receipts"
	expect_fail 75 qsend q three
	assert_count cur q 2
	assert_count dead q 0
	assert_count new q 0
	assert_tmp_empty q
}

@test "drop-oldest with max_bytes: as many of the oldest are dropped as the new message needs" {
	# When max_bytes is what is exceeded, as many of the oldest go as the
	# new message needs, and the send succeeds.
	mkq q max_bytes=10 overflow=drop-oldest
	qsend q aa bb cc dd
	run --separate-stderr qsend q 12345678
	assert_success
	assert_lines_eq "$(printf 'dd\n12345678')" "$(bodies new q)"
	assert_lines_eq "$(printf 'aa\nbb\ncc')" "$(bodies dead q)"
}

@test "drop-oldest with max_bytes=10, 4-byte bodies: each new one pushes out the oldest" {
	mkq q max_bytes=10 overflow=drop-oldest
	run qsend -l q < <(printf 'aaaa\nbbbb\ncccc\ndddd\n')
	assert_success
	assert_lines_eq "$(printf 'cccc\ndddd')" "$(bodies new q)"
	assert_lines_eq "$(printf 'aaaa\nbbbb')" "$(bodies dead q)"
}

# ------------------------------------------------------------ block

@test "block: qsend waits and completes when a consumer frees room" {
	local t0
	mkq q max_messages=2 overflow=block
	qsend q one two
	( sleep 0.5; qrecv -A q > "$T/consumed" ) &
	t0=$(now_f)
	run qsend q three
	assert_success
	elapsed_ok "$t0" 0.4 5
	wait
	assert_equal "$(cat "$T/consumed")" one
	assert_lines_eq "$(printf 'two\nthree')" "$(bodies new q)"
	assert_tmp_empty q
}

@test "block --timeout 1s: exits 75 after about a second and writes nothing" {
	local t0 before
	mkq q max_messages=1 overflow=block
	qsend q one
	before=$(snapshot "$SPOOLQ_DIR")
	t0=$(now_f)
	expect_fail 75 qsend --timeout 1s q two
	elapsed_ok "$t0" 0.9 6
	assert_output --partial 'queue full'
	assert_unchanged "$before"
}

@test "block: more lines than max_messages all go through while a consumer drains the queue" {
	# A batch larger than the bound is admitted message by message: it
	# never waits for room for all of it at once.
	mkq q max_messages=2 overflow=block
	(
		for _ in $(seq 100); do
			qrecv -A -n 10 q >> "$T/consumed" || true
			(( $(wc -l < "$T/consumed") >= 5 )) && exit 0
			sleep 0.1
		done
	) 2>/dev/null &
	run timeout 10 qsend -l q < <(seq 5)
	refute_crash
	assert_success
	# The count is read anew on every try, not once.
	wait_for -t 5 sh -c '[ "$(wc -l < "$1")" -ge 5 ]' _ "$T/consumed"
	assert_lines_eq "$(seq 5)" "$(cat "$T/consumed")"
}

# ------------------------------------------------------------ run/usage

@test "consumption is seen within 1-2 s: send 3, consume 3, then 3 more are accepted" {
	mkq q max_messages=3
	qsend -l q < <(seq 3)
	expect_fail 75 qsend q full
	qrecv -A -n 3 q > /dev/null
	wait_for -t 2 eval 'qsend -l q < <(seq 4 6) 2>/dev/null'
	assert_lines_eq "$(printf '4\n5\n6')" "$(bodies new q)"
	# The same when consumers claim and ack.
	qrecv -n 3 q | qack -
	wait_for -t 2 eval 'qsend -l q < <(seq 7 9) 2>/dev/null'
	assert_lines_eq "$(printf '7\n8\n9')" "$(bodies new q)"
	# And when messages are removed by hand.
	rm "$SPOOLQ_DIR"/q/new/*
	wait_for -t 2 eval 'qsend q 10 2>/dev/null'
	assert_equal "$(bodies new q)" 10
}

@test "run/usage: 'COUNT BYTES MS' kept only for a bounded queue" {
	mkq free
	qsend free a b
	assert [ ! -e "$SPOOLQ_DIR/free/run/usage" ]
	mkq q max_messages=10
	qsend q aa bbb
	[[ $(cat "$SPOOLQ_DIR/q/run/usage") =~ ^2\ [0-9]+\ [0-9]{13}$ ]] ||
	    fail "run/usage: $(cat "$SPOOLQ_DIR/q/run/usage")"
	mkq b max_bytes=1k
	qsend b aa bbb
	[[ $(cat "$SPOOLQ_DIR/b/run/usage") =~ ^2\ 5\ [0-9]{13}$ ]] ||
	    fail "run/usage: $(cat "$SPOOLQ_DIR/b/run/usage")"
}

# ------------------------------------------------------------ concurrency

# producers QUEUE P N MODE: P producers at once, each sending N messages,
# one qsend per message (MODE one) or one `qsend -l` of N lines (MODE
# lines).  Exit statuses go to $T/rc (one a line per qsend run).
producers() {
	local p
	: > "$T/rc"
	for p in $(seq "$2"); do
		if [[ $4 == one ]]; then
			( for i in $(seq "$3"); do
				qsend "$1" "p$p-$i" 2>/dev/null
				echo $? >> "$T/rc"
			  done ) &
		else
			( seq "$3" | sed "s/^/p$p-/" | qsend -l "$1" 2>/dev/null
			  echo $? >> "$T/rc" ) &
		fi
	done
	wait
}

@test "4 concurrent producers, one message per qsend, against max_messages=50: at most 50" {
	# A sender's recount of a full queue must not forget what another
	# sender was admitted for and has not renamed into new/ yet.
	local k
	for k in 1 2 3 4 5; do
		mkq "q$k" max_messages=50
		producers "q$k" 4 30 one
		assert_equal "$(grep -cvx '0\|75' "$T/rc")" 0
		assert_equal "$(grep -cx 0 "$T/rc")" "$(count new "q$k")"
		int_between "$(count new "q$k")" 40 50
		assert_tmp_empty "q$k"
	done
}

@test "4 concurrent producers of 30 lines each (qsend -l) against max_messages=50: at most 50" {
	# Batches admitted but not yet published count for every sender.
	local k
	for k in 1 2 3; do
		mkq "q$k" max_messages=50
		producers "q$k" 4 30 lines
		assert_equal "$(grep -cvx '0\|75' "$T/rc")" 0
		int_between "$(count new "q$k")" 30 50
		assert_tmp_empty "q$k"
	done
}

# ------------------------------------------------------------ min_free_disk

@test "min_free_disk=1T refuses a send with 75 and writes nothing; a small one lets it through" {
	local before
	mkq q min_free_disk=1T
	before=$(snapshot "$SPOOLQ_DIR")
	expect_fail 75 qsend q body
	assert_output --partial 'q:'
	expect_fail 75 qsend -l q < <(seq 3)
	assert_unchanged "$before"
	qadmin config q set min_free_disk=1k > /dev/null
	qsend q body
	assert_count new q 1
}

# ------------------------------------------------------------ exchanges

@test "through an exchange: a full bound queue fails the send (75); a --dedup-id retry completes the set without duplicates" {
	local q
	mkq a
	mkq b max_messages=1
	mkq c
	qadmin exchange create logs fanout
	for q in a b c; do
		qadmin bind logs "$q"
	done
	qsend --dedup-id m1 logs first
	run --separate-stderr qsend --dedup-id m2 logs second
	assert_equal "$status" 75
	[[ $stderr == *"queue full"* ]] || fail "stderr: $stderr"
	assert_equal "$(bodies new b)" first
	for q in a b c; do
		assert_tmp_empty "$q"
	done
	qrecv -A b > /dev/null
	qsend --dedup-id m2 logs second
	for q in a c; do
		assert_lines_eq "$(printf 'first\nsecond')" "$(bodies new "$q")"
	done
	assert_equal "$(bodies new b)" second
}

@test "through an exchange: drop-oldest in one bound queue leaves the other queues' copies alone" {
	local id
	mkq a max_messages=1 overflow=drop-oldest
	mkq b
	qadmin exchange create logs fanout
	qadmin bind logs a
	qadmin bind logs b
	id=$(qsend -p logs first)
	qsend logs second
	assert_equal "$(bodies new a)" second
	assert_equal "$(bodies dead a)" first
	assert_lines_eq "$(printf 'first\nsecond')" "$(bodies new b)"
	assert_equal "$(cat "$SPOOLQ_DIR/b/new/$id")" first
}

@test "a message larger than max_bytes is refused at once (65): block does not wait, drop-oldest drops nothing" {
	mkq b max_bytes=10 overflow=block
	mkq d max_bytes=10 overflow=drop-oldest
	qsend d aa bb
	run timeout 5 qsend b 12345678901
	assert_failure 65
	assert_output --partial "message larger than the queue's max_bytes"
	run qsend d 12345678901
	assert_failure 65
	assert_count new d 2
	assert_count dead d 0
}
