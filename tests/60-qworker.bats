#!/usr/bin/env bats
# qworker: one command per message; the outcome table (ack, retry, dead
# letter), failure records, the job's environment and stdin, timeouts and
# process groups, concurrency, draining, slots, priorities, signals, crash
# recovery through the worker lock, and usage errors.
#
# Jobs are `sh -c SCRIPT ARG0 ARGS...`: qworker runs no shell itself, so the
# script is one argument.  Jobs that may outlive a test write their pid (the
# leader of their process group) to $T/pgids; teardown kills those groups.

load helpers
load qworker_helpers

setup() {
	qworker_setup
	mkq q
}

teardown() {
	if [[ -n $WPID ]]; then
		kill -CONT "$WPID" 2>/dev/null || true
	fi
	kill_pgids
	spoolq_teardown
}

# ------------------------------------------------------------ outcome table

@test "qworker: exit 0 acks: file unlinked, no failure record, log 'ID q 1 ack D.DDDs', exit 0" {
	local id
	id=$(qsend -p q hello)
	work --drain q -- sh -c 'cat > "$0"' "$T/got"
	assert_success
	assert_equal "$(cat "$T/got")" hello
	assert_empty_queue q
	assert_file_not_exists "$(failure "$id")"
	assert_logged "$T/log" "$id" 1 ack
	assert_equal "$(outcome_lines "$T/log")" 1
}

@test "qworker: exit 75 and 111 retry: retry/ID,a=1,t=now+30s (+-20%), failure record, exit 1" {
	local code id name t before after
	for code in 75 111; do
		mkq "q$code"
		id=$(qsend -p "q$code" "body $code")
		before=$(now)
		work --drain "q$code" -- sh -c 'exit "$0"' "$code"
		after=$(now)
		assert_failure 1
		name=$(only retry "q$code")
		assert_equal "$(msgid "$name")" "$id"
		assert_field "$name" a 1
		t=$(field "$name" t) || fail "no t= in $name"
		int_between "$t" $((before + 23)) $((after + 37))
		! field "$name" w >/dev/null || fail "w= left in $name"
		assert_equal "$(cat "$(qdir "q$code")/retry/$name")" "body $code"
		for s in new cur dead; do assert_count $s "q$code" 0; done
		assert_logged "$T/log" "$id" 1 "retry:exit=$code" "q$code"
		assert_file_exists "$(failure "$id" "q$code")"
		grep -qx "status=exit $code" "$(failure "$id" "q$code")" ||
		    fail "no 'status=exit $code' in: $(cat "$(failure "$id" "q$code")")"
	done
}

@test "qworker: exit 100 and 65 dead-letter at once: dead/ID,a=1,r=rejected, exit 1" {
	local code id name
	for code in 100 65; do
		mkq "q$code"
		id=$(qsend -p "q$code" "body $code")
		work --drain "q$code" -- sh -c 'exit "$0"' "$code"
		assert_failure 1
		name=$(only dead "q$code")
		assert_equal "$(msgid "$name")" "$id"
		assert_field "$name" a 1
		assert_field "$name" r rejected
		assert_equal "$(cat "$(qdir "q$code")/dead/$name")" "body $code"
		for s in new cur retry; do assert_count $s "q$code" 0; done
		assert_logged "$T/log" "$id" 1 dead:rejected "q$code"
		grep -qx "status=exit $code" "$(failure "$id" "q$code")" ||
		    fail "no 'status=exit $code' in the failure record"
	done
}

@test "qworker: another exit status (3) and death by a signal (kill -9) retry" {
	local id name
	id=$(qsend -p q three)
	work --drain q -- sh -c 'exit 3'
	assert_failure 1
	name=$(only retry q)
	assert_equal "$(msgid "$name")" "$id"
	assert_field "$name" a 1
	assert_logged "$T/log" "$id" 1 retry:exit=3
	grep -qx 'status=exit 3' "$(failure "$id")"

	mkq s
	id=$(qsend -p s killed)
	work --drain s -- sh -c 'kill -9 $$'
	assert_failure 1
	name=$(only retry s)
	assert_equal "$(msgid "$name")" "$id"
	assert_field "$name" a 1
	assert_logged "$T/log" "$id" 1 retry:signal=9 s
	grep -qx 'status=signal 9' "$(failure "$id" s)" ||
	    fail "no 'status=signal 9' in: $(cat "$(failure "$id" s)")"
}

@test "qworker: a command that cannot be executed is refused at start (69): one line, messages untouched, no lock file" {
	local before
	qsend q one two
	before=$(snapshot "$SPOOLQ_DIR")
	: > "$T/plain"
	mkdir "$T/dir"
	work --drain q -- "$T/no-such-command" arg
	assert_failure 69
	assert_equal "$stderr" "qworker: $T/no-such-command: No such file or directory"
	work --drain q -- no-such-command-anywhere
	assert_failure 69
	assert_equal "$stderr" "qworker: no-such-command-anywhere: No such file or directory"
	work --drain q -- "$T/plain"
	assert_failure 69
	assert_equal "$stderr" "qworker: $T/plain: Permission denied"
	work --drain q -- "$T/dir"
	assert_failure 69
	assert_equal "$stderr" "qworker: $T/dir: Permission denied"
	# Found in PATH as execvp(3) would: a non-executable namesake is skipped.
	mkdir "$T/p1" "$T/p2"
	: > "$T/p1/handler"
	printf '#!/bin/sh\ncat >/dev/null\n' > "$T/p2/handler"
	chmod +x "$T/p2/handler"
	PATH="$T/p1:$T/p2:$PATH" work --drain q -- handler
	assert_success
	assert_count new q 0
	# Nothing was touched by the refused starts.
	qsend q three
	before=$(snapshot "$SPOOLQ_DIR")
	work --drain q -- "$T/no-such-command"
	assert_failure 69
	assert_unchanged "$before"
	assert_equal "$(ls -A "$SPOOLQ_DIR/q/run" | grep -c worker)" 0
}

@test "qworker: a command that vanishes after the start: claims given back uncounted, one line, exit 69" {
	local ids
	printf '#!/bin/sh\ncat >/dev/null\n' > "$T/handler"
	chmod +x "$T/handler"
	start_worker -j 2 q -- "$T/handler"
	wait_for compgen -G "$SPOOLQ_DIR/q/run/worker.*"
	rm "$T/handler"
	ids=$(qsend -p q one two three | sort)
	wait_worker
	assert_equal "$wstatus" 69
	# Each back in new/ under its bare ID: the attempt was not counted.
	assert_equal "$(names new q)" "$ids"
	assert_count cur q 0
	assert_count retry q 0
	assert_count dead q 0
	assert_equal "$(ls -A "$SPOOLQ_DIR/q/attr" | grep -c failure)" 0
	assert_equal "$(grep -c 'No such file or directory' "$T/wlog")" 1
	grep -qx "qworker: $T/handler: No such file or directory" "$T/wlog" ||
	    fail "no exec failure line in: $(cat "$T/wlog")"
	[[ $(outcome_lines "$T/wlog") == $(grep -c ' released ' "$T/wlog") ]] ||
	    fail "an outcome other than released: $(cat "$T/wlog")"
	assert_equal "$(ls -A "$SPOOLQ_DIR/q/run" | grep -c worker)" 0
}

@test "qworker: a script whose #! interpreter cannot be run is refused at start (69), the interpreter named and made visible" {
	local before
	qsend q one two
	before=$(snapshot "$SPOOLQ_DIR")
	# DOS line ends: the interpreter is "/bin/sh\r".
	printf '#!/bin/sh\r\ncat >/dev/null\r\n' > "$T/crlf"
	printf '#! /nonexistent/interp -x\n' > "$T/gone"
	printf '#!/\n' > "$T/dir"
	chmod +x "$T/crlf" "$T/gone" "$T/dir"
	work --drain q -- "$T/crlf"
	assert_failure 69
	assert_equal "$stderr" "qworker: $T/crlf: /bin/sh\\015: bad interpreter: No such file or directory"
	work --drain q -- "$T/gone"
	assert_failure 69
	assert_equal "$stderr" "qworker: $T/gone: /nonexistent/interp: bad interpreter: No such file or directory"
	work --drain q -- "$T/dir"
	assert_failure 69
	assert_equal "$stderr" "qworker: $T/dir: /: bad interpreter: Permission denied"
	assert_unchanged "$before"
	assert_equal "$(ls -A "$SPOOLQ_DIR/q/run" | grep -c worker)" 0
	# A script whose interpreter runs is served.
	printf '#!/bin/sh\ncat >/dev/null\n' > "$T/good"
	chmod +x "$T/good"
	work --drain q -- "$T/good"
	assert_success
	assert_count new q 0
}

