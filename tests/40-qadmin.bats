#!/usr/bin/env bats
# qadmin: create, destroy, list; queue.conf parsing as every tool sees it.

load helpers

setup() {
	spoolq_setup
}

teardown() {
	spoolq_teardown
}

@test "qadmin create: makes the queue and its state directories, root included" {
	assert_dir_not_exists "$SPOOLQ_DIR"
	run qadmin create q
	assert_success
	local s
	for s in tmp new cur retry dead attr run; do
		assert_dir_exists "$SPOOLQ_DIR/q/$s"
	done
	qsend q hello
	assert_count new q 1
}

@test "qadmin create: a path operand" {
	run qadmin create "$T/a/pq"
	assert_success
	assert_dir_exists "$T/a/pq/new"
	qsend "$T/a/pq" hello
	assert_count new "$T/a/pq" 1
}

@test "qadmin -d ROOT create" {
	run qadmin -d "$T/root2" create q
	assert_success
	assert_dir_exists "$T/root2/q/cur"
	assert_dir_not_exists "$SPOOLQ_DIR/q"
}

@test "qadmin create: an existing queue exits 73, its messages untouched" {
	mkq q max_attempts=7
	qsend q keep
	local before
	before=$(snapshot "$SPOOLQ_DIR")
	expect_fail 73 qadmin create q
	assert_output --partial 'qadmin: create: q: queue exists'
	assert_unchanged "$before"
	expect_fail 73 qadmin create q max_attempts=2
	assert_unchanged "$before"
}

@test "qadmin create: invalid names are refused, nothing created" {
	local name
	for name in .hidden "$(printf 'a%.0s' {1..129})" 'a b' 'a,b' ''; do
		expect_fail '64|65' qadmin create "$name"
		assert_output --regexp '^qadmin: '
	done
	if [[ -d $SPOOLQ_DIR ]]; then
		[[ -z $(ls -A "$SPOOLQ_DIR") ]] || fail "created: $(ls -A "$SPOOLQ_DIR")"
	fi
}

@test "qadmin create KEY=VALUE...: writes a valid queue.conf that the tools obey" {
	run qadmin create q max_attempts=3 lease=10s retry_delay=5s retry_max_delay=1m ttl=1h durability=none
	assert_success
	local c
	c=$SPOOLQ_DIR/q/queue.conf
	assert_file_exists "$c"
	grep -qE '^\[queue\][[:space:]]*$' "$c" || fail "no [queue] section: $(cat "$c")"
	grep -qE '^[[:space:]]*max_attempts[[:space:]]*=[[:space:]]*3[[:space:]]*$' "$c"
	grep -qE '^[[:space:]]*lease[[:space:]]*=[[:space:]]*10s[[:space:]]*$' "$c"
	grep -qE '^[[:space:]]*durability[[:space:]]*=[[:space:]]*none[[:space:]]*$' "$c"
	grep -qE '^[[:space:]]*ttl[[:space:]]*=[[:space:]]*1h[[:space:]]*$' "$c"
	# The tools read it: lease 10s, retry delay 5s.
	qsend q body
	local t0 r n
	t0=$(now)
	r=$(qrecv q)
	int_between "$(field "$r" l)" $((t0 + 9)) $(( $(now) + 11 ))
	qack --retry "$r"
	n=$(only retry q)
	int_between "$(field "$n" t)" $((t0 + 3)) $(( $(now) + 7 ))
}

@test "qadmin create: bad keys or values are refused, nothing created" {
	local kv
	for kv in bogus=1 max_attempts=0 max_attempts=10001 max_attempts=abc max_attempts=-1 \
	    lease=10x lease=500ms lease= 'lease=5 minutes' durability=sometimes ttl=forever \
	    retry_delay=1y noequals =5 'max_attempts=3,lease=1s'; do
		expect_fail '64|65|78' qadmin create q "$kv"
		assert_output --regexp '^qadmin: '
		assert_dir_not_exists "$SPOOLQ_DIR/q"
	done
	expect_fail '64|65|78' qadmin create q bogus=1
	assert_output --partial bogus
	expect_fail '64|65|78' qadmin create q lease=10x
	assert_output --partial lease
	expect_fail '64|65|78' qadmin create q max_attempts=2 durability=maybe
	assert_output --partial durability
	assert_dir_not_exists "$SPOOLQ_DIR/q"
}

