#!/usr/bin/env bats
# Faults: full disk, read-only file system, kill -9 of producers and
# consumers, a damaged claim index.  Nothing is lost, nothing is half-done.

load helpers

setup() {
	spoolq_setup
	MOUNTED=
}

teardown() {
	kill_jobs
	if [[ -n $MOUNTED ]]; then
		umount "$MOUNTED" 2>/dev/null || umount -l "$MOUNTED"
	fi
	spoolq_teardown
}

# small_fs SIZE [OPTIONS]: mount a tmpfs of SIZE (and mount OPTIONS, such
# as nr_inodes=N) as the spool root (root only).
small_fs() {
	(( EUID == 0 )) || skip "mounting a tmpfs needs root"
	mkdir -p "$T/fs"
	mount -t tmpfs -o "size=$1,mode=0755${2:+,$2}" spoolq-test "$T/fs" 2>/dev/null ||
	    skip "cannot mount a tmpfs here"
	MOUNTED=$T/fs
	export SPOOLQ_DIR=$T/fs/spool
}

# send_until_full ARGS...: run `qsend ARGS` until it fails (at most 300
# times); sets $sent to the number of successful sends.  The failing run's
# status and output are left in $status and $output.
send_until_full() {
	local attempt
	sent=0
	for attempt in $(seq 1 300); do
		run qsend "$@"
		refute_crash
		(( status == 0 )) || return 0
		sent=$((sent + 1))
	done
	fail "the file system never filled up"
}

@test "disk full: qsend exits 75, no partial message, tmp/ empty, older messages intact" {
	small_fs 1m
	mkq q
	qsend q keep1
	qsend q keep2
	head -c 65536 /dev/urandom > "$T/chunk"
	send_until_full -f q "$T/chunk"
	assert_equal "$status" 75
	assert_output --regexp '^qsend: '
	(( sent >= 5 )) || fail "only $sent chunks fit in 1 MB"
	assert_count tmp q 0
	assert_count new q $((sent + 2))
	# Every message is whole.
	local d f
	d=$(qdir q)/new
	for f in $(names new q | tail -n +3); do
		cmp "$T/chunk" "$d/$f"
	done
	# Fill the last pages with small messages: now really full.
	send_until_full q x
	assert_equal "$status" 75
	assert_count tmp q 0
	# Claiming and settling still work on a full disk.
	run qrecv -A q
	assert_success
	assert_output keep1
	local r
	r=$(qrecv q)
	[[ $(cat "$r") == keep2 ]]
	qack "$r"
	# With room again, sending works again.
	run qrecv -A --raw -n 3 q
	assert_success
	run qsend q again
	assert_success
}

@test "disk full: a batch keeps what it committed, printed IDs are exactly those in new/" {
	small_fs 8m
	mkq q
	seq -f 'line %g of a batch that will not fit' 1 6000 > "$T/lines"
	run --separate-stderr qsend -p -l q < "$T/lines"
	refute_crash
	assert_failure 75
	local n
	n=$(count new q)
	[[ "$(printf '%s\n' "${lines[@]}" | grep . | sort)" == "$(names new q)" ]] ||
	    fail "printed IDs (${#lines[@]}) differ from new/ ($n)"
	assert_count tmp q 0
	[[ $stderr == *"$n messages sent before the error"* ]] || fail "stderr: $stderr"
	# The committed messages are the first lines, whole and in order.
	if (( n > 0 )); then
		assert_lines_eq "$(head -n "$n" "$T/lines")" "$(bodies new q)"
	fi
}

@test "disk full: a big single message fails cleanly" {
	small_fs 1m
	mkq q
	qsend q keep
	head -c 2000000 /dev/urandom > "$T/big"
	expect_fail 75 qsend q < "$T/big"
	assert_count new q 1
	assert_count tmp q 0
	expect_fail 75 qsend -f q "$T/big"
	assert_count tmp q 0
	run qrecv -A q
	assert_output keep
}

