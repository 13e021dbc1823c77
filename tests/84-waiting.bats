#!/usr/bin/env bats
# Waiting that stays prompt and bounded.  Without inotify events (where
# inotify_init1 fails or the watch limit is reached, both injected with
# strace(1)) waiting consumers look every poll_interval, claim within it,
# keep draining, and do not spin; the assertions allow many intervals:
# what they catch is a wait for the next heartbeat (10 s) or a busy loop,
# not a late wake-up.  A lock held by a stopped process (flock(1) stands
# in for it) holds nobody for longer than the documented bound.

load helpers

setup() {
	spoolq_setup
	MOUNTED=
}

teardown() {
	# A traced process stopped by the test outlives its killed tracer.
	[[ -z ${STOPPED-} ]] || kill -9 "$STOPPED" 2>/dev/null || true
	kill_jobs
	if [[ -n $MOUNTED ]]; then
		wait_until 5 fusermount -u "$MOUNTED" 2>/dev/null ||
		    umount -l "$MOUNTED"
	fi
	spoolq_teardown
}

need_strace() {
	command -v strace >/dev/null || skip "strace is not installed"
	strace -f -qq -o /dev/null --seccomp-bpf -e trace=inotify_init1 true \
	    2>/dev/null || skip "strace cannot trace here"
	# LeakSanitizer cannot run under ptrace: leaks are checked elsewhere.
	export ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0"
}

# traced INJECTION CMD...: CMD under strace, only INJECTION's call traced.
traced() {
	local inject=$1 call=${1%%:*}
	shift
	strace -E "$(leakless_env)" -f -qq -o /dev/null --seccomp-bpf -e "trace=$call" \
	    -e "inject=$inject" "$@"
}

# start_traced INJECTION ARGS...: qworker ARGS in the background under
# strace ($WPID), its log in $T/wlog.
start_traced() {
	(exec strace -E "$(leakless_env)" -f -qq -o /dev/null --seccomp-bpf -e "trace=${1%%:*}" \
	    -e "inject=$1" qworker "${@:2}" >"$T/wout" 2>"$T/wlog" 3>&-) &
	WPID=$!
}

# pid_of NAME: the pid of the process NAME that strace ($WPID) runs.
pid_of() {
	local pid pname=$1
	wait_for eval 'pid=$(pgrep -o -P "$WPID" -x "$pname")'
	echo "$pid"
}

# cpu_ticks PID: user + system time of PID, in clock ticks.
cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}

acked() {
	[[ $(grep -c " q 1 ack " "$T/wlog") == "$1" ]]
}

@test "poll_interval: a duration of at least 10ms, 1s by default, shown by config get" {
	mkq q
	assert_equal "$(qadmin config q get poll_interval)" 1s
	qadmin -q config q set poll_interval=200ms
	assert_equal "$(qadmin config q get poll_interval)" 200ms
	expect_fail 78 qadmin create r poll_interval=5ms
	assert_output --partial 'poll_interval'
	assert_output --partial 'at least 10ms'
	expect_fail 78 qadmin create r poll_interval=soon
	assert_output --partial 'poll_interval'
}

@test "qworker without inotify (inotify_init1 EMFILE): claims within poll_interval, drains a burst, idles without spinning" {
	need_strace
	mkq q poll_interval=200ms
	start_traced inotify_init1:error=EMFILE q -- cat
	local pid
	pid=$(pid_of qworker)
	wait_for eval '[[ -n $(ls "$SPOOLQ_DIR/q/run" | grep "^worker\.") ]]'
	# Idle: a look every 200 ms costs next to nothing (a spin would be
	# 100 ticks a second).
	local t0
	t0=$(cpu_ticks "$pid")
	sleep 3
	int_between "$(( $(cpu_ticks "$pid") - t0 ))" 0 60
	# One message: far sooner than the 10 s heartbeat.
	qsend q one
	wait_for -t 5 acked 1
	# A burst: every message, one job after another.
	seq 1 20 | qsend -l q
	wait_for -t 10 acked 21
	assert_count new q 0
	assert_count cur q 0
	# By hand into new/, as any program may deliver.
	printf 'by hand' >"$SPOOLQ_DIR/q/tmp/1700000000.000000001.1_0_00000000.x"
	mv "$SPOOLQ_DIR/q/tmp/1700000000.000000001.1_0_00000000.x" "$SPOOLQ_DIR/q/new/"
	wait_for -t 5 acked 22
	assert_equal "$(tail -c 7 "$T/wout")" "by hand"
	kill -TERM "$pid"
	wait_for -t 10 eval '! kill -0 "$WPID" 2>/dev/null'
}