@test "qadmin destroy: removes an empty queue" {
	mkq q
	mkq keep
	run qadmin destroy q
	assert_success
	assert_dir_not_exists "$SPOOLQ_DIR/q"
	assert_dir_exists "$SPOOLQ_DIR/keep/new"
}

@test "qadmin destroy: a missing queue exits 66" {
	expect_fail 66 qadmin destroy nope
	assert_output --partial 'qadmin: destroy: nope: no such queue'
}

@test "qadmin destroy: refuses a queue holding messages without -f (65)" {
	mkq q
	qsend q a b c d
	qrecv q > /dev/null
	qack --retry --delay 1h "$(qrecv q)"
	qack --reject "$(qrecv q)"
	local before
	before=$(snapshot "$SPOOLQ_DIR")
	expect_fail 65 qadmin destroy q
	assert_output 'qadmin: destroy: q: queue not empty: 1 in new/, 1 in cur/, 1 in retry/, 1 in dead/; use -f'
	assert_unchanged "$before"
	run qadmin destroy -f q
	assert_success
	assert_dir_not_exists "$SPOOLQ_DIR/q"
}

@test "qadmin destroy: each non-empty state blocks it" {
	local s r
	for s in new cur retry dead; do
		mkq "q-$s"
		qsend "q-$s" x
	done
	qrecv q-cur > /dev/null
	qack --retry --delay 1h "$(qrecv q-retry)"
	qack --reject "$(qrecv q-dead)"
	for s in new cur retry dead; do
		expect_fail 65 qadmin destroy "q-$s"
		assert_output "qadmin: destroy: q-$s: queue not empty: 1 in $s/; use -f"
		assert_count "$s" "q-$s" 1
	done
	# A message an operator parked in hold/ too.
	mkq q-hold
	qadmin hold q-hold "$(qsend -p q-hold parked)" >/dev/null
	expect_fail 65 qadmin destroy q-hold
	assert_output 'qadmin: destroy: q-hold: queue not empty: 1 in hold/; use -f'
	assert_count hold q-hold 1
}

@test "qadmin destroy: messages it cannot count (too few descriptors) are that error (74), never \"not empty\" with advice to use -f; the queue stays whole" {
	mkq q
	qsend q a b c
	local before n seen=0
	before=$(snapshot "$SPOOLQ_DIR")
	# Each limit (from what the loader needs) fails somewhere else:
	# opening the queue, counting a state, or (enough) not at all.
	for n in $(seq 6 24); do
		run bash -c 'ulimit -n "$1" && exec qadmin destroy q' _ "$n"
		case $status in
		65) assert_output 'qadmin: destroy: q: queue not empty: 3 in new/; use -f'
		    seen=$((seen + 1)) ;;
		74) assert_output 'qadmin: destroy: q: Too many open files' ;;
		*) fail "limit $n: exit $status: $output" ;;
		esac
		assert_unchanged "$before"
	done
	((seen > 0)) || fail "no limit let it count"
}

@test "qadmin destroy, stats and list: a group's directory they cannot open (too few descriptors) is that error (74), never a count without its messages; the queue stays whole" {
	mkq q
	qsend -g k q one two three > /dev/null
	qrecv q > /dev/null		# the head claimed: 2 wait behind it
	local before n seen=0
	before=$(snapshot "$SPOOLQ_DIR")
	# LeakSanitizer's own descriptors at exit are not what this counts.
	export "$(leakless_env)"
	for n in $(seq 6 24); do
		run bash -c 'ulimit -n "$1" && exec qadmin destroy q' _ "$n"
		case $status in
		65) assert_output 'qadmin: destroy: q: queue not empty: 2 in groups/, 1 in cur/; use -f'
		    seen=$((seen + 1)) ;;
		74) assert_output 'qadmin: destroy: q: Too many open files' ;;
		*) fail "destroy, limit $n: exit $status: $output" ;;
		esac
		assert_unchanged "$before"
		run bash -c 'ulimit -n "$1" && exec qadmin stats q' _ "$n"
		case $status in
		0) assert_line --regexp '^  ready +2 +8  oldest '
		   assert_line --regexp '^  inflight +1 +3  first lease '
		   assert_line '  groups       1: 1 in flight, 1 blocked, 2 messages waiting'
		   seen=$((seen + 1)) ;;
		74) assert_line --partial 'Too many open files' ;;
		*) fail "stats, limit $n: exit $status: $output" ;;
		esac
		assert_unchanged "$before"
		run bash -c 'ulimit -n "$1" && exec qadmin list' _ "$n"
		case $status in
		0) assert_line "q"$'\t'"2"$'\t'"1"$'\t'"0"$'\t'"0"$'\t'"ok"
		   seen=$((seen + 1)) ;;
		74) assert_line --partial 'Too many open files' ;;
		*) fail "list, limit $n: exit $status: $output" ;;
		esac
		assert_unchanged "$before"
	done
	((seen >= 3)) || fail "no limit let them count"
}