@test "read-only file system: tools fail cleanly, nothing changes" {
	small_fs 1m
	mkq q
	qsend q keep
	mount -o remount,ro "$T/fs" || skip "cannot remount read-only"
	expect_fail '73|74|75|77' qsend q more
	assert_output --regexp '^qsend: '
	expect_fail '73|74|75|77' qrecv q
	assert_output --regexp '^qrecv: '
	assert_count new q 1
	mount -o remount,rw "$T/fs"
	run qrecv -A q
	assert_output keep
}

@test "kill -9 of qsend mid-write: nothing in new/, the queue still works" {
	mkq q
	mkfifo "$T/fifo"
	qsend q < "$T/fifo" 3>&- &
	local pid=$!
	exec 5> "$T/fifo"
	printf abc >&5
	# Give it the time to read the first bytes and start the message.
	wait_until 1 eval '(( $(count tmp q) > 0 ))' || true
	kill -9 "$pid"
	wait "$pid" || true
	exec 5>&-
	assert_count new q 0
	assert_count cur q 0
	expect_fail 1 qrecv q
	qsend q after
	run qrecv -A q
	assert_output after
}

@test "kill -9 of qsend -l mid-batch: only whole messages in new/" {
	mkq q
	mkfifo "$T/fifo"
	qsend -l q < "$T/fifo" 3>&- &
	local pid=$!
	exec 5> "$T/fifo"
	printf 'one\ntwo\nthr' >&5
	wait_until 1 eval '(( $(count tmp q) > 0 ))' || true
	kill -9 "$pid"
	wait "$pid" || true
	exec 5>&-
	local f
	for f in $(names new q); do
		case $(cat "$(qdir q)/new/$f") in
		one | two) ;;
		*) fail "partial message $f: $(cat "$(qdir q)/new/$f")" ;;
		esac
	done
	qsend q after
	run qrecv -A -n 5 q
	assert_success
	assert_line after
	refute_line thr
}

@test "kill -9 of a consumer after its claim: claimable again after the lease" {
	mkq q
	local id r
	id=$(qsend -p q work)
	# A lease far above any scheduling delay, for the "still leased" step.
	setsid bash -c 'qrecv --lease 5s q > "$1.tmp" && mv "$1.tmp" "$1" && exec sleep 30' _ "$T/claimed" 3>&- &
	local pid=$!
	wait_for test -s "$T/claimed"
	kill -9 -- "-$pid"
	wait "$pid" || true
	r=$(cat "$T/claimed")
	[[ $(msgid "$r") == "$id" ]]
	expect_fail 1 qrecv q
	wait_lease_over "$r"
	r=$(qrecv q)
	[[ $(msgid "$r") == "$id" ]]
	[[ $(field "$r" a) == 2 ]]
	[[ $(cat "$r") == work ]]
}

@test "kill -9 of a waiting qrecv: the next message is not lost" {
	mkq q
	qrecv -w 0 q > "$T/out" 3>&- &
	local pid=$!
	# Wait until it waits (an inotify descriptor), or a moment.
	wait_until 2 bash -c "ls -l /proc/$pid/fd 2>/dev/null | grep -q inotify" || true
	kill -9 "$pid"
	wait "$pid" || true
	qsend q msg
	assert_count new q 1
	assert_count cur q 0
	run qrecv -A q
	assert_output msg
}

@test "kill -9 of consumers at random points: every message is delivered at least once" {
	mkq q
	seq 1 200 | qsend -l q
	local c
	local -a pids=()
	for c in 1 2 3; do
		setsid bash -c '
			while r=$(qrecv --lease 1s q); do
				{ cat "$r"; echo; } >> "$1"
				qack "$r"
			done' _ "$T/done.$c" 3>&- &
		pids+=($!)
	done
	sleep 0.3
	for c in "${pids[@]}"; do
		kill -9 -- "-$c" 2>/dev/null || true
		wait "$c" || true
	done
	# Whatever was claimed and not acked comes back after its lease.
	local deadline=$(( $(now) + 3 ))
	wait_for -t 6 past "$deadline"
	run qrecv -A -n 300 q
	refute_crash
	(( status <= 1 )) || fail "drain failed with $status: $output"
	echo "$output" > "$T/done.drain"
	assert_count new q 0
	assert_count cur q 0
	assert_count retry q 0
	assert_count dead q 0
	# awk ends each log with a newline: a consumer may have been killed
	# between writing a body and its newline.
	run bash -c "awk 1 '$T'/done.* | grep . | sort -nu"
	[[ $output == "$(seq 1 200)" ]] ||
	    fail "lost: $(comm -13 <(echo "$output" | sort) <(seq 1 200 | sort) | tr '\n' ' ')"$'\n'"$(cd "$(qdir q)" && find . -type f | sort)"
}