@test "qworker: a script whose interpreter vanishes after the start: claims given back uncounted, the interpreter named, exit 69" {
	local ids interp
	interp=$(mktemp -d /tmp/sqi.XXXXXX)
	ln -s /bin/sh "$interp/sh"
	printf '#!%s/sh\ncat >/dev/null\n' "$interp" > "$T/handler"
	chmod +x "$T/handler"
	start_worker q -- "$T/handler"
	wait_for compgen -G "$SPOOLQ_DIR/q/run/worker.*"
	rm -r "$interp"
	ids=$(qsend -p q one two | sort)
	wait_worker
	assert_equal "$wstatus" 69
	assert_equal "$(names new q)" "$ids"
	assert_count dead q 0
	grep -qx "qworker: $T/handler: $interp/sh: bad interpreter: No such file or directory" "$T/wlog" ||
	    fail "no bad interpreter line in: $(cat "$T/wlog")"
}

@test "qworker: a program that itself exits 127 is an ordinary failure, retried" {
	local id
	id=$(qsend -p q x)
	work --drain q -- sh -c 'exit 127'
	assert_failure 1
	assert_equal "$(msgid "$(only retry q)")" "$id"
	assert_logged "$T/log" "$id" 1 retry:exit=127
}

@test "qworker: max_attempts reached: dead/ID,a=2,r=attempts; same SPOOLQ_ID, SPOOLQ_ATTEMPT 1 then 2" {
	local id runs=0 name
	mkq m max_attempts=2 retry_delay=0
	id=$(qsend -p m body)
	: >"$T/all.log"
	while [[ $(count dead m) == 0 ]]; do
		runs=$((runs + 1))
		(( runs <= 3 )) || fail "not dead-lettered after 3 --drain runs"
		work --drain m -- sh -c 'echo "$SPOOLQ_ID $SPOOLQ_ATTEMPT" >> "$0"; exit 3' "$T/seen"
		assert_failure 1
		cat "$T/log" >>"$T/all.log"
		if [[ $(count retry m) != 0 ]]; then
			wait_due_over "$(only retry m)"
		fi
	done
	assert_lines_eq "$id 1"$'\n'"$id 2" "$(cat "$T/seen")"
	name=$(only dead m)
	assert_equal "$(msgid "$name")" "$id"
	assert_field "$name" a 2
	assert_field "$name" r attempts
	for s in new cur retry; do assert_count $s m 0; done
	assert_logged "$T/all.log" "$id" 1 retry:exit=3 m
	assert_logged "$T/all.log" "$id" 2 dead:attempts m
	grep -qx 'attempt=2' "$(failure "$id" m)"
}

@test "qworker: -t 1s timeout: TERM after about 1 s, retry:timeout; with max_attempts=1 dead/ r=timeout" {
	local id name start d
	id=$(qsend -p q slow)
	start=$(now_f)
	work --drain -t 1s q -- sh -c 'echo $$ >> "$0"; exec sleep 30' "$T/pgids"
	# Not before the second; well before the job's own 30 s end even on
	# a loaded machine (the log is shown when it is not).
	(float_between "$(elapsed_since "$start")" 0.9 20) ||
	    fail "log: $(cat "$T/log")"
	assert_failure 1
	name=$(only retry q)
	assert_equal "$(msgid "$name")" "$id"
	assert_field "$name" a 1
	assert_logged "$T/log" "$id" 1 retry:timeout
	d=$(logged_duration "$T/log" "$id" 1)
	float_between "$d" 0.9 20
	grep -qx 'status=timeout' "$(failure "$id")" ||
	    fail "no 'status=timeout' in: $(cat "$(failure "$id")")"

	mkq one max_attempts=1
	id=$(qsend -p one slow)
	work --drain -t 1s one -- sh -c 'echo $$ >> "$0"; exec sleep 30' "$T/pgids"
	assert_failure 1
	name=$(only dead one)
	assert_equal "$(msgid "$name")" "$id"
	assert_field "$name" a 1
	assert_field "$name" r timeout
	for s in new cur retry; do assert_count $s one 0; done
	assert_logged "$T/log" "$id" 1 dead:timeout one
}

@test "qworker: job_timeout in queue.conf applies without -t" {
	local id
	mkq jt job_timeout=1s max_attempts=1
	id=$(qsend -p jt slow)
	local start
	start=$(now_f)
	work --drain jt -- sh -c 'echo $$ >> "$0"; exec sleep 30' "$T/pgids"
	float_between "$(elapsed_since "$start")" 0.9 4.5
	assert_failure 1
	assert_field "$(only dead jt)" r timeout
	assert_logged "$T/log" "$id" 1 dead:timeout jt
}

@test "qworker: a job ignoring TERM is killed with KILL about 5 s after the timeout" {
	local id start
	id=$(qsend -p q stubborn)
	start=$(now_f)
	work --drain -t 1s q -- sh -c 'echo $$ >> "$0"; trap "" TERM; sleep 30' "$T/pgids"
	float_between "$(elapsed_since "$start")" 5.5 10
	assert_failure 1
	assert_equal "$(msgid "$(only retry q)")" "$id"
	assert_logged "$T/log" "$id" 1 retry:timeout
	# The whole group is gone, the ignoring sleep included.
	wait_for -t 2 bash -c '! kill -0 -- "-$(head -n 1 "$0")" 2>/dev/null' "$T/pgids"
}

@test "qworker: timeout kills the job's whole process group (no 'sleep MARK' survives)" {
	local mark=$((3000000 + RANDOM)) id
	id=$(qsend -p q x)
	start_worker --drain -t 1s q -- sh -c 'echo $$ >> "$0"; sleep "$1" & sleep "$1"' "$T/pgids" "$mark"
	wait_for -t 5 bash -c '[ "$(pgrep -cfx "sleep $0")" = 2 ]' "$mark"
	wait_worker 10
	assert_equal "$wstatus" 1
	wait_until 2 bash -c '! pgrep -fx "sleep $0" >/dev/null' "$mark" ||
	    fail "left running after the timeout: $(pgrep -afx "sleep $mark")"
	assert_logged "$T/wlog" "$id" 1 retry:timeout
}

@test "qworker: failure record attr/ID.failure: attempt, status, time, last stderr line; removed on ack" {
	local id before after rec t
	mkq r retry_delay=2s
	id=$(qsend -p r body)
	before=$(now)
	work --drain r -- sh -c 'echo "early line" >&2; echo "the last words" >&2; exit 3'
	after=$(now)
	assert_failure 1
	assert_equal "$(msgid "$(only retry r)")" "$id"
	rec=$(failure "$id" r)
	assert_file_exists "$rec"
	grep -qx 'attempt=1' "$rec" || fail "no attempt=1 in: $(cat "$rec")"
	grep -qx 'status=exit 3' "$rec" || fail "no status=exit 3 in: $(cat "$rec")"
	t=$(sed -n 's/^time=//p' "$rec")
	int_between "$t" "$before" "$after"
	grep -qx 'stderr:' "$rec" || fail "no 'stderr:' line in: $(cat "$rec")"
	grep -qx 'early line' "$rec"
	assert_equal "$(tail -n 1 "$rec")" "the last words"
	# The job's stderr is copied to qworker's, each line after the ID.
	grep -qxF "$id: early line" "$T/log"
	grep -qxF "$id: the last words" "$T/log"
	wait_due_over "$(only retry r)"
	work --drain r -- true
	assert_success
	assert_empty_queue r
	assert_file_not_exists "$rec"
	assert_logged "$T/log" "$id" 2 ack r
}

@test "qworker: the failure record keeps at most 4 KB of a large stderr, ending with its last line" {
	local id rec
	id=$(qsend -p q x)
	work --drain q -- sh -c 'seq -f "noise line %06g" 1 20000 >&2; echo "FINAL LINE" >&2; exit 100'
	assert_failure 1
	assert_field "$(only dead q)" r rejected
	rec=$(failure "$id")
	assert_file_exists "$rec"
	int_between "$(stat -c %s "$rec")" 20 $((4096 + 512))
	assert_equal "$(tail -n 1 "$rec")" "FINAL LINE"
	grep -qx 'status=exit 100' "$rec"
	grep -qx 'noise line 020000' "$rec"
	# All of it went through to qworker's stderr.
	assert_equal "$(grep -c "^$(re_escape "$id"): noise line " "$T/log")" 20000
}

@test "qworker: -q logs no outcome lines (the job's stderr still passes); -v adds a line per claim" {
	local id
	id=$(qsend -p q a)
	work -q --drain q -- sh -c 'echo from-job >&2'
	assert_success
	assert_equal "$stderr" "$id: from-job"
	id=$(qsend -p q b)
	work -v --drain q -- true
	assert_success
	assert_logged "$T/log" "$id" 1 ack
	[[ $(grep -cF "$id" "$T/log") -ge 2 ]] || fail "no claim line with -v: $stderr"
}

# ------------------------------------------------------- environment, stdin