@test "qadmin destroy: a FIFO planted in a group's directory, which no count takes for a message, stops it with words that say so; nothing is removed" {
	mkq q
	mkdir -p "$SPOOLQ_DIR/q/groups/k"
	mkfifo "$SPOOLQ_DIR/q/groups/k/f"
	expect_fail 65 qadmin destroy q
	assert_output 'qadmin: destroy: q: queue not empty: a message came in groups/, or something that is no message is there (qadmin check); use -f'
	assert [ -p "$SPOOLQ_DIR/q/groups/k/f" ]
	run -1 qadmin check q
	assert_line 'qadmin: check: q: not a regular file (FIFO): groups/k/f'
}

# destroy_held LOG QUEUE: start `qadmin destroy QUEUE` in the background
# with its first unlinkat (the removal of tmp/ that begins the sealing of
# the queue) held back 4 s by strace, and wait until it is held there,
# past its look at the queue.
destroy_held() {
	command -v strace >/dev/null || skip "strace is not installed"
	strace -f -qq -o /dev/null true 2>/dev/null || skip "strace cannot trace here"
	strace -E "$(leakless_env)" -f -qq -o "$1" -e trace=unlinkat \
	    -e inject=unlinkat:delay_enter=4000000:when=1 \
	    qadmin destroy "$2" >"$1.out" 2>&1 &
	DESTROY_PID=$!
	wait_for grep -q 'unlinkat(' "$1"
}

# destroy_done LOG: wait for destroy_held's qadmin; its status in $status.
destroy_done() {
	# What came in came before the seal: it is still held back.
	run grep -c ' = ' "$1"
	assert_output 0
	status=0
	wait "$DESTROY_PID" || status=$?
	output=$(cat "$1.out")
}

@test "qadmin destroy: a message sent after its look at the queue stops it; the queue is made whole again with it (65)" {
	mkq q
	destroy_held "$T/strace.log" q
	qsend q landed
	destroy_done "$T/strace.log"
	assert_equal "$status" 65
	assert_output 'qadmin: destroy: q: queue not empty: a message came in new/; use -f'
	assert_count new q 1
	run -0 qrecv -A q
	assert_output landed
	run -0 qadmin destroy q
	assert_dir_not_exists "$SPOOLQ_DIR/q"
	run ls -A "$SPOOLQ_DIR"
	assert_output ''
}

@test "qadmin destroy: acknowledged messages kept in archive/ block it without -f, also one archived after its look; -f removes them" {
	mkq q archive=yes
	qsend q kept
	run -0 qack "$(qrecv q)"
	assert_count archive q 1
	expect_fail 65 qadmin destroy q
	assert_output 'qadmin: destroy: q: queue not empty: 1 in archive/ (acknowledged, kept for replay); use -f'
	assert_count archive q 1
	# Archived after its look at the queue, before the seal.
	mkq r archive=yes
	destroy_held "$T/strace.log" r
	qsend r late
	run -0 qack "$(qrecv r)"
	destroy_done "$T/strace.log"
	assert_equal "$status" 65
	assert_output 'qadmin: destroy: r: queue not empty: a message came in archive/; use -f'
	assert_count archive r 1
	run -0 qadmin check r
	run -0 qadmin destroy -f q
	run -0 qadmin destroy -f r
	run ls -A "$SPOOLQ_DIR"
	assert_output ''
}

