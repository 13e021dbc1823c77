#!/usr/bin/env bats
# qworker when things fail around it: a job that cannot start (no
# descriptors, no processes, an unreadable body) never makes it spin;
# changing the lease never steals a live worker's claims; without inotify
# it still notices messages within poll_interval.  Faults come from
# strace(1) fault injection, so each test says which system call fails.

load helpers
load qworker_helpers

setup() { spoolq_setup; }
teardown() { spoolq_teardown; }

need_strace() {
	command -v strace >/dev/null || skip "strace is not installed"
	strace -f -qq -o /dev/null true 2>/dev/null || skip "strace cannot trace here"
	# LeakSanitizer cannot run under ptrace: leaks are checked elsewhere.
	export ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0"
}

# start_traced INJECT ARGS...: as start_worker, under strace -f -e INJECT.
start_traced() {
	local inject=$1
	shift
	strace -E "$(leakless_env)" -f -qq -o /dev/null -e "$inject" qworker "$@" >"$T/wout" \
	    2>"$T/wlog" 3>&- &
	WPID=$!
}

# traced_pid: the pid of the qworker that strace runs as $WPID.
traced_pid() {
	local pid
	wait_for eval 'pid=$(pgrep -o -P "$WPID" -x qworker)'
	echo "$pid"
}

# lines RE FILE: the number of lines of FILE matching the regex RE.
lines() {
	local n
	n=$(grep -cE -- "$1" "$2") || true
	echo "${n:-0}"
}

# logged RE: some line of the worker's log matches RE.
logged() {
	grep -qE -- "$1" "$T/wlog"
}

# ------------------------------------------------------ failed starts

@test "qworker: fork failing (EAGAIN) backs off with one line per back-off, gives every claim back unchanged, --drain ends 75" {
	need_strace
	mkq q
	qsend q a b c
	local before
	before=$(names new q)
	run timeout 60 strace -E "$(leakless_env)" -f -qq -o /dev/null -e inject=vfork,clone,clone3:error=EAGAIN \
	    qworker --drain q -- cat
	assert_equal "$status" 75
	# Six tries (0.1 s doubling), one line each; the last one gives up.
	assert_equal "$(lines 'start: Resource temporarily unavailable; no claims for [0-9]+\.[0-9]{3}s$' <(echo "$output"))" 5
	assert_equal "$(lines 'start: Resource temporarily unavailable; giving up$' <(echo "$output"))" 1
	assert_equal "$(wc -l <<<"$output")" 6
	# Released, not counted: the names in new/ are what they were.
	assert_equal "$(names new q)" "$before"
	assert_count cur q 0
	assert_count retry q 0
	assert_count dead q 0
}

@test "qworker: out of descriptors (EMFILE) backs off while the running job is reaped and acked; SIGTERM stops it" {
	command -v prlimit >/dev/null || skip "prlimit is not installed"
	mkq q
	qsend q first
	start_worker -j 2 q -- \
	    sh -c 'cat >/dev/null; touch "$0.started"; while ! [ -e "$0" ]; do sleep 0.05; done' "$T/go"
	wait_for test -e "$T/go.started"
	# No descriptor left: every open, pipe or directory listing fails.
	prlimit --pid "$WPID" --nofile="$(ls "/proc/$WPID/fd" | wc -l)"
	local second
	second=$(qsend -p q second)
	wait_for logged ': Too many open files; no claims for [0-9]+\.[0-9]{3}s$'
	touch "$T/go"
	wait_for logged ' q 1 ack [0-9.]+s$'
	# Backing off: a few lines in seconds, not thousands.
	sleep 2
	int_between "$(lines 'no claims for' "$T/wlog")" 1 12
	# The second message was never started, and is in new/ uncounted.
	assert_equal "$(names new q)" "$second"
	kill -TERM "$WPID"
	wait_worker 15
	assert_equal "$(names new q)" "$second"
	assert_count cur q 0
}