@test "qworker: environment SPOOLQ_ID, SPOOLQ_QUEUE, SPOOLQ_ATTEMPT, SPOOLQ_PATH, SPOOLQ_RECEIPT" {
	local id path
	id=$(qsend -p q 'the body')
	export SPOOLQ_TEST_MARK='kept as is'
	work --drain q -- sh -c 'env > "$0.env"; cat "$SPOOLQ_PATH" > "$0.path"' "$T/job"
	assert_success
	grep -qxF "SPOOLQ_ID=$id" "$T/job.env" || fail "SPOOLQ_ID: $(grep ^SPOOLQ_ "$T/job.env")"
	grep -qx "SPOOLQ_QUEUE=q" "$T/job.env" || fail "SPOOLQ_QUEUE: $(grep ^SPOOLQ_ "$T/job.env")"
	grep -qx "SPOOLQ_ATTEMPT=1" "$T/job.env" || fail "SPOOLQ_ATTEMPT: $(grep ^SPOOLQ_ "$T/job.env")"
	grep -qx "SPOOLQ_TEST_MARK=kept as is" "$T/job.env"
	grep -qxF "SPOOLQ_DIR=$SPOOLQ_DIR" "$T/job.env"
	path=$(sed -n 's/^SPOOLQ_PATH=//p' "$T/job.env")
	[[ $path == "$SPOOLQ_DIR/q/cur/$id,"* ]] || fail "SPOOLQ_PATH=$path"
	assert_field "$path" a 1
	[[ -n $(field "$path" w) ]] || fail "no w= in SPOOLQ_PATH=$path"
	field "$path" l >/dev/null || fail "no l= in SPOOLQ_PATH=$path"
	grep -qxF "SPOOLQ_RECEIPT=$path" "$T/job.env" || fail "SPOOLQ_RECEIPT is not SPOOLQ_PATH"
	assert_equal "$(cat "$T/job.path")" 'the body'
	assert_file_not_exists "$path"
}

@test "qworker: a queue given as a path (and -d ROOT) is SPOOLQ_QUEUE and the log's QUEUE as given" {
	local id
	id=$(qsend -p q x)
	work --drain "$SPOOLQ_DIR/q" -- sh -c 'echo "$SPOOLQ_QUEUE" > "$0"' "$T/queue"
	assert_success
	assert_equal "$(cat "$T/queue")" "$SPOOLQ_DIR/q"
	assert_logged "$T/log" "$id" 1 ack "$SPOOLQ_DIR/q"
	id=$(qsend -p q y)
	# -d wins over $SPOOLQ_DIR.
	export SPOOLQ_DIR=$T/elsewhere
	work -d "$T/spool" --drain q -- sh -c 'echo "$SPOOLQ_QUEUE" > "$0"' "$T/queue"
	export SPOOLQ_DIR=$T/spool
	assert_success
	assert_equal "$(cat "$T/queue")" q
	assert_logged "$T/log" "$id" 1 ack
}

@test "qworker: the body arrives on stdin byte for byte (binary, NULs, 300 KB)" {
	{ printf 'a\0b\nc\r\n\0'; head -c 300000 /dev/urandom; printf '\0'; } >"$T/body"
	qsend -f q "$T/body"
	work --drain q -- sh -c 'cat > "$0"' "$T/got"
	assert_success
	cmp "$T/body" "$T/got"
	assert_empty_queue q
}

@test "qworker: no shell: arguments reach the command literally" {
	qsend q x
	work --drain q -- printf '%s|\n' '$(touch x)' '*' 'a  b' '`touch y`' '' ';exit 3'
	assert_success
	assert_output $'$(touch x)|\n*|\na  b|\n`touch y`|\n|\n;exit 3|'
	assert_file_not_exists "$T/x"
	assert_file_not_exists "$T/y"
}

@test "qworker: the job gets no lock/queue/inotify fds but its job lock, an empty signal mask, the caller's ignored signals" {
	local id base leaked
	# The commands are run directly (not under sh, which blocks signals
	# while it waits for its children).
	run timeout 30 grep -E '^Sig(Blk|Ign)' /proc/self/status
	base=$output
	qsend q x
	work --drain q -- grep -E '^Sig(Blk|Ign)' /proc/self/status
	assert_success
	[[ $output =~ SigBlk:[[:space:]]*0+($'\n'|$) ]] || fail "signals blocked in the job: $output"
	assert_lines_eq "$base" "$output"
	id=$(qsend -p q y)
	work --drain q -- find /proc/self/fd -mindepth 1 -maxdepth 1 -printf '%f %l\n'
	assert_success
	# fd 0 is the message in cur/, fd 4 the job's own lock; nothing else
	# of the spool or qworker's.
	[[ $output =~ (^|$'\n')"0 $SPOOLQ_DIR/q/cur/$id,a=1," ]] ||
	    fail "stdin is not the claimed file: $output"
	[[ $output =~ (^|$'\n')"4 $SPOOLQ_DIR/q/run/job."[A-Za-z0-9]+".$id"($'\n'|$) ]] ||
	    fail "fd 4 is not the job lock: $output"
	leaked=$(grep -vE '^[0-2] |^4 ' <<<"$output" | grep -E "$(re_escape "$SPOOLQ_DIR")|anon_inode|^[0-9]+ socket:" || true)
	[[ -z $leaked ]] || fail "qworker's fds leaked into the job:"$'\n'"$leaked"
}

@test "qworker: a 20 MB body with 'head -c 1' as the command is acked, no hang" {
	mkq big durability=none
	{ printf Z; head -c 20000000 /dev/zero; } >"$T/body"
	local id
	id=$(qsend -p -f big "$T/body")
	run --separate-stderr timeout 30 qworker --drain big -- head -c 1
	refute_crash
	(( status != 124 )) || fail "qworker hung on a 20 MB body"
	assert_success
	assert_output Z
	assert_empty_queue big
	[[ $stderr =~ $(log_re "$id" 1 ack big) ]] || fail "no ack line: $stderr"
}

@test "qworker: a job writing 5 MB to stderr and 5 MB to stdout completes" {
	local id st=0
	id=$(qsend -p q x)
	timeout 60 qworker --drain q -- sh -c 'head -c 5000000 /dev/zero | tr "\0" "#" >&2; head -c 5000000 /dev/zero | tr "\0" "@"; echo end-of-job >&2' \
	    >"$T/out" 2>"$T/log" || st=$?
	(( st != 124 )) || fail "qworker hung on 5 MB of stderr"
	assert_equal "$st" 0
	assert_equal "$(stat -c %s "$T/out")" 5000000
	# All of it was read: one line, its start and the count of the rest.
	assert_equal "$(tr -cd '#' <"$T/log" | wc -c)" 4096
	grep -qxE "$(re_escape "$id"): #{4096}\.\.\.\[qworker: 4995914 more bytes cut\]" "$T/log" ||
	    fail "not one cut line: $(cut -c 1-200 "$T/log")"
	assert_logged "$T/log" "$id" 1 ack
	assert_empty_queue q
}

# ------------------------------------------------------ concurrency, limits

@test "qworker -j 4: each copied stderr line carries its message ID, whole; a last line without newline too; a long line cut" {
	local id ids n
	ids=$(qsend -p q 1 2 3 4)
	work --drain -j 4 q -- sh -c '
	    printf "%s-a " "$SPOOLQ_ID" >&2; sleep 0.2
	    printf "%s-b\n" "$SPOOLQ_ID" >&2
	    if [ "$(cat)" = 4 ]; then head -c 5000 /dev/zero | tr "\0" "L" >&2; echo >&2; fi
	    printf "last %s" "$SPOOLQ_ID" >&2'
	assert_success
	for id in $ids; do
		assert_equal "$(grep -cxF "$id: $id-a $id-b" "$T/log")" 1
		assert_equal "$(grep -cxF "$id: last $id" "$T/log")" 1
	done
	# Every line is an outcome or a job's line after its own ID.
	n=$(grep -cvE "^qworker: |^$ID_RE: " "$T/log") || true
	assert_equal "$n" 0
	id=$(tail -n 1 <<<"$ids")
	assert_equal "$(grep -c "^$(re_escape "$id"): L" "$T/log")" 1
	grep -qxE "$(re_escape "$id"): L{4096}\.\.\.\[qworker: 904 more bytes cut\]" "$T/log" ||
	    fail "the 5000-byte line is not its first 4096 bytes and a mark: $(grep -c L "$T/log") lines"
}

# ------------------------------------------------ what a job writes to the log

# no_raw_bytes FILE: FILE holds no byte but printable ASCII, tab and newline.
no_raw_bytes() {
	local n
	n=$(tr -d '\n\t' <"$1" | LC_ALL=C grep -c '[^[:print:]]') || true
	[[ $n == 0 ]] || fail "raw control or non-ASCII bytes in $1: $(cat -A "$1")"
}

@test "qworker: a job's escape, carriage return, NUL, backspace, backslash and non-ASCII reach the log as \\ooo, never raw, on its one line" {
	local id
	id=$(qsend -p q x)
	work --drain q -- sh -c 'printf "a\033[31mred\033[0m\rcr\000nul\bbs\\\\ \tt\303\251\n" >&2'
	assert_success
	no_raw_bytes "$T/log"
	assert_equal "$(grep -vc '^qworker: ' "$T/log")" 1
	grep -qxF "$id: a\033[31mred\033[0m\015cr\000nul\010bs\134 	t\303\251" "$T/log" ||
	    fail "not the job's line made visible: $(cat -A "$T/log")"
	assert_logged "$T/log" "$id" 1 ack
}

