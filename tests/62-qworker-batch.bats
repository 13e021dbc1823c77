#!/usr/bin/env bats
# qworker --batch: one run of the command for several messages, their paths
# as arguments; settlement one by one through SPOOLQ_RESULT_FD, the rest by
# the exit status; timeouts, garbage in the result stream, parallel
# batches, --batch-wait, SIGTERM and kill -9.  No test races the clock:
# states are polled with wait_for, and the jobs report through files.

load helpers
load qworker_helpers

setup() {
	qworker_setup
	mkq q
	# job.sh: log the arguments, then settle as each body says:
	# "ack", "retry", "reject[:REASON]" through the result descriptor,
	# anything else left to the exit status ($EXIT, default 0).
	cat >"$T/job.sh" <<-'EOF'
	#!/bin/sh
	echo "$SPOOLQ_BATCH $# $SPOOLQ_RESULT_FD ${SPOOLQ_ID-unset}" >>"$T/calls"
	for f; do
		id=${f##*/}
		id=${id%%,*}
		printf '%s\n' "$f" >>"$T/args"
		case $(cat "$f") in
		ack*) echo "ack $id" >&"$SPOOLQ_RESULT_FD" ;;
		retry*) echo "retry $id" >&"$SPOOLQ_RESULT_FD" ;;
		reject:*) echo "reject $f $(cut -d: -f2 "$f")" >&"$SPOOLQ_RESULT_FD" ;;
		reject*) echo "reject $id" >&"$SPOOLQ_RESULT_FD" ;;
		esac
	done
	exit "${EXIT:-0}"
	EOF
	chmod +x "$T/job.sh"
	export T
}

teardown() {
	kill_pgids
	spoolq_teardown
}

@test "qworker --batch 5: one run for five messages, their receipt paths as arguments in ID order, all acked on exit 0" {
	local -a ids
	mapfile -t ids < <(qsend -p q m1 m2 m3 m4 m5)
	work --drain --batch 5 q -- "$T/job.sh"
	assert_success
	assert_equal "$(cat "$T/calls")" "5 5 4 unset"
	assert_equal "$(wc -l <"$T/args")" 5
	local i=0 f
	while read -r f; do
		[[ $f == "$SPOOLQ_DIR/q/cur/${ids[i]},a=1,"* ]] ||
		    fail "argument $i: $f is not the receipt of ${ids[i]}"
		assert_logged "$T/log" "${ids[i]}" 1 ack
		i=$((i + 1))
	done <"$T/args"
	assert_equal "$(outcome_lines "$T/log")" 5
	assert_empty_queue q
}

@test "qworker --batch 3: seven messages run as batches of 3, 3 and 1" {
	seq 7 | qsend -l q
	work --drain --batch 3 q -- "$T/job.sh"
	assert_success
	assert_equal "$(cut -d' ' -f2 "$T/calls" | tr '\n' ' ')" "3 3 1 "
	assert_equal "$(outcome_lines "$T/log")" 7
	assert_empty_queue q
}

@test "qworker --batch: partial settlement through SPOOLQ_RESULT_FD; the rest follows the exit status (75: retry)" {
	local -a ids
	mapfile -t ids < <(qsend -p q ack retry reject:bad-input plain1 reject plain2)
	EXIT=75 work --drain --batch 10 q -- "$T/job.sh"
	assert_failure 1
	assert_logged "$T/log" "${ids[0]}" 1 ack
	assert_logged "$T/log" "${ids[1]}" 1 retry:result
	assert_logged "$T/log" "${ids[2]}" 1 dead:bad-input
	assert_logged "$T/log" "${ids[3]}" 1 retry:exit=75
	assert_logged "$T/log" "${ids[4]}" 1 dead:rejected
	assert_logged "$T/log" "${ids[5]}" 1 retry:exit=75
	assert_equal "$(outcome_lines "$T/log")" 6
	assert_count cur q 0
	assert_count new q 0
	assert_equal "$(names dead q | sed 's/^[^,]*,//' | sort)" \
	    $'a=1,r=bad-input\na=1,r=rejected'
	assert_equal "$(bodies retry q)" $'retry\nplain1\nplain2'
	# Failure records for those that failed, none for the ack.
	assert_file_not_exists "$(failure "${ids[0]}")"
	grep -qx 'status=result' "$(failure "${ids[1]}")"
	grep -qx 'status=exit 75' "$(failure "${ids[3]}")"
}