@test "qworker at the watch limit (inotify_add_watch ENOSPC): claims within poll_interval" {
	need_strace
	mkq q poll_interval=200ms
	start_traced inotify_add_watch:error=ENOSPC q -- cat
	local pid
	pid=$(pid_of qworker)
	wait_for eval '[[ -n $(ls "$SPOOLQ_DIR/q/run" | grep "^worker\.") ]]'
	sleep 0.5
	qsend q one
	wait_for -t 5 acked 1
	kill -TERM "$pid"
	wait_for -t 10 eval '! kill -0 "$WPID" 2>/dev/null'
}

@test "qrecv -w without inotify (inotify_init1 EMFILE): claims within poll_interval, and -n 3 takes a burst" {
	need_strace
	mkq q poll_interval=200ms
	traced inotify_init1:error=EMFILE qrecv -w 30 q >"$T/r1" &
	local p=$!
	sleep 0.5
	qsend q one
	wait_for -t 5 eval '! kill -0 "$p" 2>/dev/null'
	wait "$p"
	assert_equal "$(cat "$SPOOLQ_DIR/q/cur/$(basename "$(cat "$T/r1")")")" one
	qsend q a b c
	run traced inotify_init1:error=EMFILE qrecv -w 30 -n 3 q
	assert_success
	assert_equal "${#lines[@]}" 3
}

@test "qrecv -w without inotify: a message promoted from retry/ by its due time is claimed" {
	need_strace
	mkq q poll_interval=200ms
	qsend --delay 2s q later
	run traced inotify_init1:error=EMFILE qrecv -w 20 q
	assert_success
	assert_equal "$(cat "${lines[0]}")" later
}

@test "qrecv -w and qworker: a delayed send made while they wait is claimed when it falls due, with no event to mark it" {
	mkq q
	qrecv -w 60 q >"$T/r" &
	local p=$!
	sleep 0.5
	qsend --delay 2s q later
	# Due in 2 to 3 s; the heartbeat (10 s) or the wait's end (60 s) is
	# what a waiter that missed it would wait for.
	wait_for -t 8 eval '! kill -0 "$p" 2>/dev/null'
	wait "$p"
	assert_equal "$(cat "$(cat "$T/r")")" later
	qworker -n 1 q -- cat >"$T/wout" 2>"$T/wlog" 3>&- &
	WPID=$!
	wait_for eval '[[ -n $(ls "$SPOOLQ_DIR/q/run" | grep "^worker\.") ]]'
	sleep 0.5
	qsend --delay 2s q again
	wait_for -t 8 eval '! kill -0 "$WPID" 2>/dev/null'
	assert_equal "$(cat "$T/wout")" again
}

@test "qsend under overflow = block: admitted within poll_interval once a consumer makes room" {
	mkq q max_messages=1 overflow=block poll_interval=200ms
	qsend q first
	qsend q second &
	local p=$!
	sleep 1
	kill -0 "$p"			# still waiting for room
	assert_equal "$(bodies new q)" first
	assert_equal "$(qrecv -A q)" first
	wait_for -t 5 eval '! kill -0 "$p" 2>/dev/null'
	wait "$p"
	assert_equal "$(bodies new q)" second
}

# ------------------------------------------------------------ locks

# hold FILE: hold an exclusive flock on FILE in the background ($HOLDER),
# as a stopped process would; release with unhold.
hold() {
	local held=$1
	flock -o "$held" sleep 60 &
	HOLDER=$!
	wait_for eval '! flock -n "$held" true'
}

unhold() {
	pkill -P "$HOLDER" sleep || true
	wait "$HOLDER" || true
}

@test "qrecv and qworker --drain: a claim index locked by a stopped process delays claims 2 s at most, then they list new/" {
	command -v flock >/dev/null || skip "flock(1) is not installed"
	mkq q
	qsend q a b c
	qrecv q >/dev/null		# makes run/index.HOST
	hold "$(index_of q)"
	run timeout 30 qrecv q
	assert_success
	assert_equal "$(cat "$output")" b
	run timeout 30 qworker -q --drain q -- cat
	assert_success
	assert_output c
	assert_count new q 0
	unhold
}