# The job's line of the UTF-8 tests: text, an escape sequence, a byte that
# is never UTF-8, a cut sequence, a C1 control (CSI), a right-to-left
# override, a backslash.
UTF8_JOB='printf "caf\303\251 \344\270\255 \033[31m \377 \303 \302\233 \342\200\256x \\\\ end\n" >&2'

@test "qworker: in a UTF-8 locale a job's printable UTF-8 reaches the log as it is; control bytes, invalid and cut sequences, C1 and bidirectional controls stay \\ooo" {
	[[ $(LC_ALL=C.UTF-8 locale charmap 2>/dev/null) == UTF-8 ]] ||
	    skip "no C.UTF-8 locale here"
	local id
	id=$(qsend -p q x)
	LC_ALL=C.UTF-8 work --drain q -- sh -c "$UTF8_JOB"
	assert_success
	grep -qxF "$id: café 中 \033[31m \377 \303 \302\233 \342\200\256x \134 end" "$T/log" ||
	    fail "not the job's line as UTF-8 shows it: $(cat -A "$T/log")"
	assert_equal "$(LC_ALL=C grep -c $'[\x01-\x08\x0b-\x1f\x7f]' "$T/log")" 0
	assert_logged "$T/log" "$id" 1 ack
	# In the C locale every byte outside ASCII stays \ooo.
	id=$(qsend -p q x)
	LC_ALL=C work --drain q -- sh -c "$UTF8_JOB"
	assert_success
	no_raw_bytes "$T/log"
	grep -qxF "$id: caf\303\251 \344\270\255 \033[31m \377 \303 \302\233 \342\200\256x \134 end" "$T/log" ||
	    fail "not the job's line made visible: $(cat -A "$T/log")"
}

@test "qworker: in a UTF-8 locale every bidirectional control of a job's line stays \\ooo, the Arabic letter mark too" {
	[[ $(LC_ALL=C.UTF-8 locale charmap 2>/dev/null) == UTF-8 ]] ||
	    skip "no C.UTF-8 locale here"
	local id
	id=$(qsend -p q x)
	# U+061C, U+200E, U+202E and U+2066 between letters, and an é kept.
	LC_ALL=C.UTF-8 work --drain q -- sh -c \
	    'printf "a\330\234b \342\200\216c \342\200\256d \342\201\246e \303\251\n" >&2'
	assert_success
	grep -qxF "$id: a\330\234b \342\200\216c \342\200\256d \342\201\246e é" "$T/log" ||
	    fail "a bidirectional control reached the log: $(cat -A "$T/log")"
	assert_logged "$T/log" "$id" 1 ack
}

@test "qworker: a job cannot forge a log line: after a carriage return, a form feed or a newline its text stays on a line of its own ID" {
	local id fake
	id=$(qsend -p q x)
	fake="qworker: 1700000000.000000001.1_0_deadbeef.forged q 1 ack 0.001s"
	work --drain q -- sh -c 'printf "ok\r%s\n" "$0" >&2
	    printf "ok\f%s\v\n" "$0" >&2
	    printf "ok\n%s\n" "$0" >&2
	    printf "%s" "$0" >&2' "$fake"
	assert_success
	no_raw_bytes "$T/log"
	# Split as a terminal, a log reader or a parser of any line ending
	# would: the only outcome line is the real one.
	assert_equal "$(tr '\r\f\v' '\n\n\n' <"$T/log" | grep -c '^qworker: ')" 1
	assert_logged "$T/log" "$id" 1 ack
	grep -qxF "$id: ok\015$fake" "$T/log"
	grep -qxF "$id: ok\014$fake\013" "$T/log"
	assert_equal "$(grep -cxF "$id: $fake" "$T/log")" 2
	assert_equal "$(grep -vc '^qworker: ' "$T/log")" 5
}

@test "qworker: a job's 100 KB line is one log line: its first 4096 bytes, made visible, and a mark of how much was cut" {
	local id
	id=$(qsend -p q x)
	work --drain q -- sh -c 'printf "\033" >&2; head -c 102400 /dev/zero | tr "\0" L >&2
	    printf "\nafter\n" >&2; head -c 102400 /dev/zero >&2'
	assert_success
	no_raw_bytes "$T/log"
	assert_equal "$(wc -l <"$T/log")" 4
	grep -qxE "$(re_escape "$id"): \\\\033L{4095}\.\.\.\[qworker: 98305 more bytes cut\]" "$T/log" ||
	    fail "not the line's start and a mark: $(cut -c 1-200 "$T/log")"
	grep -qxF "$id: after" "$T/log"
	# A last line without a newline, of NULs: cut the same way.
	# (Fixed text: a regular expression repeating a group 4096 times
	# takes grep half a minute to compile.)
	grep -qxF "$id: $(printf '\\000%.0s' {1..4096})...[qworker: 98304 more bytes cut]" "$T/log" ||
	    fail "not the NUL line's start and a mark"
	assert_logged "$T/log" "$id" 1 ack
}

@test "qworker -j 4: never more than 4 jobs at once, and 4 do run together" {
	seq 1 12 | qsend -l q
	mkdir "$T/running"
	local start
	start=$(now_f)
	work --drain -j 4 q -- sh -c 'd=$0; mkdir "$d/$SPOOLQ_ID"; ls "$d" | wc -l >> "$d.n"; sleep 0.5; ls "$d" | wc -l >> "$d.n"; rmdir "$d/$SPOOLQ_ID"' "$T/running"
	assert_success
	float_between "$(elapsed_since "$start")" 1.4 5
	assert_equal "$(wc -l <"$T/running.n")" 24
	assert_equal "$(sort -n "$T/running.n" | tail -n 1)" 4
	assert_empty_queue q
	assert_equal "$(outcome_lines "$T/log")" 12
}

@test "qworker -n 2: stops after 2 messages (FIFO), exit 0, the rest stay in new/" {
	local -a ids
	mapfile -t ids < <(seq 1 5 | qsend -p -l q)
	work -n 2 q -- true
	assert_success
	assert_equal "$(outcome_lines "$T/log")" 2
	assert_logged "$T/log" "${ids[0]}" 1 ack
	assert_logged "$T/log" "${ids[1]}" 1 ack
	assert_count new q 3
	assert_count cur q 0
	assert_equal "$(bodies new q)" $'3\n4\n5'
}

@test "qworker --drain: exits 0 at once on an empty queue" {
	local start
	start=$(now_f)
	work --drain q -- touch "$T/ran"
	assert_success
	# At once, not after waiting: bounds far above scheduling delays.
	float_between "$(elapsed_since "$start")" 0 5
	assert_output ''
	assert_equal "$(outcome_lines "$T/log")" 0
	assert_file_not_exists "$T/ran"
}

@test "qworker --drain: handles what is ready, leaves retry/ messages alone" {
	local r later ready start
	later=$(qsend -p q later)
	r=$(qrecv q)
	qack --retry --delay 1h "$r"
	local before
	before=$(only retry q)
	ready=$(qsend -p q ready)
	start=$(now_f)
	work --drain q -- sh -c 'cat >> "$0"; echo >> "$0"' "$T/ran"
	assert_success
	float_between "$(elapsed_since "$start")" 0 3
	assert_equal "$(cat "$T/ran")" ready
	assert_equal "$(only retry q)" "$before"
	assert_count new q 0
	assert_count cur q 0
	assert_logged "$T/log" "$ready" 1 ack
	assert_equal "$(outcome_lines "$T/log")" 1
}

@test "qworker: exit status 1 when some went to retry or dead letters, with one line per outcome" {
	local -a ids
	mapfile -t ids < <(qsend -p q 0 75 100 0)
	work --drain q -- sh -c 'exit "$(cat)"'
	assert_failure 1
	assert_count new q 0
	assert_count cur q 0
	assert_equal "$(msgid "$(only retry q)")" "${ids[1]}"
	assert_equal "$(msgid "$(only dead q)")" "${ids[2]}"
	assert_logged "$T/log" "${ids[0]}" 1 ack
	assert_logged "$T/log" "${ids[1]}" 1 retry:exit=75
	assert_logged "$T/log" "${ids[2]}" 1 dead:rejected
	assert_logged "$T/log" "${ids[3]}" 1 ack
	assert_equal "$(outcome_lines "$T/log")" 4
}

@test "qworker --slots 1: a second worker exits 75 at once while the first runs; free again after" {
	start_worker --slots 1 q -- true
	qsend q warm-up
	wait_for bash -c '[ -s "$0" ]' "$T/wlog"
	assert_empty_queue q
	local start
	start=$(now_f)
	work --slots 1 --drain q -- true
	assert_failure 75
	float_between "$(elapsed_since "$start")" 0 5
	[[ $stderr =~ ^qworker: ]] || fail "no message on stderr: $stderr"
	# --slots 2: there is a second slot.
	work --slots 2 --drain q -- true
	assert_success
	kill -TERM "$WPID"
	wait_worker 10
	assert_equal "$wstatus" 0
	work --slots 1 --drain q -- true
	assert_success
}

