#!/usr/bin/env bats
# qworker --rate and the rate key of queue.conf: one token bucket in
# run/rate shared by every worker of a queue.  No test measures a rate
# against the clock: the rates are so low (N per hour) that no token comes
# back within a test, so the counts are exact, or the test only asks that
# the work ends.

load helpers
load qworker_helpers

setup() {
	qworker_setup
}

teardown() {
	local p
	for p in ${WPIDS-}; do
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	spoolq_teardown
}

# acks FILE...: the ack lines in the worker logs.
acks() {
	cat "$@" | grep -cE ' ack [0-9]+\.[0-9]+s$' || true
}

# tat QUEUE: the bucket's time, epoch seconds.
tat() {
	awk '{ printf "%d\n", $1 / 1000000 }' "$(qdir "$1")/run/rate"
}

@test "rate in queue.conf: N/s, N/m, N/h, N/DURATION or 0; shown as set; bad values name the key (78)" {
	mkq q
	assert_equal "$(qadmin config q get rate)" 0
	local v
	for v in 50/s 100/m 10/h 5/100ms 3/2s 0; do
		qadmin -q config q set "rate=$v"
		assert_equal "$(qadmin config q get rate)" "$v"
	done
	qadmin -q config q set rate=7/60s
	assert_equal "$(qadmin config q get rate)" 7/m
	for v in 50 /s 0/s -1/s 5/x 5/0ms 1000001/s fast; do
		expect_fail 78 qadmin create "r$RANDOM" "rate=$v"
		assert_output --partial "rate: $v: not a rate"
	done
}

@test "qworker --rate: a bad value is a usage error (64)" {
	mkq q
	expect_fail 64 qworker --rate 5 q -- true
	assert_output --partial '--rate: 5: not a rate'
	expect_fail 64 qworker --rate 5/week q -- true
}

@test "qworker --rate 5/h shared by two workers: 5 jobs in all, then none; the bucket is an hour ahead" {
	mkq q
	seq 20 | qsend -l q
	local before
	before=$(now)
	qworker --rate 5/h q -- true 2>"$T/log1" &
	WPIDS=$!
	qworker --rate 5/h q -- true 2>"$T/log2" &
	WPIDS="$WPIDS $!"
	wait_for bash -c '[ "$(cat "$0" "$1" | grep -c " ack ")" -ge 5 ]' \
	    "$T/log1" "$T/log2"
	# Both keep looking; no sixth token comes within the hour.
	sleep 1
	assert_equal "$(acks "$T/log1" "$T/log2")" 5
	assert_count new q 15
	assert_count cur q 0
	# 5 tokens of 12 minutes each: the bucket is full again in an hour.
	# One line, the time in epoch microseconds, 19 digits.
	grep -qxE '[0-9]{19}' "$(qdir q)/run/rate"
	assert_equal "$(wc -c <"$(qdir q)/run/rate")" 20
	int_between "$(tat q)" $((before + 3600 - 1)) $(( $(now) + 3600 ))
}

@test "qworker --batch 10 --rate 4/h: a batch takes as many messages as there are tokens" {
	mkq q
	seq 10 | qsend -l q
	qworker --batch 10 --rate 4/h q -- sh -c 'echo $# >>"$0"' "$T/calls" \
	    2>"$T/log" &
	WPIDS=$!
	wait_for test -s "$T/calls"
	sleep 1
	assert_equal "$(cat "$T/calls")" 4
	assert_equal "$(acks "$T/log")" 4
	assert_count new q 6
}

@test "qworker: the rate key of queue.conf applies without --rate; --rate 0 lifts it" {
	mkq q rate=2/h
	seq 5 | qsend -l q
	qworker q -- true 2>"$T/log" &
	WPIDS=$!
	wait_for bash -c '[ "$(grep -c " ack " "$0")" -ge 2 ]' "$T/log"
	sleep 1
	assert_equal "$(acks "$T/log")" 2
	kill -TERM $WPIDS
	run timeout 30 qworker --rate 0 --drain q -- true
	assert_success
	assert_count new q 0
}

@test "qworker --drain --rate 20/s: waits for tokens rather than ending with messages ready" {
	mkq q
	seq 30 | qsend -l q
	run --separate-stderr timeout 60 qworker --drain --rate 20/s q -- true
	assert_success
	assert_equal "$(grep -c ' ack ' <<<"$stderr")" 30
	assert_empty_queue q
}

@test "qworker --rate: a stopped holder of the bucket's lock does not stop the others" {
	mkq q
	seq 5 | qsend -l q
	mkdir -p "$(qdir q)/run"
	: >"$(qdir q)/run/rate"
	flock "$(qdir q)/run/rate" sleep 60 &
	WPIDS=$!
	wait_for bash -c '! flock -n "$0" true' "$(qdir q)/run/rate"
	run --separate-stderr timeout 60 qworker --drain --rate 1000/s q -- true
	assert_success
	assert_equal "$(grep -c ' ack ' <<<"$stderr")" 5
	assert_empty_queue q
}