@test "qworker: SIGTERM during a back-off ends the worker at once; nothing is left claimed" {
	need_strace
	mkq q
	qsend q a
	start_traced inject=vfork,clone,clone3:error=EAGAIN q -- cat
	wait_for logged 'no claims for'
	kill -TERM "$(traced_pid)"
	wait_worker 10
	assert_equal "$wstatus" 0
	assert_count new q 1
	assert_count cur q 0
}

@test "qworker: a body that cannot be opened is a failed attempt: retry:unreadable, then dead/ r=unreadable with a failure record" {
	(( EUID == 0 )) || skip "needs root to drop CAP_DAC_OVERRIDE"
	command -v setpriv >/dev/null || skip "setpriv is not installed"
	mkq q max_attempts=2 retry_delay=0
	local id
	id=$(qsend -p q locked)
	chmod 000 "$SPOOLQ_DIR/q/new/$id"
	qsend q open
	# Without CAP_DAC_OVERRIDE even root cannot open a mode 000 file.
	run timeout 30 setpriv --bounding-set=-dac_override,-dac_read_search \
	    qworker --drain q -- sh -c 'cat >/dev/null'
	assert_equal "$status" 1
	assert_line "qworker: $id q 1 retry:unreadable 0.000s"
	assert_line "qworker: $id q 2 dead:unreadable 0.000s"
	assert_line --regexp "^qworker: [^ ]+ q 1 ack [0-9.]+s$"
	assert_equal "$(names dead q)" "$id,a=2,r=unreadable"
	assert_count new q 0
	assert_count cur q 0
	run cat "$SPOOLQ_DIR/q/attr/$id.failure"
	assert_line "attempt=2"
	assert_line "status=unreadable"
	assert_line "qworker: the body cannot be opened: Permission denied"
}

@test "qworker: an unreadable body whose retry fails (EBADFD) is given back to new/ at once, counted, and ends in dead/" {
	(( EUID == 0 )) || skip "needs root to drop CAP_DAC_OVERRIDE"
	command -v setpriv >/dev/null || skip "setpriv is not installed"
	need_strace
	mkq q max_attempts=2 retry_delay=0
	local id
	id=$(qsend -p q locked)
	chmod 000 "$SPOOLQ_DIR/q/new/$id"
	# renameat2: the lock file, the claim, then the retry: it fails.
	run timeout 30 strace -E "$(leakless_env)" -f -qq -o /dev/null \
	    -e inject=renameat2:error=EBADFD:when=3 \
	    setpriv --bounding-set=-dac_override,-dac_read_search \
	    qworker --drain q -- sh -c 'cat >/dev/null'
	assert_equal "$status" 1
	assert_line "qworker: q: $id: settle failed 1 time (File descriptor in bad state); given back to new/"
	assert_line "qworker: $id q 2 dead:unreadable 0.000s"
	assert_equal "$(names dead q)" "$id,a=2,r=unreadable"
	assert_count cur q 0
}

# ----------------------------------------------------------- liveness

# lock_file QUEUE: the worker lock file of the one worker of QUEUE.
lock_file() {
	local f
	for f in "$(qdir "$1")"/run/worker.*; do
		[[ -e $f ]] && echo "$f" && return 0
	done
	return 1
}

# older_than FILE SECONDS: FILE's mtime is more than SECONDS in the past.
older_than() {
	(( $(date +%s) - $(stat -c %Y "$1") > $2 ))
}

@test "qworker: the lock file records its heartbeat interval and lease in ms, and its pid" {
	mkq q lease=30s
	start_worker q -- cat
	wait_for lock_file q
	wait_for grep -q pid "$(lock_file q)"
	assert_equal "$(cat "$(lock_file q)")" "heartbeat=10000 lease=30000 pid=$WPID"
	kill -TERM "$WPID"
	wait_worker
}