@test "qworker: several queues in strict priority, each claim tries them in the order given" {
	mkq a
	mkq b
	qsend b b1 b2 b3
	qsend a a1 a2
	work --drain -j 1 a b -- sh -c 'read -r m; echo "$SPOOLQ_QUEUE $m" >> "$0"; if [ "$m" = b1 ]; then qsend a urgent; fi' "$T/order"
	assert_success
	assert_lines_eq $'a a1\na a2\nb b1\na urgent\nb b2\nb b3' "$(cat "$T/order")"
	assert_empty_queue a
	assert_empty_queue b
}

@test "qworker -j 8: no zombie children after a burst of 50 fast jobs" {
	start_worker -j 8 q -- sh -c 'exit 0'
	seq 1 50 | qsend -l q
	wait_for -t 20 bash -c '[ "$(grep -c " ack " "$0")" = 50 ]' "$T/wlog"
	assert_empty_queue q
	local k z
	for k in 1 2 3; do
		z=$(ps --ppid "$WPID" -o pid=,stat=,args= | awk '$2 ~ /^Z/' || true)
		[[ -z $z ]] || fail "zombie children of qworker:"$'\n'"$z"
		sleep 0.1
	done
	assert_equal "$(ps --ppid "$WPID" -o pid= | wc -l)" 0
	kill -TERM "$WPID"
	wait_worker 10
	assert_equal "$wstatus" 0
}

@test "qworker: an idle worker starts a job at once when a message arrives" {
	start_worker -n 1 q -- true
	wait_for bash -c 'ls "$0"/run/worker.* >/dev/null 2>&1' "$SPOOLQ_DIR/q"
	sleep 0.3
	local start id
	start=$(now_f)
	id=$(qsend -p q late)
	wait_worker 5
	float_between "$(elapsed_since "$start")" 0 1.5
	assert_equal "$wstatus" 0
	assert_logged "$T/wlog" "$id" 1 ack
}

@test "qworker: a waiting worker runs a retry again when it falls due" {
	mkq rd retry_delay=1s
	start_worker rd -- sh -c 'if [ -e "$0" ]; then exit 0; fi; touch "$0"; exit 75' "$T/flag"
	local id
	id=$(qsend -p rd x)
	wait_for -t 8 bash -c 'grep -q " rd 2 ack " "$0"' "$T/wlog"
	assert_logged "$T/wlog" "$id" 1 retry:exit=75 rd
	assert_logged "$T/wlog" "$id" 2 ack rd
	assert_empty_queue rd
	kill -TERM "$WPID"
	wait_worker 10
	assert_equal "$wstatus" 1
}

# ------------------------------------------------- signals, crash, locking

@test "qworker killed -9 mid-job: claim in cur/ with w=; qrecv claims it again at once; a new qworker too" {
	mkq k lease=1h
	local -a ids
	mapfile -t ids < <(qsend -p k one two)
	start_worker -j 2 k -- sh -c 'echo $$ >> "$0"; exec sleep 30' "$T/pgids"
	wait_for bash -c '[ "$(wc -l < "$0" 2>/dev/null)" = 2 ]' "$T/pgids"
	assert_count cur k 2
	local name w l
	for name in $(names cur k); do
		assert_field "$name" a 1
		w=$(field "$name" w) || fail "no w= in $name"
		[[ -n $w ]] || fail "empty w= in $name"
		assert_file_exists "$SPOOLQ_DIR/k/run/worker.$w"
		l=$(field "$name" l)
		int_between "$l" $(( $(now) + 3500 )) $(( $(now) + 3601 ))
	done
	kill -9 "$WPID"
	wait "$WPID" || true
	WPID=
	local start r
	start=$(now_f)
	# The jobs die with the worker (their parent-death signal), a moment
	# after it: their job locks keep the claims until then.
	run --separate-stderr qrecv -w 10 k
	assert_success
	# At once, not after the 5-minute lease.
	float_between "$(elapsed_since "$start")" 0 5
	r=$output
	assert_equal "$(msgid "$r")" "${ids[0]}"
	assert_field "$r" a 2
	assert_equal "$(cat "$r")" one
	# The other claim is recovered by another qworker as well.
	work --drain k -- true
	assert_success
	assert_logged "$T/log" "${ids[1]}" 2 ack k
	assert_count cur k 1
	assert_count new k 0
}

# The job's shell (the worker's child) dies with the worker; the subshell
# it runs in the foreground (a grandchild) lives on and appends "start 1"
# and, once $T/go exists, "end 1" to $T/f, opened O_APPEND: the order of
# the lines is their order in time.
@test "qworker killed -9: a process its job left running keeps the claim (job lock); the message runs again only once that process has ended" {
	local id
	id=$(qsend -p q first)
	start_worker -n 1 q -- sh -c 'echo $$ >>"$0"
	    (echo "start $SPOOLQ_ATTEMPT" >>"$1"
	     until [ -e "$1.go" ]; do sleep 0.05; done
	     echo "end $SPOOLQ_ATTEMPT" >>"$1"); true' "$T/pgids" "$T/f"
	wait_for grep -qx 'start 1' "$T/f"
	local w
	w=$(field "$(only cur q)" w)
	assert_file_exists "$SPOOLQ_DIR/q/run/job.$w.$id"
	kill -9 "$WPID"
	wait "$WPID" || true
	WPID=
	# The worker's lock is free, its job's is not: no consumer takes it.
	run qrecv q
	assert_failure 1
	run --separate-stderr qadmin -v recover q
	assert_success
	assert_output 'recovered 0, dead-lettered 0, promoted 0'
	assert_equal "$stderr" 'qadmin: recover: q: 1 claim kept by a job lock'
	assert_count cur q 1
	start_worker -n 1 q -- sh -c 'echo "run $SPOOLQ_ATTEMPT" >>"$0"' "$T/f"
	sleep 1		# time enough to claim it, were it free
	assert_equal "$(cat "$T/f")" 'start 1'
	touch "$T/f.go"
	wait_worker 15
	assert_equal "$wstatus" 0
	assert_equal "$(cat "$T/f")" $'start 1\nend 1\nrun 2'
	assert_count cur q 0
	# Both job locks are gone: the first by recovery, the second by its
	# worker.
	run ls "$SPOOLQ_DIR/q/run"
	refute_output --partial job.
}

# The grandchild stops itself (SIGSTOP), in a session of its own, so that
# the kernel does not wake it when its process group is orphaned by the
# kill (SIGHUP and SIGCONT): the lock it holds keeps the claim
# only until the lease recorded in it (3 s) has passed since the worker's
# last beat of it, the lock file's mtime, which nothing changes after the
# kill.
@test "qworker killed -9: a stopped process its job left keeps the claim no longer than the lease past the last beat" {
	mkq s lease=3s
	local id w lock beat at attempt
	id=$(qsend -p s first)
	start_worker -n 1 s -- sh -c 'echo $$ >>"$0"
	    setsid sh -c "echo \$\$ >>\"\$0\"; echo \$\$ >\"\$1\"
	        kill -STOP \$\$" "$0" "$1.pid"; true' "$T/pgids" "$T/g"
	wait_for bash -c '[[ $(ps -o stat= -p "$(cat "$0")") == T* ]]' "$T/g.pid"
	w=$(field "$(only cur s)" w)
	lock=$SPOOLQ_DIR/s/run/job.$w.$id
	assert_file_exists "$lock"
	kill -9 "$WPID"
	wait "$WPID" || true
	WPID=
	work -n 1 s -- sh -c 'echo "$(date +%s.%N) $SPOOLQ_ATTEMPT" >>"$0"' \
	    "$T/f"
	assert_success
	assert_logged "$T/log" "$id" 2 ack s
	read -r at attempt <"$T/f"
	assert_equal "$attempt" 2
	beat=$(stat -c %.3Y "$lock")
	# Not before the lease is over (less a kernel tick of the mtime).
	float_between "$at" "$(awk -v b="$beat" 'BEGIN { printf "%.3f", b + 2.99 }')" \
	    "$(awk -v b="$beat" 'BEGIN { printf "%.3f", b + 60 }')"
	# Still stopped, still holding its lock: the claim came back anyway.
	[[ $(ps -o stat= -p "$(cat "$T/g.pid")") == T* ]] ||
	    fail "the stopped process is gone or running"
	run flock -n -s "$lock" true
	assert_failure 1
	kill -9 "$(cat "$T/g.pid")"
}