@test "qsend to a bounded queue: a usage lock held by a stopped sender delays others by the lease at most, then they send by a fresh count" {
	command -v flock >/dev/null || skip "flock(1) is not installed"
	mkq q max_messages=10 lease=2s
	qsend q a			# makes run/usage
	hold "$SPOOLQ_DIR/q/run/usage"
	run timeout 30 qsend q b
	assert_success
	assert_count new q 2
	qadmin config q set overflow=block lease=5m >/dev/null
	t0=$(now_f)
	run timeout 30 qsend --timeout 1s q c
	assert_success
	# The 1 s asked for, not the 5 s of the lock's own bound.
	float_between "$(elapsed_since "$t0")" 0.9 4.5
	assert_count new q 3
	# Full by the fresh count too: that is a full queue, not a lock.
	qadmin config q set max_messages=3 overflow=reject >/dev/null
	run timeout 30 qsend q d
	assert_equal "$status" 75
	assert_output --partial 'queue full'
	unhold
	assert_count new q 3
}

@test "qsend to a bounded queue: a sender stopped holding run/usage blocks no other sender (block, --timeout, reject)" {
	command -v strace >/dev/null || skip "no strace"
	strace -f -qq -o /dev/null true 2>/dev/null || skip "strace cannot trace here"
	mkq q max_messages=100 overflow=block lease=5s
	strace -E "$(leakless_env)" -o /dev/null \
	    -e inject=renameat2:signal=SIGSTOP:when=2 qsend q x y z &
	tracer=$!
	wait_for eval '[[ $(ps -o stat= --ppid "$tracer") == [Tt]* ]]'
	STOPPED=$(ps -o pid= --ppid "$tracer")
	run timeout 60 qsend q other
	assert_success
	t0=$(now_f)
	run timeout 60 qsend --timeout 2s q timed
	assert_success
	float_between "$(elapsed_since "$t0")" 1.9 4.5
	qadmin config q set overflow=reject >/dev/null
	run timeout 60 qsend q rejected
	assert_success
	refute_output --partial 'queue full'
	assert_count new q 5		# x, y and the three others
	kill -CONT $STOPPED
	wait "$tracer"
	STOPPED=
	# The stalled batch is the overshoot the fresh counts accepted.
	assert_count new q 6
	assert_equal "$(bodies new q | sort | tr '\n' ' ')" "other rejected timed x y z "
}

@test "qrecv stopped in the middle of a claim gets a whole lease from its claim rename, not from when it began" {
	command -v strace >/dev/null || skip "no strace"
	strace -f -qq -o /dev/null true 2>/dev/null || skip "strace cannot trace here"
	mkq q
	qsend q a
	# Stopped at its first flock, the claim index lock, before it claims.
	strace -E "$(leakless_env)" -o /dev/null \
	    -e inject=flock:signal=SIGSTOP:when=1 qrecv --lease 2s q >"$T/r" &
	tracer=$!
	wait_for eval '[[ $(ps -o stat= --ppid "$tracer") == [Tt]* ]]'
	STOPPED=$(ps -o pid= --ppid "$tracer")
	sleep 3			# longer than the lease, while stopped
	local t
	t=$(now)
	kill -CONT $STOPPED
	wait "$tracer"
	STOPPED=
	(( $(field "$(cat "$T/r")" l) >= t + 2 )) ||
	    fail "lease deadline $(field "$(cat "$T/r")" l) before $t + 2"
	assert_count cur q 1
}

@test "qsend --dedup-id: a marker locked by a stopped sender gives exit 75 after 5 s; the ID sends later" {
	command -v flock >/dev/null || skip "flock(1) is not installed"
	mkq q
	qsend --dedup-id k1 q first
	qrecv -A q >/dev/null
	hold "$SPOOLQ_DIR/q/dedup/k1"
	run timeout 30 qsend --dedup-id k1 q again
	assert_equal "$status" 75
	assert_output --partial 'busy'
	assert_count new q 0
	unhold
	qsend --dedup-id k1 q again
	assert_count new q 0		# still a duplicate within the window
}