@test "qadmin destroy: a dead letter forwarded in after its look at the queue stops it; a grouped send too" {
	mkq q
	mkq src dead_letter=q
	qsend src doomed
	local r
	r=$(qrecv src)
	destroy_held "$T/strace.log" q
	qack --reject "$r"
	destroy_done "$T/strace.log"
	assert_equal "$status" 65
	assert_output 'qadmin: destroy: q: queue not empty: a message came in new/; use -f'
	assert_count new q 1
	assert_count dead src 0
	run -0 qrecv -A q
	assert_output doomed

	destroy_held "$T/strace2.log" q
	qsend -g grp q first
	destroy_done "$T/strace2.log"
	assert_equal "$status" 65
	assert_output 'qadmin: destroy: q: queue not empty: a message came in new/; use -f'
	run -0 qrecv -A q
	assert_output first
}

# calls_seen CALL N LOG: whether the strace LOG shows N calls of CALL
# begun.
calls_seen() {
	local n
	n=$(grep -c "$1(" "$3" 2>/dev/null) || true
	((${n:-0} >= $2))
}

@test "qadmin destroy: a grouped send that lands while it counts the queue is counted once, in groups/; new/ is not made negative" {
	command -v strace >/dev/null || skip "strace is not installed"
	strace -f -qq -o /dev/null true 2>/dev/null || skip "strace cannot trace here"
	local n
	mkq q
	qsend -g grp q first
	run -0 qrecv q
	assert_count cur q 1
	# The look at the queue, traced: the last open of the group's
	# directory is that of its last listing of groups/.
	run -65 strace -E "$(leakless_env)" -f -qq -o "$T/dry.log" \
	    -e trace=openat qadmin destroy q
	assert_output 'qadmin: destroy: q: queue not empty: 1 in cur/; use -f'
	n=$(awk '/openat\(/ { i++ } /"grp"/ { n = i } END { print n }' \
	    "$T/dry.log")
	((n > 0)) || fail "no open of groups/grp in $T/dry.log"
	# The second message of the group waits behind the claimed first:
	# sent while that open is held back, after any listing of groups/
	# before it.
	strace -E "$(leakless_env)" -f -qq -o "$T/strace.log" -e trace=openat \
	    -e inject=openat:delay_enter=4000000:when="$n" \
	    qadmin destroy q >"$T/strace.log.out" 2>&1 &
	DESTROY_PID=$!
	wait_for calls_seen openat "$n" "$T/strace.log"
	qsend -g grp q second
	# That open was still held back when the send was done.
	run awk -v n="$n" '/openat\(/ && ++i == n' "$T/strace.log"
	assert_output --partial '"grp"'
	refute_output --partial ' = '
	status=0
	wait "$DESTROY_PID" || status=$?
	output=$(cat "$T/strace.log.out")
	assert_equal "$status" 65
	assert_output 'qadmin: destroy: q: queue not empty: 1 in groups/, 1 in cur/; use -f'
	assert_count new q 0
	assert_count cur q 1
}

# reject_held LOG RECEIPT [SYSCALL]: start `qack --reject RECEIPT` in the
# background with its first SYSCALL (renameat2: the forward into the
# dead_letter queue, its target's directories already opened and checked)
# held back 4 s, and wait until it is held there.
reject_held() {
	local call=${3:-renameat2}
	strace -E "$(leakless_env)" -f -qq -o "$1" -e trace="$call" \
	    -e inject="$call":delay_enter=4000000:when=1 \
	    qack --reject "$2" >"$1.out" 2>&1 &
	REJECT_PID=$!
	wait_for grep -q "$call(" "$1"
}

# destroy_emptying LOG QUEUE: start `qadmin destroy QUEUE` with its first
# dup(2) held back 8 s, and wait until it is held there.  Before it a
# directory being sealed that held no message was listed and judged.
destroy_emptying() {
	strace -E "$(leakless_env)" -f -qq -o "$1" -e trace=dup \
	    -e inject=dup:delay_enter=8000000:when=1 \
	    qadmin destroy "$2" >"$1.out" 2>&1 &
	DESTROY_PID=$!
	wait_for grep -q 'dup(' "$1"
}