# As above, but the job first writes to its job lock's descriptor (fd 4),
# as a stray redirection would: the descriptor is read-only, so the write
# fails, the worker's record stays whole and the file's mtime its last
# beat, and the claim comes back a lease after that beat.
@test "qworker killed -9: a job that writes to its job lock's descriptor spoils no record and keeps the claim no longer than the lease" {
	mkq s lease=3s
	local id w lock beat at attempt
	id=$(qsend -p s first)
	start_worker -n 1 s -- sh -c 'echo $$ >>"$0"
	    if { echo x; echo "heartbeat=1 lease=9999999999999"; } >&4; then
	        echo wrote >"$1.wrote"
	    fi 2>/dev/null
	    setsid sh -c "echo \$\$ >>\"\$0\"; echo \$\$ >\"\$1\"
	        kill -STOP \$\$" "$0" "$1.pid"; true' "$T/pgids" "$T/g"
	wait_for bash -c '[[ $(ps -o stat= -p "$(cat "$0")") == T* ]]' "$T/g.pid"
	assert_file_not_exists "$T/g.wrote"
	w=$(field "$(only cur s)" w)
	lock=$SPOOLQ_DIR/s/run/job.$w.$id
	assert_file_exists "$lock"
	kill -9 "$WPID"
	wait "$WPID" || true
	WPID=
	run cat "$lock"
	assert_output --regexp '^heartbeat=[0-9]+ lease=3000 pid=[0-9]+$'
	work -n 1 s -- sh -c 'echo "$(date +%s.%N) $SPOOLQ_ATTEMPT" >>"$0"' \
	    "$T/f"
	assert_success
	assert_logged "$T/log" "$id" 2 ack s
	read -r at attempt <"$T/f"
	assert_equal "$attempt" 2
	beat=$(stat -c %.3Y "$lock")
	float_between "$at" "$(awk -v b="$beat" 'BEGIN { printf "%.3f", b + 2.99 }')" \
	    "$(awk -v b="$beat" 'BEGIN { printf "%.3f", b + 60 }')"
	[[ $(ps -o stat= -p "$(cat "$T/g.pid")") == T* ]] ||
	    fail "the stopped process is gone or running"
	run flock -n -s "$lock" true
	assert_failure 1
	kill -9 "$(cat "$T/g.pid")"
}

# A record spoilt some other way (here by the owner, through the file's
# name) is judged by the queue's lease from the file's mtime, not read as
# a record being rewritten (alive for good).
@test "qworker killed -9: a job lock whose record no longer parses keeps the claim no longer than the queue's lease" {
	mkq s lease=3s
	local id w lock beat at attempt
	id=$(qsend -p s first)
	start_worker -n 1 s -- sh -c 'echo $$ >>"$0"
	    setsid sh -c "echo \$\$ >>\"\$0\"; echo \$\$ >\"\$1\"
	        kill -STOP \$\$" "$0" "$1.pid"; true' "$T/pgids" "$T/g"
	wait_for bash -c '[[ $(ps -o stat= -p "$(cat "$0")") == T* ]]' "$T/g.pid"
	w=$(field "$(only cur s)" w)
	lock=$SPOOLQ_DIR/s/run/job.$w.$id
	assert_file_exists "$lock"
	kill -9 "$WPID"
	wait "$WPID" || true
	WPID=
	printf 'x\nheartbeat=1 lease=999999' >"$lock"
	work -n 1 s -- sh -c 'echo "$(date +%s.%N) $SPOOLQ_ATTEMPT" >>"$0"' \
	    "$T/f"
	assert_success
	assert_logged "$T/log" "$id" 2 ack s
	read -r at attempt <"$T/f"
	assert_equal "$attempt" 2
	beat=$(stat -c %.3Y "$lock")
	float_between "$at" "$(awk -v b="$beat" 'BEGIN { printf "%.3f", b + 2.99 }')" \
	    "$(awk -v b="$beat" 'BEGIN { printf "%.3f", b + 60 }')"
	run flock -n -s "$lock" true
	assert_failure 1
	kill -9 "$(cat "$T/g.pid")"
}

@test "qworker SIGTERM: --grace 1s, a 30 s job is killed, its message back in new/ uncounted, exit 1" {
	local -a ids
	mapfile -t ids < <(qsend -p q first second)
	start_worker --grace 1s q -- sh -c 'echo $$ >> "$0"; exec sleep 30' "$T/pgids"
	wait_for bash -c '[ -s "$0" ]' "$T/pgids"
	assert_count cur q 1
	local start pg name a
	pg=$(head -n 1 "$T/pgids")
	start=$(now_f)
	kill -TERM "$WPID"
	wait_worker 8
	float_between "$(elapsed_since "$start")" 0.8 4
	assert_equal "$wstatus" 1
	assert_count cur q 0
	assert_count new q 2
	name=$(names new q | head -n 1)
	assert_equal "$(msgid "$name")" "${ids[0]}"
	a=$(field "$name" a || echo 0)
	[[ $a == 0 ]] || fail "attempt counted for a released message: $name"
	assert_logged "$T/wlog" "${ids[0]}" 1 released
	wait_until 2 bash -c '! kill -0 -- "-$0" 2>/dev/null' "$pg" ||
	    fail "the job's process group survived qworker"
	assert_equal "$(bodies new q)" $'first\nsecond'
}

@test "qworker SIGTERM: a job ending within the grace is acked; nothing more is claimed; exit 0" {
	local -a ids
	mapfile -t ids < <(qsend -p q first second)
	start_worker --grace 10s q -- sh -c 'echo $$ >> "$0"; sleep 1' "$T/pgids"
	wait_for bash -c '[ -s "$0" ]' "$T/pgids"
	kill -TERM "$WPID"
	wait_worker 8
	assert_equal "$wstatus" 0
	assert_logged "$T/wlog" "${ids[0]}" 1 ack
	assert_equal "$(outcome_lines "$T/wlog")" 1
	assert_count cur q 0
	assert_equal "$(msgid "$(only new q)")" "${ids[1]}"
	assert_equal "$(wc -l <"$T/pgids")" 1
}

@test "qworker: a second SIGTERM ends the grace at once and releases the message" {
	local id
	id=$(qsend -p q x)
	start_worker --grace 30s q -- sh -c 'echo $$ >> "$0"; exec sleep 30' "$T/pgids"
	wait_for bash -c '[ -s "$0" ]' "$T/pgids"
	kill -TERM "$WPID"
	sleep 0.3
	local start
	start=$(now_f)
	kill -TERM "$WPID"
	wait_worker 5
	# At once, not after the 30 s grace.
	float_between "$(elapsed_since "$start")" 0 8
	assert_equal "$wstatus" 1
	assert_count cur q 0
	assert_equal "$(msgid "$(only new q)")" "$id"
	assert_logged "$T/wlog" "$id" 1 released
}

@test "qworker: SIGHUP reloads queue.conf (max_attempts 5 -> 1) and the worker lives on" {
	mkq h max_attempts=5 retry_delay=1h
	start_worker h -- sh -c 'exit 3'
	local id1 id2
	id1=$(qsend -p h one)
	wait_for bash -c 'grep -q " h 1 retry:exit=3 " "$0"' "$T/wlog"
	sed -i 's/^max_attempts *=.*/max_attempts = 1/' "$SPOOLQ_DIR/h/queue.conf"
	kill -HUP "$WPID"
	sleep 0.5
	! exited "$WPID" || fail "qworker died of SIGHUP"
	id2=$(qsend -p h two)
	wait_for bash -c 'grep -q " h 1 dead:attempts " "$0"' "$T/wlog"
	assert_logged "$T/wlog" "$id2" 1 dead:attempts h
	assert_equal "$(msgid "$(only dead h)")" "$id2"
	assert_equal "$(msgid "$(only retry h)")" "$id1"
	kill -TERM "$WPID"
	wait_worker 10
	assert_equal "$wstatus" 1
}

@test "qworker: a bad queue.conf value is echoed made visible, on SIGHUP and at start" {
	mkq h
	qsend h x
	start_worker h -- cat
	wait_for grep -q " h 1 ack " "$T/wlog"
	printf '[queue]\nlease = 5\033[2J\033[H\a\n' > "$SPOOLQ_DIR/h/queue.conf"
	kill -HUP "$WPID"
	wait_for grep -q 'keeping the old settings' "$T/wlog"
	kill -TERM "$WPID"
	wait_worker 10
	no_raw_bytes "$T/wlog"
	grep -qxF "qworker: $SPOOLQ_DIR/h/queue.conf:2: lease: 5\033[2J\033[H\007: not a duration (like 500ms, 30s, 5m, 2h, 4d) (keeping the old settings)" "$T/wlog" ||
	    fail "not the error made visible: $(cat -A "$T/wlog")"
	run --separate-stderr timeout 20 qworker --drain h -- cat
	assert_failure 78
	assert_equal "$stderr" "qworker: $SPOOLQ_DIR/h/queue.conf:2: lease: 5\033[2J\033[H\007: not a duration (like 500ms, 30s, 5m, 2h, 4d)"
}

@test "qworker: a live worker's claim is not recovered when its lease (1s) passes" {
	mkq hb lease=1s
	local id
	id=$(qsend -p hb x)
	start_worker hb -- sh -c 'echo $$ >> "$0"; sleep 6' "$T/pgids"
	wait_for bash -c '[ -s "$0" ]' "$T/pgids"
	local name
	name=$(only cur hb)
	wait_lease_over "$name"
	sleep 0.5
	expect_fail 1 qrecv hb
	assert_count cur hb 1
	assert_equal "$(msgid "$(only cur hb)")" "$id"
	wait_for -t 8 bash -c 'grep -q " hb 1 ack " "$0"' "$T/wlog"
	assert_logged "$T/wlog" "$id" 1 ack hb
	assert_empty_queue hb
	kill -TERM "$WPID"
	wait_worker 10
	assert_equal "$wstatus" 0
}