# stopped_marker [SETTING...]: make q with the settings; the dedup marker
# k1 of a message sent and taken is then locked by a stopped process.
stopped_marker() {
	command -v flock >/dev/null || skip "flock(1) is not installed"
	mkq q "$@"
	qsend --dedup-id k1 q first
	qrecv -A q >/dev/null
	hold "$SPOOLQ_DIR/q/dedup/k1"
	kill -STOP "$HOLDER"
}

@test "qsend --dedup-id: a marker locked by a stopped process holds a sender no longer than a lease shorter than 5 s" {
	stopped_marker lease=2s
	local t0
	t0=$(now_f)
	run timeout 30 qsend --dedup-id k1 q again
	assert_equal "$status" 75
	assert_output --partial 'busy'
	float_between "$(elapsed_since "$t0")" 1.9 4.5
	kill -CONT "$HOLDER"
	unhold
	assert_count new q 0
}

@test "run/counters locked by a stopped process: sends, claims and acks go on, each held 0.1 s at most" {
	command -v flock >/dev/null || skip "flock(1) is not installed"
	mkq q
	qsend q first
	qrecv q | qack -
	hold "$SPOOLQ_DIR/q/run/counters"
	kill -STOP "$HOLDER"
	local t0
	t0=$(now_f)
	run timeout 30 sh -c 'qsend q a b && qrecv q | qack - && qrecv q | qack -'
	assert_success
	float_between "$(elapsed_since "$t0")" 0 3
	assert_count new q 0
	assert_count cur q 0
	kill -CONT "$HOLDER"
	unhold
}

# clock_step OFFSET CMD...: run CMD (with `run`, under timeout 30) with
# its wall clock stepped by OFFSET seconds (-3600, +3600) half a second
# after it starts (libfaketime); its monotonic clock runs true.
clock_step() {
	local lib offset=$1
	shift
	lib=$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -1)
	[[ -n $lib ]] || skip "libfaketime is not installed"
	echo +0 >"$T/clock"
	rm -f "$T/started"
	(wait_for test -e "$T/started"; sleep 0.5; echo "$offset" >"$T/clock") &
	: >"$T/started"
	run env LD_PRELOAD="$lib" FAKETIME_TIMESTAMP_FILE="$T/clock" \
	    FAKETIME_NO_CACHE=1 FAKETIME_DONT_FAKE_MONOTONIC=1 \
	    ASAN_OPTIONS="$ASAN_OPTIONS:verify_asan_link_order=0" \
	    timeout 30 "$@"
}

@test "a lock wait keeps its bound when the wall clock steps back an hour meanwhile (libfaketime)" {
	stopped_marker
	local t0
	t0=$(now_f)
	clock_step -3600 qsend --dedup-id k1 q again
	assert_equal "$status" 75
	assert_output --partial 'busy'
	float_between "$(elapsed_since "$t0")" 4.5 15
	kill -CONT "$HOLDER"
	unhold
}

@test "qsend --timeout under overflow = block keeps its bound when the wall clock steps back an hour meanwhile (libfaketime)" {
	mkq q max_messages=1 overflow=block
	qsend q one
	local t0
	t0=$(now_f)
	clock_step -3600 qsend --timeout 3s q two
	assert_equal "$status" 75
	assert_output --partial 'queue full'
	float_between "$(elapsed_since "$t0")" 2.9 15
	assert_count new q 1
}

@test "qrecv -w keeps its bound when the wall clock steps back an hour meanwhile (libfaketime)" {
	mkq q
	local t0
	t0=$(now_f)
	clock_step -3600 qrecv -w 3 q
	assert_equal "$status" 1
	float_between "$(elapsed_since "$t0")" 2.9 15
}

@test "qworker: a wall clock stepped an hour ahead times out no job, and one stepped back stretches no timeout (libfaketime)" {
	mkq q
	qsend q slow
	clock_step +3600 qworker -n 1 -t 30s q -- sh -c 'sleep 1.5; cat >/dev/null'
	assert_success
	assert_line --regexp ' q 1 ack [0-9.]+s$'
	qsend q stuck
	local t0
	t0=$(now_f)
	clock_step -3600 qworker -n 1 -t 2s q -- sleep 60
	assert_failure 1
	assert_line --regexp ' q 1 retry:timeout [0-9.]+s$'
	float_between "$(elapsed_since "$t0")" 1.9 15
}