@test "damaged claim index: garbage or empty run/index.HOST does not lose or break claims" {
	mkq q
	seq 1 10 | qsend -l q
	run qrecv -A q
	assert_output 1
	local idx
	idx=$(index_of q)
	[[ -f $idx ]] || fail "no claim index $idx: $(ls "$(qdir q)/run")"
	head -c 8192 /dev/urandom > "$idx"
	run --separate-stderr qrecv -A -n 5 q
	refute_crash
	assert_success
	assert_output "$(seq 2 6)"
	: > "$idx"
	run --separate-stderr qrecv -A -n 20 q
	assert_success
	assert_output "$(seq 7 10)"
	printf 'no-such-message\nanother-one\n' > "$idx"
	seq 11 12 | qsend -l q
	run --separate-stderr qrecv -A -n 20 q
	assert_success
	assert_output "$(seq 11 12)"
	expect_fail 1 qrecv q
}

@test "a stale file in tmp/ (crashed writer) is never delivered" {
	mkq q
	printf 'half a mess' > "$(qdir q)/tmp/1700000000.000000000.99_0_deadbeef.gone"
	qsend q real
	run qrecv -A -n 5 q
	assert_success
	assert_output real
	expect_fail 1 qrecv q
}

@test "running out of descriptors while a queue is opened is reported as that (74), never as no queue (66), in every tool" {
	local n t out rc r r2
	mkq q
	mkq other
	qsend q $(seq 1 40)
	for n in 5 6 7 8 9 10 11 12; do
		r=$(qrecv q)
		r2=$(qrecv q)
		for t in "qsend q x" "qrecv q" "qack $r" "qack --retry $r2" \
		    "qadmin stats q" "qadmin ls q" "qadmin check q" \
		    "qadmin recover q" "qadmin purge other" \
		    "qworker -q --drain -n 1 q -- true"; do
			rc=0
			out=$(low_fds "$n" $t 2>&1 >/dev/null) || rc=$?
			[[ $out != *"not a queue"* && $out != *"no such"* ]] ||
			    fail "ulimit -n $n: $t: $out"
			(( rc != 66 )) || fail "ulimit -n $n: $t: exit 66: $out"
			# qworker counts what it needs before it opens a
			# queue, and refuses to start below that (71).
			if [[ $t == qworker* ]]; then
				[[ $rc == 71 && $out == "qworker: descriptor limit $n is too low for -j 1 (need "* ]] ||
				    fail "ulimit -n $n: $t: exit $rc: $out"
			elif (( rc != 0 && n <= 8 )); then
				[[ $out == *"Too many open files"* ]] ||
				    fail "ulimit -n $n: $t: exit $rc: $out"
			fi
		done
	done
	out=$(low_fds 8 qsend q x 2>&1) && fail "sent with 8 descriptors"
	[[ $out == "qsend: q/"*": Too many open files" ]] || fail "$out"
}