@test "qworker: a stopped worker's claim is recovered once its heartbeat is older than the lease; its late ack changes nothing" {
	mkq st lease=1s
	local id
	id=$(qsend -p st body)
	start_worker st -- sh -c 'echo $$ >> "$0"; sleep 3' "$T/pgids"
	wait_for bash -c '[ -s "$0" ]' "$T/pgids"
	kill -STOP "$WPID"
	wait_for -t 8 bash -c 'qrecv --lease 1h st > "$0"' "$T/receipt"
	local r
	r=$(cat "$T/receipt")
	assert_equal "$(msgid "$r")" "$id"
	assert_field "$r" a 2
	kill -CONT "$WPID"
	# The job ends (sleep 3); the worker must not settle the lost claim.
	wait_for -t 8 bash -c '! [ -d "/proc/$(head -n 1 "$0")" ]' "$T/pgids"
	sleep 1
	assert_file_exists "$r"
	assert_equal "$(cat "$r")" body
	assert_count cur st 1
	assert_count new st 0
	assert_count dead st 0
	assert_count retry st 0
	kill -TERM "$WPID"
	wait_worker 10
}

# ------------------------------------------------------------- job output

# status_of DIR ID KEY: a value of DIR/ID.status.
status_of() {
	sed -n "s/^$3=//p" "$1/$2.status"
}

@test "qworker --output DIR: ID.out, ID.err and ID.status per message; nothing on qworker's stdout; no job lines on its stderr" {
	local ok bad out=$T/out
	ok=$(qsend -p q ok)
	bad=$(qsend -p q bad)
	work --drain --output "$out" q -- sh -c '
	    body=$(cat); echo "out of $body"; echo "err of $body" >&2
	    printf "no newline"; [ "$body" = ok ] || exit 3'
	assert_failure 1
	assert_output ''
	assert_equal "$(grep -cv '^qworker: ' "$T/log")" 0
	assert_dir_exists "$out"
	assert_equal "$(cat "$out/$ok.out")" "out of ok
no newline"
	assert_equal "$(cat "$out/$ok.err")" "err of ok"
	assert_equal "$(cat "$out/$bad.err")" "err of bad"
	assert_equal "$(status_of "$out" "$ok" id)" "$ok"
	assert_equal "$(status_of "$out" "$ok" queue)" q
	assert_equal "$(status_of "$out" "$ok" attempt)" 1
	assert_equal "$(status_of "$out" "$ok" status)" "exit 0"
	assert_equal "$(status_of "$out" "$ok" outcome)" ack
	assert_equal "$(status_of "$out" "$ok" stdout)" 20
	assert_equal "$(status_of "$out" "$ok" stderr)" 10
	assert_equal "$(status_of "$out" "$bad" status)" "exit 3"
	assert_equal "$(status_of "$out" "$bad" outcome)" retry:exit=3
	[[ $(status_of "$out" "$ok" end) =~ ^[0-9]{10}\.[0-9]{3}$ ]] ||
	    fail "end= is not seconds.milliseconds: $(cat "$out/$ok.status")"
	# Nothing else: no dot files of the jobs left behind.
	assert_equal "$(cd "$out" && ls -A | grep -v '^\.gc$' | sort)" "$(printf '%s\n' \
	    "$ok.err" "$ok.out" "$ok.status" "$bad.err" "$bad.out" "$bad.status" | sort)"
	# The failure record, and so qadmin cat --meta, says where it is.
	run qadmin cat --meta q "$bad"
	assert_success
	assert_line "stdout_file=$out/$bad.out"
	assert_line "stderr_file=$out/$bad.err"
	assert_line "status=exit 3"
	assert_line "err of bad"
}

@test "qworker --output: a relative DIR is named absolutely in the failure record; a later attempt replaces the files" {
	local id
	mkq r retry_delay=3s retry_max_delay=3s
	id=$(qsend -p r x)
	work --drain --output out r -- sh -c 'echo "try $SPOOLQ_ATTEMPT"; [ "$SPOOLQ_ATTEMPT" = 2 ] || exit 75'
	assert_failure 1
	assert_equal "$(cat "$T/out/$id.out")" "try 1"
	grep -qxF "stdout_file=$T/out/$id.out" "$SPOOLQ_DIR/r/attr/$id.failure"
	wait_due_over "$(only retry r)"
	work --drain --output out r -- sh -c 'echo "try $SPOOLQ_ATTEMPT"; [ "$SPOOLQ_ATTEMPT" = 2 ] || exit 75'
	assert_success
	assert_equal "$(cat "$T/out/$id.out")" "try 2"
	assert_equal "$(status_of "$T/out" "$id" attempt)" 2
	assert_equal "$(status_of "$T/out" "$id" outcome)" ack
	assert_equal "$(ls -A "$T/out" | grep -c .)" 4	# .gc and three files
}

@test "qworker --output-max: each stream is cut at the cap and the rest dropped with a marker line" {
	local id out=$T/out
	id=$(qsend -p q x)
	work --drain --output "$out" --output-max 1k q -- sh -c '
	    head -c 5000 /dev/zero | tr "\0" o; head -c 3000 /dev/zero | tr "\0" e >&2
	    echo "last words" >&2'
	assert_success
	assert_equal "$(head -c 1024 "$out/$id.out" | tr -d o | wc -c)" 0
	assert_equal "$(tail -n 1 "$out/$id.out")" "[qworker: 3976 more bytes dropped: over --output-max 1024]"
	assert_equal "$(wc -l <"$out/$id.out")" 2
	assert_equal "$(head -n 1 "$out/$id.out" | wc -c)" 1025
	assert_equal "$(tail -n 1 "$out/$id.err")" "[qworker: 1987 more bytes dropped: over --output-max 1024]"
	assert_equal "$(status_of "$out" "$id" stdout)" 5000
	assert_equal "$(status_of "$out" "$id" stderr)" 3011
	# The failure record still gets the true end of stderr.
	qsend q y
	work --drain --output "$out" --output-max 0 q -- sh -c 'echo kept; echo "the end" >&2; exit 3'
	assert_failure 1
	assert_equal "$(tail -n 1 "$SPOOLQ_DIR/q/attr/$(msgid "$(only retry q)").failure")" "the end"
}

@test "qworker --output: symbolic links are never followed: the directory itself is refused, a planted file name is replaced" {
	local id out=$T/out
	mkdir "$T/real"
	ln -s "$T/real" "$T/link"
	qsend q x
	work --drain --output "$T/link" q -- true
	assert_failure 73
	assert_equal "$stderr" "qworker: $T/link: a symbolic link; give the directory itself"
	assert_count new q 1
	assert_equal "$(ls -A "$SPOOLQ_DIR/q/run" | grep -c worker)" 0
	id=$(msgid "$(only new q)")
	mkdir "$out"
	echo precious > "$T/victim"
	ln -s "$T/victim" "$out/$id.out"
	ln -s "$T/victim" "$out/$id.status"
	work --drain --output "$out" q -- echo new
	assert_success
	assert_equal "$(cat "$T/victim")" precious
	[[ -f $out/$id.out && ! -L $out/$id.out ]] || fail "$out/$id.out is still a link"
	assert_equal "$(cat "$out/$id.out")" new
	# A parent that is missing is an error, and nothing is made.
	work --drain --output "$T/no/such/dir" q -- true
	assert_failure 66
}

@test "qworker --output: in a set-group-ID group-writable parent the directory and its files are the group's, whatever the umask; a FIFO planted as a file name never blocks" {
	local id out=$T/shared/out
	getent group nogroup >/dev/null || skip "no group nogroup"
	mkdir -m 2775 "$T/shared"
	chgrp nogroup "$T/shared"
	qsend q x
	id=$(msgid "$(only new q)")
	umask 077
	work --drain --output "$out/" q -- sh -c 'cat; echo e >&2'
	umask 022
	assert_success
	assert_equal "$(stat -c '%a %G' "$out")" '2770 nogroup'
	for f in "$out/$id.out" "$out/$id.err" "$out/$id.status"; do
		assert_equal "$(stat -c '%a %G' "$f")" '660 nogroup'
	done
	# A FIFO where the status file goes: replaced, never opened.
	qsend q y
	id=$(msgid "$(only new q)")
	rm "$out/.gc"
	mkfifo "$out/$id.status" "$out/.gc"
	run timeout 20 qworker -q --drain --output-age 1s --output "$out" q -- cat
	assert_success
	[[ -f $out/$id.status ]] || fail "$out/$id.status is not a regular file"
	run timeout 20 qadmin cat --meta --output "$out" q "$id"
	assert_success
	assert_line 'state: gone'
}