@test "qadmin config set: a queue.conf editor that was stopped holds another 10 s at most (exit 75, file unchanged)" {
	command -v flock >/dev/null || skip "flock(1) is not installed"
	mkq q lease=30s
	hold "$SPOOLQ_DIR/q"
	run timeout 40 qadmin config q set lease=1m
	assert_equal "$status" 75
	assert_equal "$(qadmin config q get lease)" 30s
	unhold
	qadmin -q config q set lease=1m
	assert_equal "$(qadmin config q get lease)" 1m
}

# ------------------------------------------------------- FUSE

# fuse_view: mount a bindfs view of $T/real at $T/view ($MOUNTED): a FUSE
# file system, where a change made beside it, in $T/real, raises no
# inotify event in the view, as one made by another host would not.
fuse_view() {
	command -v bindfs >/dev/null || skip "bindfs is not installed"
	[[ -c /dev/fuse ]] || skip "no /dev/fuse"
	mkdir -p "$T/real" "$T/view"
	bindfs "$T/real" "$T/view" 2>/dev/null || skip "cannot mount FUSE here"
	MOUNTED=$T/view
}

@test "on FUSE (bindfs), messages published beside the mount, as by another host, are claimed within poll_interval by qworker and qrecv -w" {
	fuse_view
	qadmin create "$T/view/q" poll_interval=200ms
	qworker "$T/view/q" -- cat >"$T/wout" 2>"$T/wlog" 3>&- &
	WPID=$!
	wait_for eval '[[ -n $(ls "$T/real/q/run" | grep "^worker\.") ]]'
	sleep 0.5
	qsend "$T/real/q" one
	wait_for -t 5 grep -q " 1 ack " "$T/wlog"
	seq 1 10 | qsend -l "$T/real/q"
	wait_for -t 10 eval '[[ $(grep -c " 1 ack " "$T/wlog") == 11 ]]'
	kill -TERM "$WPID"
	wait_for -t 10 eval '! kill -0 "$WPID" 2>/dev/null'
	qrecv -w 30 "$T/view/q" >"$T/r" &
	local p=$!
	sleep 0.5
	qsend "$T/real/q" two
	wait_for -t 5 eval '! kill -0 "$p" 2>/dev/null'
	wait "$p"
	assert_equal "$(cat "$T/real/q/cur/$(basename "$(cat "$T/r")")")" two
}

@test "on FUSE (bindfs), a qworker with a job running still claims a message published beside the mount within poll_interval" {
	fuse_view
	qadmin create "$T/view/q" poll_interval=200ms
	qworker -j 2 "$T/view/q" -- sh -c 'touch "$0.$SPOOLQ_ID"; while ! [ -e "$0" ]; do sleep 0.05; done' "$T/go" \
	    >"$T/wout" 2>"$T/wlog" 3>&- &
	WPID=$!
	wait_for eval '[[ -n $(ls "$T/real/q/run" | grep "^worker\.") ]]'
	local a b
	a=$(qsend -p "$T/real/q" first)
	wait_for -t 5 test -e "$T/go.$a"
	b=$(qsend -p "$T/real/q" second)
	wait_for -t 5 test -e "$T/go.$b"
	touch "$T/go"
	wait_for -t 10 eval '[[ $(grep -c " 1 ack " "$T/wlog") == 2 ]]'
	kill -TERM "$WPID"
	wait_for -t 10 eval '! kill -0 "$WPID" 2>/dev/null'
}

@test "on FUSE (bindfs), a sender held by overflow = block is admitted within poll_interval of room made beside the mount" {
	fuse_view
	qadmin create "$T/view/q" poll_interval=200ms max_messages=1 overflow=block
	qsend "$T/real/q" one
	qsend "$T/view/q" two 2>"$T/err" &
	local p=$!
	sleep 0.5
	kill -0 "$p"			# held: the queue is full
	qrecv "$T/real/q" | qack -
	wait_for -t 5 eval '! kill -0 "$p" 2>/dev/null'
	wait "$p"
	assert_equal "$(cat "$T/real/q/new/"*)" two
}