@test "qadmin destroy: a dead letter that lands while a directory is being emptied stays, in a group's directory or beside a dot file" {
	command -v strace >/dev/null || skip "strace is not installed"
	strace -f -qq -o /dev/null true 2>/dev/null || skip "strace cannot trace here"
	local round r status1 status2
	for round in dot group; do
		mkq q
		mkq src dead_letter=q
		if [[ $round == dot ]]; then
			: >"$SPOOLQ_DIR/q/new/.keep"
			qsend src doomed
		else
			# A group that was used keeps its directory and baton.
			qsend -g grp q old
			run -0 qrecv -A q
			qsend -g grp src doomed
		fi
		r=$(qrecv src)
		reject_held "$T/ack.$round" "$r"
		destroy_emptying "$T/destroy.$round" q
		status1=0
		wait "$REJECT_PID" || status1=$?
		status2=0
		wait "$DESTROY_PID" || status2=$?
		# The reject said it was done: the dead letter is in q (the
		# destroy refused, 65) or in src's dead/ (q was gone first).
		assert_equal "$status1" 0
		if [[ $status2 == 0 ]]; then
			assert_dir_not_exists "$SPOOLQ_DIR/q"
			assert_count dead src 1
		else
			assert_equal "$status2" 65
			assert_count dead src 0
			run -0 qrecv -A q
			assert_output doomed
		fi
		rm -rf "${SPOOLQ_DIR:?}/q" "$SPOOLQ_DIR/src"
	done
}

@test "qadmin destroy: a grouped dead letter whose groups/ is made after the queue was sealed is refused there and kept by its sender" {
	command -v strace >/dev/null || skip "strace is not installed"
	strace -f -qq -o /dev/null true 2>/dev/null || skip "strace cannot trace here"
	local r status1=0 status2=0
	mkq q
	mkq src dead_letter=q
	qsend -g grp src doomed
	r=$(qrecv src)
	# q has no groups/ yet: the forward makes it (mkdirat), held until
	# the destroy has sealed q and is about to remove what is left.
	reject_held "$T/ack" "$r" mkdirat
	destroy_emptying "$T/destroy" q
	wait "$REJECT_PID" || status1=$?
	wait "$DESTROY_PID" || status2=$?
	assert_equal "$status1" 0
	assert_equal "$status2" 0
	assert_dir_not_exists "$SPOOLQ_DIR/q"
	assert_count dead src 1
	run -0 cat "$SPOOLQ_DIR/src/dead/$(names dead src)"
	assert_output doomed
}

@test "qadmin destroy: killed while it puts back a queue a message arrived in, it leaves the queue and the message under its name; check --repair mends it" {
	command -v strace >/dev/null || skip "strace is not installed"
	strace -f -qq -o /dev/null true 2>/dev/null || skip "strace cannot trace here"
	local status=0
	mkq q
	# Held after its look at the queue; killed at its first mkdirat, as
	# it makes again the directories it removed.
	strace -E "$(leakless_env)" -f -qq -o "$T/trace" -e trace=unlinkat,mkdirat \
	    -e inject=unlinkat:delay_enter=4000000:when=1 \
	    -e inject=mkdirat:signal=SIGKILL:when=1 \
	    qadmin destroy q >"$T/out" 2>&1 &
	wait_for grep -q 'unlinkat(' "$T/trace"
	run -0 qsend q important
	wait $! || status=$?
	assert_equal "$status" 137
	grep -q 'killed by SIGKILL' "$T/trace" || fail "$(cat "$T/trace")"
	run -0 qadmin check --repair q
	run -0 qadmin check q
	run -0 qrecv -A q
	assert_output important
	run -0 qadmin destroy q
	run ls -A "$SPOOLQ_DIR"
	assert_output ''
}