@test "qworker --output-age: output older than the age goes at start, at most once an hour; other files stay" {
	local out=$T/out id
	mkdir "$out"
	for f in A.out A.err A.status .A.tok.out; do : >"$out/$f"; touch -d '8 days ago' "$out/$f"; done
	: >"$out/B.out"; touch -d '6 days ago' "$out/B.out"
	: >"$out/notes.txt"; touch -d '30 days ago' "$out/notes.txt"
	work --drain --output "$out" q -- true
	assert_success
	assert_equal "$(cd "$out" && ls -A | sort | tr '\n' ' ')" ".gc B.out notes.txt "
	# Within the hour of the last collection, nothing is looked at.
	id=$(qsend -p q x)
	work --drain --output "$out" --output-age 1d q -- true
	assert_success
	assert_file_exists "$out/B.out"
	touch -d '2 hours ago' "$out/.gc"
	work --drain --output "$out" --output-age 1d q -- true
	assert_success
	assert_file_not_exists "$out/B.out"
	assert_file_exists "$out/$id.out"
	assert_file_exists "$out/notes.txt"
	# --output-age 0 keeps everything.
	touch -d '2 hours ago' "$out/.gc" "$out/$id.out"
	work --drain --output "$out" --output-age 0 q -- true
	assert_file_exists "$out/$id.out"
}

@test "qadmin cat --meta --output DIR: the last job's status and files, also once the message is acked and gone" {
	local ok bad out=$T/out
	ok=$(qsend -p q ok)
	bad=$(qsend -p q bad)
	work --drain --output out q -- sh -c '[ "$(cat)" = ok ] || exit 3'
	assert_failure 1
	run --separate-stderr qadmin cat --meta --output out q "$ok"
	assert_success
	assert_equal "$(head -n 3 <<<"$output")" "state: gone
id: $ok
output:"
	assert_line "id=$ok"
	assert_line "status=exit 0"
	assert_line "outcome=ack"
	assert_line "stdout_file=$out/$ok.out"
	assert_line "stderr_file=$out/$ok.err"
	run --separate-stderr qadmin cat --meta --output "$out" q "$bad"
	assert_success
	assert_line "state: retry"
	assert_line "outcome=retry:exit=3"
	# Its status comes before the failure record.
	[[ $output == *$'output:\n'*$'failure:\n'* ]] || fail "no output: before failure: in $output"
	# Gone without output, or no such directory: errors.
	expect_fail 66 qadmin cat --meta --output "$out" q 1796000000.000000000.1_0_00000000.nohost
	assert_output --partial 'no such message'
	expect_fail 66 qadmin cat --meta --output "$T/nodir" q "$bad"
	expect_fail 64 qadmin cat --output "$out" q "$bad"
	assert_output --partial 'qadmin: cat: --output: only with --meta'
}

@test "qworker: --output-max and --output-age need --output; bad values are usage errors" {
	expect_fail 64 qworker --drain --output-max 1M q -- true
	assert_output --partial 'qworker: --output-max: only with --output'
	expect_fail 64 qworker --drain --output-age 1d q -- true
	expect_fail 64 qworker --drain --output "$T/o" --output-max lots q -- true
	assert_output --partial 'not a size'
	expect_fail 64 qworker --drain --output "$T/o" --output-age soon q -- true
	assert_dir_not_exists "$T/o"
}

# ------------------------------------------------------------------- usage

@test "qworker: usage errors exit 64 with the synopsis; a missing queue 66; a bad queue.conf 78" {
	qsend q keep
	expect_fail 64 qworker q true
	assert_usage qworker
	assert_output --partial 'usage: qworker [-qv] [-d root] [-j jobs] [-n count] [-t duration] [--drain]'
	assert_output --partial '[--grace duration] [--slots count] [--output dir [--output-max size]'
	assert_output --partial '[--output-age duration]] [--batch count [--batch-wait duration]]'
	assert_output --partial '[--rate count/interval] queue ... -- command [arg ...]'
	expect_fail 64 qworker q --
	assert_usage qworker
	expect_fail 64 qworker --bogus q -- true
	assert_usage qworker
	expect_fail 64 qworker -- true
	assert_usage qworker
	expect_fail 64 qworker
	assert_usage qworker
	local bad
	for bad in '-j 0' '-j x' '-j 1025' '-n x' '-t soon' '--grace 5parsecs' '--slots 0'; do
		# shellcheck disable=SC2086
		expect_fail '64|65' qworker $bad --drain q -- true
	done
	expect_fail 66 qworker --drain nope -- true
	assert_output --partial 'qworker: nope: no such queue'
	# With no queue it can serve (a good one is served, the others
	# tried again: see below).
	expect_fail 66 qworker --drain nope nope2 -- true
	assert_dir_not_exists "$SPOOLQ_DIR/nope"
	assert_equal "$(bodies new q)" keep
	echo 'bogus_key = 1' >>"$SPOOLQ_DIR/q/queue.conf"
	expect_fail 78 qworker --drain q -- true
	assert_output --partial 'queue.conf'
	assert_count new q 1
	run --separate-stderr qworker --help
	assert_success
	assert_usage qworker
	run --separate-stderr qworker --version
	assert_success
	assert_output --regexp '^qworker \(spoolq\) [0-9]'
}

@test "qworker: a start that fails (66, 75, 78, 69: no queue can be served) leaves no run/worker.* file in any queue" {
	mkq r
	qsend q keep
	expect_fail 66 qworker --drain nope nope2 -- true
	echo 'bogus_key = 1' >"$T/bad.conf"
	mkq s
	cp "$T/bad.conf" "$SPOOLQ_DIR/s/queue.conf"
	expect_fail 78 qworker --drain s nope -- true
	expect_fail 69 qworker --drain q r -- "$T/no-such-command"
	mkdir -p "$SPOOLQ_DIR/r/run"
	flock -x "$SPOOLQ_DIR/r/run/slot.0" -c "
	    qworker --drain --slots 1 q r -- true; echo \$? > '$T/slotrc'"
	assert_equal "$(cat "$T/slotrc")" 75
	local d
	for d in q r s; do
		assert_equal "$(ls -A "$SPOOLQ_DIR/$d/run" 2>/dev/null | grep -c worker)" 0
	done
	assert_equal "$(bodies new q)" keep
}

@test "qworker: a queue named twice is a usage error and leaves no lock behind" {
	run qworker q q -- true
	assert_failure 64
	assert_output --partial 'q: queue named twice'
	[ -z "$(ls "$SPOOLQ_DIR/q/run" 2>/dev/null | grep worker)" ]
}

@test "qworker q1 q2 q3: broken queues (a bad queue.conf, a missing state directory) are named and tried again with back-off while the others are served; mended, they are served; none servable is an error" {
	mkq a
	mkq b
	mkq c
	printf '[queue]\nlease = forever\n' > "$(qdir b)/queue.conf"
	rmdir "$(qdir c)/cur"
	qsend a x1
	start_worker -v a b c -- sh -c 'cat; echo'
	wait_for grep -qx x1 "$T/wout"
	wait_for grep -q '^qworker: c/cur: No such file or directory; not served, trying again in [0-9.]*s$' "$T/wlog"
	grep -q "^qworker: $(qdir b)/queue.conf:2: lease: forever: not a duration .*; not served, trying again in [0-9.]*s\$" "$T/wlog" ||
	    fail "b not named: $(cat "$T/wlog")"
	# Mended: served from then on.
	qadmin config b set lease=30s >/dev/null
	mkdir "$(qdir c)/cur"
	qsend b y1
	qsend c z1
	wait_for grep -qx y1 "$T/wout"
	wait_for grep -qx z1 "$T/wout"
	grep -qx 'qworker: b: can be read now; served' "$T/wlog" || fail "$(cat "$T/wlog")"
	grep -qx 'qworker: c: can be read now; served' "$T/wlog" || fail "$(cat "$T/wlog")"
	# Broken while served: named, skipped, the others served; back again.
	local said
	said=$(grep -c '^qworker: c/cur: No such file or directory; not served' "$T/wlog")
	mv "$(qdir c)/cur" "$(qdir c)/cur.away"
	wait_for eval '(( $(grep -c "^qworker: c/cur: No such file or directory; not served, trying again in" "$T/wlog") > said ))'
	qsend a x2
	wait_for grep -qx x2 "$T/wout"
	mv "$(qdir c)/cur.away" "$(qdir c)/cur"
	qsend c z2
	wait_for grep -qx z2 "$T/wout"
	kill -TERM "$WPID"
	wait_worker
	assert_equal "$wstatus" 0
	# Nothing can be served: an error, each named.
	printf '[queue]\nlease = forever\n' > "$(qdir b)/queue.conf"
	rmdir "$(qdir c)/cur"
	run --separate-stderr timeout 20 qworker --drain b c -- cat
	assert_failure 78
	assert_equal "$stderr" "qworker: $(qdir b)/queue.conf:2: lease: forever: not a duration (like 500ms, 30s, 5m, 2h, 4d)
qworker: c/cur: No such file or directory
qworker: none of the queues can be served"
	# One queue: as before, its error alone.
	run --separate-stderr timeout 20 qworker --drain c -- cat
	assert_failure 66
	assert_equal "$stderr" 'qworker: c/cur: No such file or directory'
}