@test "qworker: a lease shortened in queue.conf (no SIGHUP) does not make a live worker's claim recoverable" {
	mkq q lease=30s
	local id
	id=$(qsend -p q job)
	start_worker q -- sh -c 'while ! [ -e "$0" ]; do sleep 0.1; done' "$T/go"
	wait_for eval '[[ $(count cur q) == 1 ]]'
	qadmin config q set lease=2s
	# Its heartbeat (every 10 s) now looks stale by the new lease.
	wait_for -t 15 older_than "$(lock_file q)" 3
	expect_fail 1 qrecv q
	assert_equal "$(msgid "$(only cur q)")" "$id"
	touch "$T/go"
	wait_for grep -q " q 1 ack " "$T/wlog"
	assert_count cur q 0
	assert_count new q 0
	kill -TERM "$WPID"
	wait_worker
}

@test "qworker: SIGHUP with a shorter lease records it before using it; the claim stays the worker's while it beats" {
	mkq q lease=30s
	local id
	id=$(qsend -p q job)
	start_worker q -- sh -c 'while ! [ -e "$0" ]; do sleep 0.1; done' "$T/go"
	wait_for eval '[[ $(count cur q) == 1 ]]'
	qadmin config q set lease=6s
	kill -HUP "$WPID"
	wait_for grep -q "^heartbeat=2000 lease=6000 " "$(lock_file q)"
	# Claims by others over more than one new lease find it alive.
	local i
	for i in 1 2 3 4 5 6 7 8; do
		expect_fail 1 qrecv q
		sleep 1
	done
	assert_equal "$(msgid "$(only cur q)")" "$id"
	touch "$T/go"
	wait_for grep -q " q 1 ack " "$T/wlog"
	kill -TERM "$WPID"
	wait_worker
}

# stopped_claim LEASE [EXIT]: a worker on q (with that lease) claims the
# message it sent, $id, for a job that waits for $T/go and then exits
# EXIT (0); the worker is then stopped.
# job_ended PID: the one child of PID has exited (a zombie, not yet reaped).
job_ended() {
	local c
	c=$(pgrep -P "$1") || return 1
	[[ $(ps -o stat= -p "$c") == Z* ]]
}

stopped_claim() {
	mkq q "lease=$1"
	id=$(qsend -p q job)
	start_worker q -- sh -c 'while ! [ -e "$0" ]; do sleep 0.1; done; exit "$1"' \
	    "$T/go" "${2:-0}"
	wait_for eval '[[ $(count cur q) == 1 ]]'
	kill -STOP "$WPID"
}

@test "qworker: a stopped worker is judged by the lease it recorded, not by a longer one set since" {
	local id
	stopped_claim 2s
	qadmin config q set lease=1h
	wait_for -t 15 eval 'qrecv --lease 1h q > "$T/receipt"'
	assert_equal "$(msgid "$(cat "$T/receipt")")" "$id"
	kill -CONT "$WPID"
	touch "$T/go"
	kill -TERM "$WPID"
	wait_worker
}

@test "qworker: resumed after SIGSTOP, it beats before it claims: its fresh claim is not recovered as hung" {
	mkq q lease=3s
	start_worker q -- sh -c 'while ! [ -e "$0" ]; do sleep 0.1; done' "$T/go"
	wait_for lock_file q
	kill -STOP "$WPID"
	wait_for -t 15 older_than "$(lock_file q)" 4
	local id
	id=$(qsend -p q fresh)
	kill -CONT "$WPID"
	wait_for eval '[[ $(count cur q) == 1 ]]'
	expect_fail 1 qrecv q
	assert_equal "$(msgid "$(only cur q)")" "$id"
	touch "$T/go"
	wait_for grep -q " q 1 ack " "$T/wlog"
	kill -TERM "$WPID"
	wait_worker
}