@test "disk full: every way of sending names the queue, not the input, then says what was sent before the error" {
	local way big
	small_fs 256k
	mkq q
	head -c 100000 /dev/zero | tr '\0' a > "$T/big1"
	big=$(cat "$T/big1")
	for way in files stdin lines records args; do
		qadmin purge q >/dev/null
		case $way in
		files)	run --separate-stderr qsend -f q "$T/big1" "$T/big1" "$T/big1" ;;
		stdin)	run --separate-stderr qsend q < <(cat "$T/big1" "$T/big1" "$T/big1") ;;
		lines)	run --separate-stderr qsend -l q < <(printf '%s\n' "$big" "$big" "$big") ;;
		records) run --separate-stderr qsend -0 q < <(printf '%s\0' "$big" "$big" "$big") ;;
		args)	run --separate-stderr qsend q "$big" "$big" "$big" ;;
		esac
		refute_crash
		assert_equal "$status" 75
		[[ $stderr =~ ^qsend:\ q:\ No\ space\ left\ on\ device$'\n'qsend:\ q:\ [0-9]+\ messages?\ sent\ before\ the\ error$ ]] ||
		    fail "$way: stderr: $stderr"
		[[ $stderr != *big1* ]] || fail "$way: blames the input: $stderr"
		assert_count tmp q 0
	done
	# An input that cannot be read is still named as itself.
	run --separate-stderr qsend -f q "$T/big1" "$T/missing"
	assert_equal "$status" 66
	[[ $stderr == "qsend: $T/missing: No such file or directory"$'\n'* ]] || fail "stderr: $stderr"
}

# closed_pipe CMD...: run CMD with its stdout a pipe whose reader closed
# it at once; $status is CMD's exit status, $output its stderr.
closed_pipe() {
	run bash -c 'e=$1; shift; "$@" 2>"$e" | (exec 0<&-; sleep 0.2)
	    exit "${PIPESTATUS[0]}"' _ "$T/err" "$@"
	output=$(<"$T/err")
}

@test "a reader that goes away: every tool that writes stdout says stdout: Broken pipe and exits 74, never dies of SIGPIPE" {
	mkq q
	# More than a pipe holds, so that the reader's going is always met.
	seq 1 20000 > "$T/lines"
	closed_pipe qsend -l -p q < "$T/lines"
	assert_equal "$status" 74
	assert_output 'qsend: stdout: Broken pipe'
	# The messages went all the same; only their IDs are lost.
	assert_count new q 20000
	closed_pipe qadmin ls q
	assert_equal "$status" 74
	assert_output 'qadmin: ls: stdout: Broken pipe'
	closed_pipe qadmin ls --json q
	assert_equal "$status" 74
	mkq big
	head -c 1000000 /dev/zero | qsend big
	closed_pipe qadmin cat big "$(names new big)"
	assert_equal "$status" 74
	assert_output 'qadmin: cat: stdout: Broken pipe'
	closed_pipe qrecv -A big
	assert_equal "$status" 74
	assert_count new big 1
}

# fill_fs: fill the file system of $T/fs: its blocks, then its inodes.
fill_fs() {
	local i
	head -c 100000000 /dev/zero > "$T/fs/fill" 2>/dev/null || true
	for i in $(seq 1 5000); do
		{ : > "$T/fs/inode.$i"; } 2>/dev/null || return 0
	done
	fail "the file system never ran out of inodes"
}