# traced_batch ARGS...: qworker --drain ARGS under strace -f, tracing
# unlinkat(2) into $T/unlinks; its stderr in $T/log.
traced_batch() {
	command -v strace >/dev/null || skip "strace is not installed"
	strace -f -qq -o /dev/null true 2>/dev/null || skip "strace cannot trace here"
	run --separate-stderr timeout 60 strace -E "$(leakless_env)" -f -qq \
	    -o "$T/unlinks" -e trace=unlinkat qworker --drain "$@"
	printf '%s\n' "$stderr" >"$T/log"
	refute_crash
}

# failure_unlinks: how many unlinks of failure records $T/unlinks shows.
failure_unlinks() {
	grep -c '^[0-9]* *unlinkat(.*\.failure"' "$T/unlinks" || true
}

@test "qworker --batch: the acks of a batch whose queue has no failure record try no unlink of one, by the result stream or by the exit status" {
	local -a ids
	mapfile -t ids < <(qsend -p q ack ack plain plain plain)
	traced_batch --batch 5 q -- "$T/job.sh"
	assert_success
	local id
	for id in "${ids[@]}"; do
		assert_logged "$T/log" "$id" 1 ack
	done
	assert_equal "$(outcome_lines "$T/log")" 5
	assert_empty_queue q
	assert_equal "$(failure_unlinks)" 0
}

@test "qworker --batch: the ack of a message that has a failure record removes it, in a batch whose other messages have none" {
	local -a ids
	mapfile -t ids < <(qsend -p q ack plain plain plain plain)
	# The records a redrive leaves, of the attempts before.
	printf 'status=exit 75\n' >"$(failure "${ids[0]}")"
	printf 'status=exit 75\n' >"$(failure "${ids[3]}")"
	traced_batch --batch 5 q -- "$T/job.sh"
	assert_success
	assert_equal "$(outcome_lines "$T/log")" 5
	assert_empty_queue q
	assert_file_not_exists "$(failure "${ids[0]}")"
	assert_file_not_exists "$(failure "${ids[3]}")"
	run ls -A "$SPOOLQ_DIR/q/attr"
	assert_output ''
}

@test "qworker --batch: the exit-code protocol applies to the whole batch: 0 ack, 100 and 65 dead, 3 and signal retry" {
	local code
	for code in 100 65 3; do
		mkq "q$code"
		qsend "q$code" a b c
		EXIT=$code work --drain --batch 5 "q$code" -- "$T/job.sh"
		assert_failure 1
		case $code in
		100|65)
			assert_count dead "q$code" 3
			assert_equal "$(names dead "q$code" | grep -c ',r=rejected$')" 3
			assert_equal "$(grep -c 'dead:rejected' "$T/log")" 3 ;;
		3)
			assert_count retry "q$code" 3
			assert_equal "$(grep -c 'retry:exit=3' "$T/log")" 3 ;;
		esac
	done
	mkq s
	qsend s a b
	work --drain --batch 5 s -- sh -c 'kill -9 $$' job
	assert_failure 1
	assert_count retry s 2
	assert_equal "$(grep -c 'retry:signal=9' "$T/log")" 2
}

@test "qworker --batch: max_attempts and dead letters count per message" {
	mkq m max_attempts=2
	local fresh old=1000000000.000000001.1_1_00000000.h
	fresh=$(qsend -p m fresh)
	# A message that had one attempt already, delivered by hand.
	echo old >"$(qdir m)/tmp/$old"
	mv "$(qdir m)/tmp/$old" "$(qdir m)/new/$old,a=1"
	EXIT=3 work --drain --batch 5 m -- "$T/job.sh"
	assert_failure 1
	assert_logged "$T/log" "$old" 2 dead:attempts m
	assert_logged "$T/log" "$fresh" 1 retry:exit=3 m
	assert_equal "$(names dead m)" "$old,a=2,r=attempts"
	assert_equal "$(msgid "$(only retry m)")" "$fresh"
}

@test "qworker --batch -t 1s: what the job settled before the timeout stays settled; the rest retry:timeout, or dead r=timeout at max_attempts" {
	mkq t max_attempts=1
	local -a ids
	mapfile -t ids < <(qsend -p t ack plain1 plain2)
	work --drain --batch 5 -t 1s t -- sh -c '
		echo $$ >>"$T/pgids"
		"$T/job.sh" "$@"
		exec sleep 60' job
	assert_failure 1
	assert_logged "$T/log" "${ids[0]}" 1 ack t
	assert_logged "$T/log" "${ids[1]}" 1 dead:timeout t
	assert_logged "$T/log" "${ids[2]}" 1 dead:timeout t
	assert_equal "$(names dead t | grep -c ',r=timeout$')" 2
	grep -qx 'status=timeout' "$(failure "${ids[1]}" t)"
	assert_count cur t 0
	# The job's whole process group is gone.
	wait_until 5 bash -c '! kill -0 -- "-$0" 2>/dev/null' "$(cat "$T/pgids")" ||
	    fail "the batch job survived its timeout"
}