@test "qworker: a stopped worker's claim is recovered by the first claim after its heartbeat is older than its lease, not at the next maintenance" {
	local id r job
	stopped_claim 6s
	job=$(only cur q)
	[[ $job == *,w=* ]] || fail "not a worker's claim: $job"
	qsend q m1 m2 m3
	# A claim with a fresh index maintains: the worker is alive (its
	# heartbeat made fresh here), so its claim stays; the claims here
	# last an hour, so no lease of theirs makes the next one maintain.
	touch "$(lock_file q)"
	rm -f "$(index_of q)"
	r=$(qrecv --lease 1h q)
	assert_equal "$(cat "$(qdir q)/cur/${r##*/}")" m1
	assert_equal "$(names cur q | grep -c ',w=')" 1
	wait_for -t 15 older_than "$(lock_file q)" 7
	# The index still holds m2 and m3; the next claim takes the worker's
	# claim back first (its ID is older), its attempt counted.
	r=$(qrecv --lease 1h q)
	assert_equal "$(msgid "$r")" "$id"
	assert_equal "$(field "$r" a)" 2
	assert_equal "$(names cur q | grep -c ',w=')" 0
	kill -CONT "$WPID"
	touch "$T/go"
	kill -TERM "$WPID"
	wait_worker
}

# fd_limited SOFT HARD CMD...: run CMD with descriptors 0-2 only and the
# given descriptor limits (in a bash of its own: bats keeps descriptors
# of its own open).
fd_limited() {
	bash -c 'for fd in /proc/$$/fd/*; do
		fd=${fd##*/}
		(( fd <= 2 )) || { eval "exec $fd>&-"; } 2>/dev/null
	done
	ulimit -S -n "$0" && ulimit -H -n "$1" && shift && exec timeout 60 "$@"' "$@"
}

@test "qworker: a descriptor limit too low for one job is refused at start (71), naming the limit and the need" {
	mkq q
	qsend q job
	run fd_limited 16 16 qworker --drain q -- cat
	assert_equal "$status" 71
	assert_output --regexp '^qworker: descriptor limit 16 is too low for -j 1 \(need [0-9]+\)$'
	run fd_limited 40 40 qworker -j 20 --drain q -- cat
	assert_equal "$status" 71
	assert_output --regexp '^qworker: descriptor limit 40 is too low for -j 20 \(need [0-9]+\)$'
	assert_count new q 1
	assert_count cur q 0
}

@test "qworker: at any descriptor limit from 4 to the need, the start is refused with one line, 71, before anything is opened" {
	mkq q
	qsend q job
	local n need
	run fd_limited 64 64 qworker -q --drain q -- cat
	assert_success
	qsend q job
	for n in $(seq 4 64); do
		run fd_limited "$n" "$n" qworker -q --drain q -- cat
		(( status == 0 )) && break
		assert_equal "$status" 71
		assert_output --regexp "^qworker: descriptor limit $n is too low for -j 1 \(need [0-9]+\)\$"
		need=${output##*need }
		need=${need%)}
		(( n < need )) || fail "limit $n refused, need $need"
	done
	# The first limit that is not refused is the need it named.
	assert_equal "$n" "$need"
	assert_count new q 0
	assert_count cur q 0
	assert_equal "$(ls -A "$(qdir q)/run" | grep -c worker)" 0
}

@test "qworker: a low soft descriptor limit is raised to the hard one, and the job runs" {
	mkq q
	qsend q one two
	run fd_limited 16 4096 qworker -q -j 4 --drain q -- cat
	assert_success
	[[ $output == onetwo || $output == twoone ]] || fail "output: $output"
	assert_count new q 0
	assert_count cur q 0
}

# ------------------------------------------------------------ liveness

@test "qworker: stopped in the middle of a claim, it beats before the claim rename once resumed: the claim is not recovered as hung" {
	need_strace
	mkq q lease=4s
	local id pid
	id=$(qsend -p q job)
	# Stopped at the claim index lock (its second flock, after the one
	# of its own lock file); once resumed, held 2.5 s after the claim
	# (at the job's vfork): no later heartbeat can hide a stale one.
	strace -E "$(leakless_env)" -f -qq -o /dev/null \
	    -e inject=flock:signal=SIGSTOP:when=2 \
	    -e inject=vfork:delay_enter=2500000 qworker q -- cat \
	    >"$T/wout" 2>"$T/wlog" 3>&- &
	WPID=$!
	pid=$(traced_pid)
	wait_for eval '[[ $(ps -o stat= -p "$pid") == [Tt]* ]]'
	wait_for -t 15 older_than "$(lock_file q)" 5
	assert_count new q 1
	kill -CONT "$pid"
	wait_for eval '[[ $(count cur q) == 1 ]]'
	# Others find the worker alive: its claim stays its own.
	expect_fail 1 qrecv q
	assert_equal "$(msgid "$(only cur q)")" "$id"
	wait_for -t 15 logged " q 1 ack "
	refute logged " lost"
	kill -TERM "$pid"
	wait_worker
	assert_count cur q 0
	assert_count new q 0
}

@test "qworker: a claim recovered while the worker was stopped settles as lost when its job ends: no failure record, no second settle" {
	local id
	stopped_claim 3s 1
	wait_for -t 15 older_than "$(lock_file q)" 4
	# Another consumer takes the message over and acknowledges it.
	qrecv q >"$T/receipt"
	assert_equal "$(msgid "$(cat "$T/receipt")")" "$id"
	qack "$(cat "$T/receipt")"
	touch "$T/go"
	# The job ends while its worker is stopped: the worker, resumed,
	# finds it ended and must still say it was away first.
	wait_for -t 30 job_ended "$WPID"
	kill -CONT "$WPID"
	wait_for logged "^qworker: q: this worker was stopped for [0-9]+\.[0-9]{3}s, longer than the lease: its claims may have been recovered$"
	wait_for logged "^qworker: q: $id: claim lost \(settled by someone else\)"
	refute logged " retry:"
	assert_file_not_exists "$(qdir q)/attr/$id.failure"
	assert_count new q 0
	assert_count retry q 0
	assert_count cur q 0
	kill -TERM "$WPID"
	wait_worker
}

@test "qworker: a lock file removed under a running worker is made again at its next heartbeat, and its claim stays its own" {
	mkq q lease=3s
	local id lock
	id=$(qsend -p q job)
	start_worker q -- sh -c 'while ! [ -e "$0" ]; do sleep 0.1; done' "$T/go"
	wait_for eval '[[ $(count cur q) == 1 ]]'
	lock=$(lock_file q)
	rm "$lock"
	wait_for -t 5 test -e "$lock"
	wait_for logged "^qworker: q: worker lock lost \(removed, or dropped by the file system\); made again$"
	grep -q "^heartbeat=1000 lease=3000 pid=" "$lock"
	expect_fail 1 qrecv q
	assert_equal "$(msgid "$(only cur q)")" "$id"
	touch "$T/go"
	wait_for logged " q 1 ack "
	kill -TERM "$WPID"
	wait_worker
	assert_file_not_exists "$lock"
}

@test "qworker: a queue renamed away under a running worker, and another made under its name, is the one served from the next heartbeat, said in one line" {
	mkq q lease=3s
	start_worker q -- sh -c 'cat; echo'
	wait_for lock_file q
	mv "$(qdir q)" "$(qdir q).old"
	mkq q lease=3s
	qsend q there
	wait_for logged "^qworker: q: moved or replaced while served; opened again$"
	wait_for grep -qx there "$T/wout"
	# Its lock is in the queue it serves: a worker alive there.
	wait_for lock_file q
	qsend q again
	wait_for grep -qx again "$T/wout"
	kill -TERM "$WPID"
	wait_worker
	assert_equal "$wstatus" 0
	assert_count new q 0
	assert_count cur q 0
	assert_equal "$(grep -c 'opened again' "$T/wlog")" 1
}

@test "qworker: a heartbeat failing with EBADFD (a lock descriptor the file system dropped) makes the lock file again" {
	need_strace
	mkq q lease=3s
	# utimensat: the first records the lock file, the second is a beat.
	start_traced inject=utimensat:error=EBADFD:when=2 q -- cat
	wait_for -t 5 logged "^qworker: q: worker lock lost \(removed, or dropped by the file system\); made again$"
	local id
	id=$(qsend -p q job)
	wait_for logged "^qworker: $id q 1 ack "
	kill -TERM "$(traced_pid)"
	wait_worker
	assert_equal "$(ls "$(qdir q)/run" | grep -c worker)" 0
}

# ------------------------------------------------------------ settling

@test "qworker: an ack failing once with EBADFD (as on GlusterFS) is made again after one back-off line: acked, nothing left claimed" {
	need_strace
	mkq q
	local id
	id=$(qsend -p q one)
	run strace -E "$(leakless_env)" -f -qq -o /dev/null \
	    -e inject=unlinkat:error=EBADFD:when=1 qworker -n 1 q -- true
	assert_success
	assert_line --regexp ' q 1 ack [0-9.]+s$'
	assert_line --regexp "^qworker: q: $id: settle failed 1 time \(File descriptor in bad state\); trying again in [0-9]+ ms$"
	assert_equal "$(grep -c settle <<<"$output")" 1
	assert_count cur q 0
	assert_count new q 0
}

@test "qworker: an ack, retry or dead letter the file system made but reported failed (EIO) is logged as made, not as a lost claim" {
	mkq q
	local id
	id=$(qsend -p q one)
	made_fail unlinkat:cur timeout 30 qworker -n 1 q -- true
	assert_success
	assert_equal "$stderr" "$(grep -E "$(log_re "$id" 1 ack)" <<<"$stderr")"
	assert_empty_queue q
	id=$(qsend -p q two)
	made_fail renameat2:retry timeout 30 qworker -n 1 q -- sh -c 'exit 3'
	assert_equal "$(grep -cE "$(log_re "$id" 1 retry:exit=3)" <<<"$stderr")" 1
	assert_equal "$(grep -c lost <<<"$stderr")" 0
	assert_equal "$(names retry q | sed 's/,.*//')" "$id"
	assert_count cur q 0
	id=$(qsend -p q three)
	made_fail renameat2:dead timeout 30 qworker -n 1 q -- sh -c 'exit 100'
	assert_equal "$(grep -cE "$(log_re "$id" 1 dead:rejected)" <<<"$stderr")" 1
	assert_equal "$(grep -c lost <<<"$stderr")" 0
	assert_equal "$(names dead q)" "$id,a=1,r=rejected"
	assert_count cur q 0
}

@test "qworker: an ack that keeps failing (EBADFD) gives the claim back to new/ at once, its attempt counted and no token left" {
	need_strace
	mkq q lease=1h
	local id
	id=$(qsend -p q one)
	run strace -E "$(leakless_env)" -f -qq -o /dev/null \
	    -e inject=unlinkat:error=EBADFD qworker -n 1 q -- true
	assert_failure 1
	assert_equal "$(grep -cE "^qworker: q: $id: settle failed [1-4] times? \(File descriptor in bad state\); trying again in [0-9]+ ms$" <<<"$output")" 4
	assert_line "qworker: q: $id: settle failed 5 times (File descriptor in bad state); given back to new/"
	assert_count cur q 0
	assert_equal "$(names new q)" "$id,a=1"
}

@test "qworker: a claim that can be neither settled nor given back is recovered by the next claim once its worker exits, ahead of the backlog, not after its lease" {
	need_strace
	mkq q lease=1h
	local id
	id=$(qsend -p q first)
	qsend q second third >/dev/null
	# unlinkat fails (ack, and the removal of the worker's lock file);
	# renameat2 fails from the third on (the first two: its lock file,
	# the claim), so the claim cannot be given back either.
	run strace -E "$(leakless_env)" -f -qq -o /dev/null \
	    -e inject=unlinkat:error=EBADFD \
	    -e inject=renameat2:error=EBADFD:when=3+ qworker -n 1 q -- true
	assert_failure 1
	assert_line "qworker: q: $id: settle failed 5 times (File descriptor in bad state), giving back too (File descriptor in bad state); kept claimed until given back"
	assert_count cur q 1
	run qrecv q
	assert_success
	assert_equal "$(msgid "$output")" "$id"
	assert_equal "$(cat "$output")" "first"
}