@test "qadmin destroy: what a running worker makes again in the queue being removed goes with it, and the destroy succeeds" {
	command -v strace >/dev/null || skip "strace is not installed"
	strace -f -qq -o /dev/null true 2>/dev/null || skip "strace cannot trace here"
	local n status=0
	mkq q0
	mkq q
	# The last unlinkat of a destroy removes the queue's directory.
	strace -E "$(leakless_env)" -f -qq -o "$T/t0" -e trace=unlinkat \
	    qadmin destroy q0
	n=$(grep -c 'unlinkat(' "$T/t0")
	strace -E "$(leakless_env)" -f -qq -o "$T/t" -e trace=unlinkat \
	    -e inject=unlinkat:delay_enter=4000000:when="$n" \
	    qadmin destroy q >"$T/out" 2>&1 &
	wait_for grep -q 'unlinkat([0-9]*, "\.destroy\.' "$T/t"
	# As a worker's beat makes run/ again in the queue it has open.
	mkdir "$SPOOLQ_DIR/$(ls -A "$SPOOLQ_DIR")/run"
	wait $! || status=$?
	assert_equal "$status" 0 "$(cat "$T/out")"
	run ls -A "$SPOOLQ_DIR"
	assert_output ''
	# A worker serving the queue meanwhile makes nothing in it.
	mkq q
	qworker q -- cat >/dev/null 2>&1 &
	wait_for eval '[[ -n $(ls "$SPOOLQ_DIR/q/run") ]]'
	run -0 qadmin destroy q
	run ls -A "$SPOOLQ_DIR"
	assert_output ''
	kill %1
}

# age_leftover DIR: DIR and each directory directly in it last changed
# two hours ago.
age_leftover() {
	find "$1" -maxdepth 1 -type d -exec touch -d '2 hours ago' {} +
}

@test "qadmin gc: finishes the removal of a destroy -f killed mid-way once it is over, and nothing else of its name" {
	command -v strace >/dev/null || skip "strace is not installed"
	strace -f -qq -o /dev/null true 2>/dev/null || skip "strace cannot trace here"
	local status=0 left pid name
	mkq q
	mkq p
	qsend q one two three
	# Killed at its first unlinkat: renamed aside, nothing removed yet.
	strace -E "$(leakless_env)" -f -qq -o "$T/trace" -e trace=unlinkat \
	    -e inject=unlinkat:signal=SIGKILL:when=1 \
	    qadmin destroy -f q >"$T/out" 2>&1 || status=$?
	assert_equal "$status" 137
	left=$(cd "$SPOOLQ_DIR" && ls -d .destroy.*)
	[[ $left =~ ^\.destroy\.([0-9]+)\.[0-9a-f]{8}$ ]] || fail "left: $left"
	pid=${BASH_REMATCH[1]}
	assert_count new "$SPOOLQ_DIR/$left" 3
	# Just stopped: it may be at work still, and stays.
	run -0 qadmin gc
	assert_output ''
	run -0 qadmin gc p
	assert_output ''
	# A state directory emptied within the hour keeps it too.
	age_leftover "$SPOOLQ_DIR/$left"
	touch "$SPOOLQ_DIR/$left/new"
	run -0 qadmin gc
	assert_output ''
	# Other names of its kind, all old: a symbolic link to a directory
	# outside, a file, names that only look like one.
	mkdir -p "$T/outside/new"
	echo precious >"$T/outside/new/keep"
	ln -s "$T/outside" "$SPOOLQ_DIR/.destroy.$pid.0badf00d"
	echo precious >"$SPOOLQ_DIR/.destroy.$pid.0000000f"
	for name in ".destroy.$pid.DEADBEEF" ".destroy.$pid.deadbee" \
	    ".destroy.x$pid.deadbeef" ".destroy.$pid.deadbeef.1" ".create.$pid.deadbeef"; do
		mkdir -p "$SPOOLQ_DIR/$name/new"
		age_leftover "$SPOOLQ_DIR/$name"
	done
	age_leftover "$T/outside"
	age_leftover "$SPOOLQ_DIR/$left"
	run -0 qadmin -n gc p
	assert_output "would gc ../$left removed (left by an interrupted destroy, unchanged for 1h)"
	assert_count new "$SPOOLQ_DIR/$left" 3
	run -0 qadmin gc p
	assert_output "gc ../$left removed (left by an interrupted destroy, unchanged for 1h)"
	[[ ! -e $SPOOLQ_DIR/$left ]] || fail "still there: $(ls -A "$SPOOLQ_DIR/$left")"
	run ls -A "$SPOOLQ_DIR"
	assert_output "$(printf '%s\n' .create.$pid.deadbeef .destroy.$pid.0000000f \
	    .destroy.$pid.0badf00d .destroy.$pid.DEADBEEF .destroy.$pid.deadbee \
	    .destroy.$pid.deadbeef.1 .destroy.x$pid.deadbeef p | LC_ALL=C sort)"
	assert_equal "$(cat "$T/outside/new/keep")" precious
	run -0 qadmin gc
	assert_output ''
}