@test "qworker --batch: garbage in the result stream is logged and never acted on; the messages follow the exit status" {
	local -a ids
	mapfile -t ids < <(qsend -p q a b)
	cat >"$T/garbage.sh" <<-'EOF'
	#!/bin/sh
	fd=$SPOOLQ_RESULT_FD
	id=${1##*/}
	id=${id%%,*}
	{
		echo "hello world"
		echo "ack"
		echo "ack 1000000000.000000001.1_1_00000000.other"
		echo "retry $id extra-word"
		echo "reject $id Bad Reason"
		echo "ack $id"
		echo "retry $id"
		printf 'ack \001\377\n'
		head -c 5000 /dev/zero | tr '\0' x
		echo
		printf 'retry %s' "${2##*/}"
	} >&"$fd"
	exit 3
	EOF
	chmod +x "$T/garbage.sh"
	work --drain --batch 5 q -- "$T/garbage.sh"
	assert_failure 1
	refute_crash
	# First ack of a counts; its repeat is refused; the last line, with no
	# newline, retries b.
	assert_logged "$T/log" "${ids[0]}" 1 ack
	assert_logged "$T/log" "${ids[1]}" 1 retry:result
	assert_equal "$(outcome_lines "$T/log")" 2
	assert_equal "$(grep -c 'result line [0-9]*: .*not acted on$' "$T/log")" 8
	grep -q 'result line 1: "hello world": not "ack ID"' "$T/log"
	grep -q 'result line 3: .*: no message of this batch' "$T/log"
	grep -q 'result line 7: .*: settled already' "$T/log"
	grep -q 'result line 8: "ack \\001\\377"' "$T/log"
	grep -q 'result line 9: "x*"\.\.\.: too long' "$T/log"
	assert_equal "$(msgid "$(only retry q)")" "${ids[1]}"
	assert_count new q 0
	assert_count cur q 0
}

@test "qworker --batch: a batch job's stderr lines carry its first ID and +N, N its other messages, made visible as any job's" {
	local -a ids
	mapfile -t ids < <(qsend -p q m1 m2 m3 m4)
	work --drain --batch 3 q -- sh -c 'printf "batch of %s\r\033\n" "$#" >&2' job
	assert_success
	assert_equal "$(grep -cv '^qworker: ' "$T/log")" 2
	grep -qxF "${ids[0]}+2: batch of 3\015\033" "$T/log" ||
	    fail "no line of the first batch as ${ids[0]}+2: $(cat -A "$T/log")"
	# A batch of one is its message's.
	grep -qxF "${ids[3]}: batch of 1\015\033" "$T/log" ||
	    fail "no line of the last batch as ${ids[3]}: $(cat -A "$T/log")"
	assert_equal "$(outcome_lines "$T/log")" 4
}

@test "qworker --batch 2 -j 2: two batches run at once" {
	seq 4 | qsend -l q
	# Each job waits (at most 8 s) until both have started: the second
	# batch starts as soon as it is claimed, not at the worker's next
	# periodic look (its heartbeat, 10 s).
	work --drain --batch 2 -j 2 q -- sh -c '
		echo $$ >>"$T/started"
		for i in $(seq 80); do
			[ "$(wc -l <"$T/started")" -ge 2 ] && exit 0
			sleep 0.1
		done
		exit 3' job
	assert_success
	assert_equal "$(wc -l <"$T/started")" 2
	assert_equal "$(outcome_lines "$T/log")" 4
	assert_empty_queue q
}

@test "qworker --batch 3 --batch-wait 60s: a batch waits to fill, and starts as soon as it is full" {
	qsend q one
	start_worker --batch 3 --batch-wait 60s q -- "$T/job.sh"
	wait_for bash -c '[ "$(ls "$0" | wc -l)" = 1 ]' "$SPOOLQ_DIR/q/cur"
	[[ ! -e $T/calls ]] || fail "the batch started before it was full"
	qsend q two three
	wait_for test -s "$T/calls"
	wait_for bash -c '[ "$(ls "$0" | wc -l)" = 0 ]' "$SPOOLQ_DIR/q/cur"
	assert_equal "$(cut -d' ' -f2 "$T/calls")" 3
	kill -TERM "$WPID"
	wait_worker
	assert_equal "$wstatus" 0
	assert_empty_queue q
}

@test "qworker --batch --batch-wait: SIGTERM gives back the claims of a batch still filling, uncounted" {
	qsend q one
	start_worker --batch 3 --batch-wait 60s q -- "$T/job.sh"
	wait_for bash -c '[ "$(ls "$0" | wc -l)" = 1 ]' "$SPOOLQ_DIR/q/cur"
	kill -TERM "$WPID"
	wait_worker
	assert_equal "$wstatus" 0
	assert_file_not_exists "$T/calls"
	assert_equal "$(only new q)" "$(msgid "$(only new q)")"
}

@test "qworker --batch: SIGTERM past the grace kills the batch job and releases its unsettled messages uncounted" {
	local -a ids
	mapfile -t ids < <(qsend -p q ack plain)
	start_worker --grace 1s --batch 5 q -- sh -c '
		echo $$ >>"$T/pgids"
		"$T/job.sh" "$@"
		exec sleep 60' job
	wait_for grep -q " ack " "$T/wlog"
	kill -TERM "$WPID"
	wait_worker
	assert_equal "$wstatus" 1
	assert_logged "$T/wlog" "${ids[0]}" 1 ack
	assert_logged "$T/wlog" "${ids[1]}" 1 released
	assert_equal "$(only new q)" "${ids[1]}"
}

@test "qworker --batch killed -9: the job dies with it, and its messages come back at once to the next consumer" {
	mkq k lease=1h
	qsend k a b c
	start_worker --batch 5 k -- sh -c 'echo $$ >>"$T/pgids"; exec sleep 60' job
	wait_for test -s "$T/pgids"
	assert_count cur k 3
	kill -9 "$WPID"
	wait "$WPID" || true
	WPID=
	wait_until 5 bash -c '! kill -0 -- "-$0" 2>/dev/null' "$(cat "$T/pgids")" ||
	    fail "the batch job survived its worker"
	run --separate-stderr qrecv -n 5 k
	assert_success
	assert_equal "${#lines[@]}" 3
	local r
	for r in "${lines[@]}"; do
		assert_field "$r" a 2
	done
	assert_count new k 0
}

# The batch job's shell dies with its worker; its subshell (a grandchild)
# appends "start", then "end" once $T/f.go exists, to $T/f.
@test "qworker --batch killed -9: a process the job left running keeps all its claims, through one job lock named per claim" {
	mkq k lease=1h
	local -a ids
	mapfile -t ids < <(qsend -p k a b c)
	start_worker --batch 5 k -- sh -c 'echo $$ >>"$T/pgids"
	    (echo start >>"$T/f"
	     until [ -e "$T/f.go" ]; do sleep 0.05; done
	     echo end >>"$T/f"); true' job
	wait_for grep -qx start "$T/f"
	assert_count cur k 3
	local w id inode=
	w=$(field "$(names cur k | head -n 1)" w)
	for id in "${ids[@]}"; do
		assert_file_exists "$SPOOLQ_DIR/k/run/job.$w.$id"
		[[ -z $inode ]] || assert_equal "$(stat -c %i \
		    "$SPOOLQ_DIR/k/run/job.$w.$id")" "$inode"
		inode=$(stat -c %i "$SPOOLQ_DIR/k/run/job.$w.$id")
	done
	kill -9 "$WPID"
	wait "$WPID" || true
	WPID=
	run qrecv -n 5 k
	assert_failure 1
	assert_count cur k 3
	touch "$T/f.go"
	wait_for grep -qx end "$T/f"
	run --separate-stderr qrecv -w 10 -n 5 k
	assert_success
	assert_equal "${#lines[@]}" 3
	local r
	for r in "${lines[@]}"; do
		assert_field "$r" a 2
	done
	run ls "$SPOOLQ_DIR/k/run"
	refute_output --partial job.
}

@test "qworker --batch: usage errors (64): --batch 0 or over 1000, --batch-wait alone, two queues, --output" {
	mkq r
	expect_fail 64 qworker --batch 0 q -- true
	expect_fail 64 qworker --batch 1001 q -- true
	expect_fail 64 qworker --batch-wait 1s q -- true
	assert_output --partial 'only with --batch'
	expect_fail 64 qworker --batch 2 q r -- true
	assert_output --partial 'one queue only'
	expect_fail 64 qworker --batch 2 --output "$T/out" q -- true
	assert_output --partial 'not with --batch'
	assert_equal "$(ls "$SPOOLQ_DIR/q/run" | grep -c '^worker\.')" 0
}

@test "qworker --batch: message groups: at most one message of a group in a batch, each group in order" {
	qsend -g g1 q a1 a2 a3
	qsend -g g2 q b1 b2
	qsend q u1 u2
	work --drain --batch 10 q -- sh -c '
		for f; do printf "%s " "$(cat "$f")"; done >>"$T/batches"
		echo >>"$T/batches"' job
	assert_success
	assert_equal "$(cat "$T/batches")" "a1 b1 u1 u2 
a2 b2 
a3 "
	assert_equal "$(outcome_lines "$T/log")" 7
	assert_empty_queue q
}