@test "disk full: qworker starts all the same, with an empty lock file or a dead worker's, and says so; with neither it refuses (75)" {
	small_fs 1m nr_inodes=200
	mkq q
	qsend q one two three
	# A first worker makes run/counters and run/index while there is room.
	run timeout 30 qworker -q -n 1 q -- cat
	assert_success
	assert_output one
	local run=$SPOOLQ_DIR/q/run
	echo 'heartbeat=10000 lease=30000 pid=1' > "$run/worker.Deadw0rker00"
	fill_fs
	# No inode for a lock file: the dead worker's is taken over.
	run --separate-stderr timeout 30 qworker -n 1 q -- cat
	assert_success
	assert_output two
	assert_file_not_exists "$run/worker.Deadw0rker00"
	refute [ -e "$run"/worker.* ]
	# Room for a file but not for its record: an empty lock file.
	rm "$T/fs/inode.1"
	head -c 100000000 /dev/zero >> "$T/fs/fill" 2>/dev/null || true
	run --separate-stderr timeout 30 qworker -n 1 q -- sh -c 'cat; echo; stat -c %s "$0"/worker.*' "$run"
	assert_success
	assert_equal "$output" $'three\n0'
	assert_equal "$stderr" "qworker: q: no room in run/ to record this worker's heartbeat and lease (a full disk): others judge its claims by the queue's lease; do not shorten it while the disk is full
qworker: ${stderr##*qworker: }"
	[[ $stderr == *" q 1 ack "* ]] || fail "no ack: $stderr"
	# Neither a file nor a dead worker's: refused, nothing claimed.
	rm -f "$T/fs/fill" "$T"/fs/inode.*
	qsend q four
	fill_fs
	run --separate-stderr timeout 30 qworker -n 1 q -- cat
	assert_failure 75
	assert_equal "$stderr" "qworker: q: worker lock: No space left on device"
	assert_count new q 1
}

# ------------------------------------- settles the file system fails

# need_strace: skip unless strace(1) can inject faults here.
need_strace() {
	command -v strace >/dev/null || skip "strace is not installed"
	strace -f -qq -o /dev/null true 2>/dev/null || skip "strace cannot trace here"
}

# traced INJECT CMD...: run CMD under strace -f -e INJECT (stderr apart).
traced() {
	local inject=$1
	shift
	run --separate-stderr strace -E "$(leakless_env)" -f -qq -o /dev/null -e "$inject" "$@"
	refute_crash
}

@test "qack: an ack, retry, reject or touch the file system fails once (EIO, EBADFD) is made again after one back-off line: settled" {
	need_strace
	mkq q
	qsend q a b c d
	local -a r
	mapfile -t r < <(qrecv -n 4 q)
	traced inject=unlinkat:error=EIO:when=1 qack "${r[0]}"
	assert_success
	assert_equal "$stderr" "qack: ${r[0]}: settle failed 1 time (Input/output error); trying again in $(sed -n 's/.*again in \([0-9]*\) ms$/\1/p' <<<"$stderr") ms"
	assert_file_not_exists "${r[0]}"
	traced inject=renameat2:error=EBADFD:when=1 qack --retry "${r[1]}"
	assert_success
	assert_equal "$(grep -c 'settle failed 1 time (File descriptor in bad state); trying again in [0-9]* ms$' <<<"$stderr")" 1
	assert_equal "$(names retry q | sed 's/,.*//')" "$(msgid "${r[1]}")"
	traced inject=renameat2:error=ESTALE:when=1 qack --reject "${r[2]}"
	assert_success
	assert_equal "$(names dead q)" "$(msgid "${r[2]}"),a=1,r=rejected"
	traced inject=renameat2:error=EINTR:when=1 qack --touch 1h "${r[3]}"
	assert_success
	assert_equal "$(wc -l <<<"$stderr")" 1
	assert_equal "$(names cur q)" "${output##*/}"
	(( $(field "$output" l) > $(field "${r[3]}" l) )) || fail "lease not extended: $output"
	assert_count new q 0
}

@test "qack: a settle the file system keeps failing exits 74 (EIO) or 75 (EAGAIN) after 4 back-offs, the message left claimed under its receipt" {
	need_strace
	mkq q
	qsend q a
	local r
	r=$(qrecv q)
	traced inject=unlinkat:error=EIO qack "$r"
	assert_equal "$status" 74
	assert_equal "$(grep -c "^qack: $r: settle failed [1-4] times\? (Input/output error); trying again in [0-9]* ms$" <<<"$stderr")" 4
	assert_equal "$(tail -n 1 <<<"$stderr")" "qack: $r: settle failed 5 times (Input/output error); left claimed: the receipt holds until its lease ends"
	assert_equal "$(wc -l <<<"$stderr")" 5
	assert_equal "$(names cur q)" "${r##*/}"
	traced inject=renameat2:error=EAGAIN qack --retry "$r"
	assert_equal "$status" 75
	assert_equal "$(names cur q)" "${r##*/}"
	assert_count retry q 0
	assert_count dead q 0
	assert_count new q 0
	# The receipt still holds: settled once the file system is back.
	run qack "$r"
	assert_success
	assert_count cur q 0
}

@test "qack: an ack, retry, reject or touch the file system made but reported failed (EIO) is settled, not a lost lease" {
	mkq q
	qsend q a b c d
	local -a r
	mapfile -t r < <(qrecv -n 4 q)
	made_fail unlinkat:cur qack "${r[0]}"
	assert_success
	assert_equal "$stderr" ""
	assert_file_not_exists "${r[0]}"
	made_fail renameat2:retry qack -v --retry "${r[1]}"
	assert_success
	assert_equal "$stderr" "qack: ${r[1]##*/}: retry/$(names retry q)"
	assert_equal "$(names retry q | sed 's/,.*//')" "$(msgid "${r[1]}")"
	made_fail renameat2:dead qack --reject "${r[2]}"
	assert_success
	assert_equal "$(names dead q)" "$(msgid "${r[2]}"),a=1,r=rejected"
	made_fail renameat2:cur qack --touch 1h "${r[3]}"
	assert_success
	assert_equal "$stderr" ""
	assert_equal "$(names cur q)" "${output##*/}"
	(( $(field "$output" l) > $(field "${r[3]}" l) )) || fail "lease not extended: $output"
	assert_count new q 0
}

@test "qrecv -A: a take or an ack the file system fails once (EIO, ESTALE) is made again: each body shown once, nothing left" {
	need_strace
	mkq q
	qsend q a b
	# The claim is the first rename, the take the second.
	traced inject=renameat2:error=EIO:when=2 qrecv -A q
	assert_success
	assert_output a
	assert_equal "$(grep -c '^qrecv: .*/q/cur/.*: take failed 1 time (Input/output error); trying again in [0-9]* ms$' <<<"$stderr")" 1
	traced inject=unlinkat:error=ESTALE:when=1 qrecv -A q
	assert_success
	assert_output b
	assert_equal "$(grep -c '^qrecv: .*/q/tmp/.*: ack failed 1 time (Stale file handle); trying again in [0-9]* ms$' <<<"$stderr")" 1
	local s
	for s in new cur tmp retry dead; do
		assert_count "$s" q 0
	done
}

@test "qrecv -A: a take or an ack the file system made but reported failed (EIO) counts as made at once: each body shown once, no line, nothing left" {
	mkq q
	qsend q a b
	made_fail renameat2:tmp qrecv -A q
	assert_success
	assert_output a
	assert_equal "$stderr" ""
	made_fail unlinkat:tmp qrecv -A q
	assert_success
	assert_output b
	assert_equal "$stderr" ""
	local s
	for s in new cur tmp retry dead; do
		assert_count "$s" q 0
	done
	run qrecv -A q
	assert_equal "$status" 1
	assert_output ''
}

@test "qrecv -A: a take the file system keeps failing exits 74, shows nothing, and leaves every claim claimed: none lost, none shown twice" {
	need_strace
	mkq q
	qsend q a b
	local ids
	ids=$(names new q)
	# Two claims, then every take and give-back fails.
	traced inject=renameat2:error=EIO:when=3+ qrecv -A -n 2 q
	assert_equal "$status" 74
	assert_output ''
	assert_equal "$(grep -c 'take failed [1-4] times\? (Input/output error); trying again' <<<"$stderr")" 4
	grep -q -- '^qrecv: .*/q/cur/.*: take failed 5 times (Input/output error); not shown$' <<<"$stderr" || fail "stderr: $stderr"
	grep -q -- '^qrecv: .*/q/cur/.*: left claimed until its lease ends$' <<<"$stderr" || fail "stderr: $stderr"
	assert_equal "$(names cur q | sed 's/,.*//')" "$ids"
	assert_count new q 0
	assert_count tmp q 0
}

@test "qrecv -A: an ack the file system keeps failing shows the body once, exits 74, and leaves it taken in tmp/, never shown again" {
	need_strace
	mkq q
	qsend q a
	local id
	id=$(names new q)
	traced inject=unlinkat:error=EIO qrecv -A q
	assert_equal "$status" 74
	assert_output a
	grep -q -- "^qrecv: .*/q/tmp/$id,.*: ack failed 5 times (Input/output error); shown once: qadmin gc removes it$" <<<"$stderr" || fail "stderr: $stderr"
	assert_equal "$(names tmp q | sed 's/,.*//')" "$id"
	assert_count new q 0
	assert_count cur q 0
	run qrecv -A q
	assert_equal "$status" 1
	assert_output ''
}