@test "qadmin gc: leaves a destroy that is still at work, however old its directories look" {
	command -v strace >/dev/null || skip "strace is not installed"
	strace -f -qq -o /dev/null true 2>/dev/null || skip "strace cannot trace here"
	local status=0 left
	mkq q
	qsend q one two three
	# Held 4 s at its first unlinkat, past its rename aside.
	strace -E "$(leakless_env)" -f -qq -o "$T/trace" -e trace=unlinkat \
	    -e inject=unlinkat:delay_enter=4000000:when=1 \
	    qadmin destroy -f q >"$T/out" 2>&1 &
	wait_for grep -q 'unlinkat(' "$T/trace"
	left=$(cd "$SPOOLQ_DIR" && ls -d .destroy.*)
	age_leftover "$SPOOLQ_DIR/$left"
	run -0 qadmin gc
	assert_output ''
	assert_count new "$SPOOLQ_DIR/$left" 3
	wait $! || status=$?
	assert_equal "$status" 0 "$(cat "$T/out")"
	run ls -A "$SPOOLQ_DIR"
	assert_output ''
}

@test "qadmin destroy -f: refuses a directory that is not a queue" {
	mkdir -p "$SPOOLQ_DIR/notaq/sub"
	echo precious > "$SPOOLQ_DIR/notaq/file"
	echo precious > "$SPOOLQ_DIR/notaq/sub/file"
	expect_fail '64|65|66' qadmin destroy -f notaq
	assert_file_exists "$SPOOLQ_DIR/notaq/file"
	assert_file_exists "$SPOOLQ_DIR/notaq/sub/file"
}

@test "qadmin list: header and one tab-separated line per queue with counts and status" {
	mkq q1
	mkq q2
	seq 1 6 | qsend -l q1
	local -a r
	mapfile -t r < <(qrecv -n 3 q1)
	qack --retry --delay 1h "${r[0]}"
	qack --reject "${r[1]}"
	printf 'x' > "$SPOOLQ_DIR/q1/new/.ignored"
	run --separate-stderr qadmin list
	assert_success
	assert_line --index 0 $'QUEUE\tREADY\tINFLIGHT\tRETRY\tDEAD\tSTATUS'
	assert_line $'q1\t3\t1\t1\t1\tok'
	assert_line $'q2\t0\t0\t0\t0\tok'
	[ "${#lines[@]}" -eq 3 ]
}

@test "qadmin: usage, --help, --version" {
	expect_fail 64 qadmin
	assert_usage qadmin
	expect_fail 64 qadmin frobnicate
	assert_usage qadmin
	expect_fail 64 qadmin --bogus list
	assert_usage qadmin
	expect_fail 64 qadmin create
	run --separate-stderr qadmin --help
	assert_success
	assert_usage qadmin
	run --separate-stderr qadmin --version
	assert_success
	assert_output --regexp '^qadmin \(spoolq\) [0-9]'
}

# --- queue.conf as read by the tools ----------------------------------------

# conf_error LINE KEY: every tool refuses the queue with 78 and names
# queue.conf, LINE and KEY; nothing is sent or claimed.
conf_error() {
	local line=$1 key=$2 before
	before=$(snapshot "$SPOOLQ_DIR")
	expect_fail 78 qsend q hello
	assert_output --partial "queue.conf:$line:"
	[[ -z $key ]] || assert_output --partial "$key"
	assert_output --regexp '^qsend: '
	assert_unchanged "$before"
	expect_fail 78 qrecv q
	assert_output --partial "queue.conf:$line:"
	[[ -z $key ]] || assert_output --partial "$key"
	assert_unchanged "$before"
}

@test "config: the action may come before the queue, unless a queue has its name" {
	qadmin create q
	run -0 qadmin config set q lease=1m
	assert_output "set lease = 1m"
	run -0 qadmin config get q lease
	assert_output 1m
	run -0 qadmin config show q
	assert_line --index 1 "lease = 1m	(queue.conf:2)"
	run -66 qadmin config set nosuch lease=1m
	assert_output "qadmin: config: nosuch: no such queue"
	# A queue named set is the queue.
	qadmin create set
	run -64 qadmin config set q lease=2m
	assert_line --index 0 "qadmin: config: q: unknown action (get, set or show)"
	run -0 qadmin config get q lease
	assert_output 1m
}

@test "config: an unknown key is an error naming file, line and key (78)" {
	mkq q
	qsend q keep
	printf '[queue]\nmax_attempts = 3\nfrobnicate = 1\n' > "$SPOOLQ_DIR/q/queue.conf"
	conf_error 3 frobnicate
}

@test "config: a bad duration is an error naming file, line and key (78)" {
	mkq q
	printf '[queue]\n\nlease = 5 minutes\n' > "$SPOOLQ_DIR/q/queue.conf"
	conf_error 3 lease
	printf '[queue]\nretry_delay = 10x\n' > "$SPOOLQ_DIR/q/queue.conf"
	conf_error 2 retry_delay
	printf '[queue]\nttl = -5s\n' > "$SPOOLQ_DIR/q/queue.conf"
	conf_error 2 ttl
}

@test "config: a bad durability is an error naming file, line and key (78)" {
	mkq q
	printf '# comment\n[queue]\ndurability = sometimes\n' > "$SPOOLQ_DIR/q/queue.conf"
	conf_error 3 durability
}

@test "config: a bad max_attempts is an error (78)" {
	mkq q
	printf '[queue]\nmax_attempts = 0\n' > "$SPOOLQ_DIR/q/queue.conf"
	conf_error 2 max_attempts
	printf '[queue]\nmax_attempts = many\n' > "$SPOOLQ_DIR/q/queue.conf"
	conf_error 2 max_attempts
}

@test "config: a garbage line is an error naming file and line (78)" {
	mkq q
	printf '[queue]\nlease = 1m\nthis is not ini\n' > "$SPOOLQ_DIR/q/queue.conf"
	conf_error 3 ''
}

@test "config: an unknown section is an error (78)" {
	mkq q
	printf '[queue]\nlease = 1m\n[exchange]\ntype = fanout\n' > "$SPOOLQ_DIR/q/queue.conf"
	expect_fail 78 qsend q hello
	assert_output --regexp 'queue\.conf:[34]:'
	assert_count new q 0
}

@test "config: comments, blank lines and spacing are fine" {
	mkq q
	printf '; spoolq\n# queue settings\n\n[queue]\n  lease=90s\nmax_attempts   =   4\n\ndurability = none\n' > "$SPOOLQ_DIR/q/queue.conf"
	qsend q body
	local t0 r
	t0=$(now)
	r=$(qrecv q)
	int_between "$(field "$r" l)" $((t0 + 89)) $(( $(now) + 91 ))
}

@test "config: an empty queue.conf means all defaults" {
	mkq q
	: > "$SPOOLQ_DIR/q/queue.conf"
	qsend q body
	local t0 r
	t0=$(now)
	r=$(qrecv q)
	int_between "$(field "$r" l)" $((t0 + 299)) $(( $(now) + 301 ))
}

@test "config: an unreadable queue.conf is an error" {
	(( EUID != 0 )) || skip "root reads any file"
	mkq q
	printf '[queue]\nlease = 1m\n' > "$SPOOLQ_DIR/q/queue.conf"
	chmod 000 "$SPOOLQ_DIR/q/queue.conf"
	expect_fail '66|74|77|78' qsend q hello
	assert_output --partial queue.conf
	assert_count new q 0
}

@test "config: a queue.conf that is a directory is an error" {
	mkq q
	rm -f "$SPOOLQ_DIR/q/queue.conf"
	mkdir "$SPOOLQ_DIR/q/queue.conf"
	expect_fail '74|78' qsend q hello
	assert_output --partial queue.conf
	assert_count new q 0
	expect_fail '74|78' qrecv q
}

@test "qadmin: options may follow operands (destroy q -f); dry runs check the queue; output errors are reported" {
	qadmin create q
	qsend q x
	run qadmin -n destroy nosuch
	assert_failure 66
	assert_output --partial 'nosuch: no such queue'
	run qadmin destroy q -f
	assert_success
	assert_dir_not_exists "$SPOOLQ_DIR/q"
	qadmin create q
	run bash -c 'qadmin list > /dev/full'
	assert_failure 74
}
