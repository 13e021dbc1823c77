#!/usr/bin/env bats
# Message groups (qsend -g): within a group one message at a time, in ID
# order; groups and ungrouped messages in parallel.  The on-disk rule is
# spoolq(5) "Message groups": the head of a group is the one message of it
# in new/, cur/ or retry/, the others wait in groups/KEY/, and the baton
# groups/KEY/,head=ID (or ,free) says which is head.
#
# The concurrency test runs 4 workers over GROUPS x PER messages
# (SPOOLQ_GROUPS_N, SPOOLQ_GROUPS_PER: 20 x 20 by default, 100 x 100 for
# the full run) with random failures and kill -9 of workers; each job
# appends "start" and "end" lines to one log opened O_APPEND, whose order
# is the order in time of the appends, so overlaps are judged without a
# clock.

load helpers

setup() {
	spoolq_setup
	mkq q durability=none retry_delay=100ms
	Q=$(qdir q)
}

teardown() {
	local p
	for p in ${WORKERS-}; do
		kill -9 "$p" 2>/dev/null || true
	done
	spoolq_teardown
}

# head_of KEY: the ID the baton of group KEY names ("" when free).
head_of() {
	local b
	b=$(cd "$Q/groups/$1" && ls -1A |
	    grep -E '^,(free|head=|gone=)') || return 1
	case $b in
	,free) echo ;;
	,head=*) echo "${b#,head=}" ;;
	*) echo "$b" ;;
	esac
}

# head_of_in QUEUE KEY: as head_of, in another queue of the test.
head_of_in() {
	local b
	b=$(cd "$(qdir "$1")/groups/$2" && ls -1A |
	    grep -E '^,(free|head=|gone=)') || return 1
	echo "${b#,head=}"
}

# claim_body_of QUEUE WANT: claim one message of QUEUE whose body is WANT.
claim_body_of() {
	local r
	r=$(qrecv "$1") || return 1
	[[ $(cat "$r") == "$2" ]]
}

# claim_body: claim one message, print its body (fails when none).
claim_body() {
	local r
	r=$(qrecv q) || return 1
	cat "$r"
	echo
}

@test "qsend -g: the first message of a group is ready, the others wait in groups/KEY/" {
	qsend -g A q a1
	qsend -g A q a2
	qsend -g B q b1
	qsend q plain
	assert_count new q 3
	run names new q
	assert_equal "$(grep -c ',g=A$' <<<"$output")" 1
	assert_equal "$(grep -c ',g=B$' <<<"$output")" 1
	assert_count groups/A q 2	# the baton and a2
	run bodies groups/A q
	assert_output --partial a2
	assert_equal "$(head_of A)" "$(msgid "$(names new q | grep ',g=A$')")"
	assert_equal "$(head_of B)" "$(msgid "$(names new q | grep ',g=B$')")"
	# Fields stay awk-parseable and the ID is unchanged.
	run field "$(names new q | grep ',g=A$')" g
	assert_output A
}

@test "qsend -g: a name that is not a key is hashed; SPOOLQ_GROUP is the default" {
	qsend -g 'customer 42@example.com' q x
	qsend -g 'customer 42@example.com' q y
	run names new q
	[[ $output =~ ,g=h[0-9a-f]{16}$ ]] || fail "no hashed key: $output"
	k=$(field "$output" g)
	assert_count "groups/$k" q 2
	SPOOLQ_GROUP=env-group qsend q z
	assert_count groups/env-group q 1
	assert_equal "$(names new q | grep -c ',g=env-group$')" 1
	expect_fail 64 qsend -g '' q w
	assert_output --partial "qsend: -g: a group name may not be empty"
}

@test "a group's next message is not claimed while its head is claimed or waits in retry/" {
	qsend -g A q a1
	qsend -g A q a2
	qsend q free1
	qsend q free2
	r=$(qrecv q)
	assert_equal "$(cat "$r")" a1
	# a2 waits; the ungrouped messages flow.
	assert_equal "$(claim_body)" free1
	assert_equal "$(claim_body)" free2
	run qrecv q
	assert_failure 1
	# A retry keeps the group: a2 still waits while a1 is in retry/.
	qack --retry --delay 1h "$r"
	assert_count retry q 1
	run qrecv q
	assert_failure 1
	assert_count groups/A q 2
	# Due again, a1 comes back before a2.
	mv "$Q/retry/$(only retry q)" "$Q/retry/$(msgid "$(only retry q)"),a=1,t=1,g=A"
	qadmin recover q >/dev/null
	r=$(qrecv q)
	assert_equal "$(cat "$r")" a1
	qack "$r"
	assert_equal "$(claim_body)" a2
}

@test "an ack frees the group: its messages come one at a time in ID order" {
	for i in 1 2 3 4 5; do qsend -g A q "a$i"; done
	got=
	for i in 1 2 3 4 5; do
		r=$(qrecv -n 5 q)
		assert_equal "$(wc -l <<<"$r")" 1
		got+="$(cat "$r") "
		qack "$r"
	done
	assert_equal "$got" "a1 a2 a3 a4 a5 "
	assert_equal "$(head_of A)" ""
	assert_count groups/A q 1	# the free baton
}

# drain_bodies: claim and ack one message at a time until none is ready,
# printing the bodies one a line.
drain_bodies() {
	local r
	while r=$(qrecv q); do
		cat "$r"
		echo
		qack "$r"
	done
}

@test "the settle of a head writes the order file groups/KEY/.order; the next settles take their heads from it, in ID order" {
	seq 1 40 | qsend -g A -l q
	r=$(qrecv q)
	assert_equal "$(cat "$r")" 1
	qack "$r"
	[[ -f $Q/groups/A/.order ]] || fail "no order file: $(ls -A "$Q/groups/A" | head -3)"
	# From the head it chose on, sorted, between its first and last line.
	[[ $(head -1 "$Q/groups/A/.order") =~ ^spoolq-order-2\ [0-9a-f]{16}\ [0-9a-f]{16}$ ]] || fail "first line: $(head -1 "$Q/groups/A/.order")"
	assert_equal "$(tail -1 "$Q/groups/A/.order")" .
	assert_equal "$(sed -n 2p "$Q/groups/A/.order")" "$(names new q)"
	assert_equal "$(sed '1d;$d' "$Q/groups/A/.order" | wc -l)" 39
	assert_equal "$(sed '1d;$d' "$Q/groups/A/.order" | sort -c && echo sorted)" sorted
	run drain_bodies
	assert_output "$(seq 2 40)"
	assert_equal "$(head_of A)" ""
	[[ ! -e $Q/groups/A/.order ]] || fail "the order file outlived the group's messages"
	assert_count groups/A q 1	# the free baton
}

@test "a send into a group keeps its order file when all it sends is newer than the file's last name, else removes it" {
	local f ino
	seq 1 20 | qsend -g A -l q
	# Sent by hand as qsend sends, before the first settle: two messages
	# with IDs to come, which the order file written next ends with.
	for f in 2900000000.000000000.1_0_00000000.late 2900000000.000000001.1_0_00000000.late; do
		printf %s "$f" >"$Q/tmp/$f"
		mv "$Q/tmp/$f" "$Q/groups/A/$f,g=A"
	done
	qack "$(qrecv q)"
	[[ -f $Q/groups/A/.order ]] || fail "no order file"
	assert_equal "$(sed -n 'x;$p' "$Q/groups/A/.order")" 2900000000.000000001.1_0_00000000.late,g=A
	# Older than those: the file would skip it.
	qsend -g A q 21
	[[ ! -e $Q/groups/A/.order ]] || fail "a send older than the last name left the order file"
	qack "$(qrecv q)"
	[[ -f $Q/groups/A/.order ]] || fail "no order file after the next settle"
	run drain_bodies
	assert_output "$(seq 3 21; echo 2900000000.000000000.1_0_00000000.late; echo 2900000000.000000001.1_0_00000000.late)"
	# Newer than all it names: the file stays, the very same, and the
	# group still comes in ID order.
	seq 1 20 | qsend -g B -l q
	qack "$(qrecv q)"
	f=$Q/groups/B/.order
	[[ -f $f ]] || fail "no order file in B"
	ino=$(stat -c %i.%Y.%s "$f")
	seq 21 22 | qsend -g B -l q
	qsend -g B q 23
	assert_equal "$(stat -c %i.%Y.%s "$f")" "$ino"
	run drain_bodies
	assert_output "$(seq 2 23)"
	[[ ! -e $f ]] || fail "the order file outlived the group's messages"
}

@test "a claim put back into a group removes its order file" {
	seq 1 21 | qsend -g A -l q
	qack "$(qrecv q)"
	qack "$(qrecv q)"
	[[ -f $Q/groups/A/.order ]] || fail "no order file"
	# A message of the group delivered by hand: its claim is undone into
	# the group, which removes the order file, and it comes in ID order.
	id=1000000000.000000000.1_0_00000000.hand
	printf hand >"$Q/tmp/$id"
	mv "$Q/tmp/$id" "$Q/new/$id,g=A"
	r=$(qrecv -n 10 q)
	assert_equal "$(wc -l <<<"$r")" 1
	assert_equal "$(cat "$r")" 3
	[[ -f $Q/groups/A/$id,g=A ]] || fail "not put back: $(names new q)"
	[[ ! -e $Q/groups/A/.order ]] || fail "a claim put back left the order file"
	qack "$r"
	run drain_bodies
	assert_output "$(printf '%s\n' hand; seq 4 21)"
}

# add_steps TRACE: the steps of an add into a group, in the order strace(1)
# saw them: mark (its marker ,add.* made), drop (.order removed), add (a
# rename into the marker's directory), unmark (the marker removed).
add_steps() {
	awk '
	/^openat\(.*",add\./ && / = [0-9]+$/ {
		split($0, a, /[(,]/); g = a[2]; printf "mark "; next
	}
	g == "" { next }
	/^unlinkat\(/ && /"\.order"/ && / = 0$/ { printf "drop " }
	/^unlinkat\(/ && /",add\./ && / = 0$/ { printf "unmark " }
	/^renameat2?\(/ && / = 0$/ { split($0, a, ", "); if (a[3] == g) printf "add " }
	END { print "" }' "$1"
}

@test "an add into a group makes its marker, removes the order file, renames, then removes the marker: no kill between leaves an order file that skips it" {
	local f id r
	command -v strace >/dev/null || skip "no strace"
	strace -qq -o /dev/null true 2>/dev/null || skip "strace cannot trace here"
	export ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0"
	seq 1 20 | qsend -g A -l q
	# An ID to come waits: a send now is older than the file's last name.
	f=2900000000.000000000.1_0_00000000.late
	printf late >"$Q/tmp/$f"
	mv "$Q/tmp/$f" "$Q/groups/A/$f,g=A"
	qack "$(qrecv q)"
	[[ -f $Q/groups/A/.order ]] || fail "no order file"
	strace -E "$(leakless_env)" -qq -o "$T/trace" \
	    -e trace=openat,unlinkat,rename,renameat,renameat2 \
	    "$SPOOLQ_BIN/qsend" -g A q 21
	assert_equal "$(add_steps "$T/trace")" "mark drop add unmark "
	# A claim given back into the group, the order file written anew.
	qack "$(qrecv q)"
	[[ -f $Q/groups/A/.order ]] || fail "no order file after the send"
	r=$(qrecv q)
	id=1000000000.000000000.1_0_00000000.hand
	printf hand >"$Q/tmp/$id"
	mv "$Q/tmp/$id" "$Q/new/$id,g=A"
	strace -E "$(leakless_env)" -qq -o "$T/trace" \
	    -e trace=openat,unlinkat,rename,renameat,renameat2 \
	    "$SPOOLQ_BIN/qrecv" q || true
	assert_equal "$(add_steps "$T/trace")" "mark drop add unmark "
	[[ -f $Q/groups/A/$id,g=A ]] || fail "not given back: $(ls "$Q/new")"
	[[ -z $(cd "$Q/groups/A" && ls -A | grep '^,add\.') ]] || fail "a marker stayed"
	qack "$r"
	run drain_bodies
	assert_output "$(printf '%s\n' hand; seq 4 21; echo late)"
}

@test "no order file is written while an add into the group is under way; a marker left by a killed add goes with the group's upkeep 5 s after it was made" {
	local m=$Q/groups/A/,add.0123456789abcdef
	seq 1 20 | qsend -g A -l q
	: >"$m"
	qack "$(qrecv q)"
	[[ ! -e $Q/groups/A/.order ]] || fail "an order file written while an add was under way"
	# A marker is no damage: check has nothing to say; a young one stays.
	run --separate-stderr qadmin check q
	assert_success
	qadmin recover q >/dev/null
	[[ -e $m ]] || fail "a young marker went"
	touch -d '1 minute ago' "$m"
	qadmin recover q >/dev/null
	[[ ! -e $m ]] || fail "a marker left by a killed add stayed"
	qack "$(qrecv q)"
	[[ -f $Q/groups/A/.order ]] || fail "no order file once the marker went"
	run drain_bodies
	assert_output "$(seq 3 20)"
}

@test "an order file cut short, naming a message that is gone, or used up is not followed: the group is listed" {
	seq 1 40 | qsend -g A -l q
	qack "$(qrecv q)"
	o=$Q/groups/A/.order
	[[ -f $o ]] || fail "no order file"
	# Cut short by a crash: no last line.
	sed -i '$d' "$o"
	r=$(qrecv q)
	assert_equal "$(cat "$r")" 2
	qack "$r"
	# Naming a message that is gone: 4 taken out of the group by hand.
	[[ -f $o && $(tail -1 "$o") == . ]] || fail "no new order file"
	rm "$Q/groups/A/$(sed -n 3p "$o")"
	for want in 3 5; do
		r=$(qrecv q)
		assert_equal "$(cat "$r")" "$want"
		qack "$r"
	done
	# Used up: it names only the head and one more.
	sed -i '4,$d' "$o" && echo . >>"$o"
	run drain_bodies
	assert_output "$(seq 6 40)"
}

@test "a worker settling a group's heads one after another reads its order file once and keeps it; a message put into the group meanwhile still comes in its place" {
	local f id n
	command -v strace >/dev/null || skip "no strace"
	strace -f -qq -o /dev/null true 2>/dev/null || skip "strace cannot trace here"
	# LeakSanitizer cannot run under ptrace.
	export ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0"
	seq 1 40 | qsend -g A -l q
	# Sent into the group while 5 is worked on, as qsend sends (renamed
	# in, then the order file removed), under an ID right after 20's: the
	# worker's copy of the order file no longer holds, and it comes after
	# 20.
	for f in "$Q"/groups/A/[0-9]*; do
		[[ $(cat "$f") != 20 ]] || id=${f##*/}
	done
	id=${id%%,*}x
	export HAND=$Q/tmp/$id SENT=$Q/groups/A/$id,g=A LOG=$T/log
	strace -E "$(leakless_env)" -f -qq -e trace=openat -o "$T/trace" \
	    "$SPOOLQ_BIN/qworker" -q -j 1 --drain q -- bash -c '
		b=$(cat "$SPOOLQ_PATH")
		echo "$b" >>"$LOG"
		[ "$b" != 5 ] || { echo 20x >"$HAND" && mv "$HAND" "$SENT" &&
		    rm "${SENT%/*}/.order"; }'
	assert_equal "$(cat "$LOG")" "$(seq 1 20; echo 20x; seq 21 40)"
	# Opened for reading by the settle after each listing (after 1, and
	# after the send), by the settles that find it gone or used up and by
	# the worker's first maintenance pass, which judges the group by it:
	# a few times, not once per head (39 of them).
	n=$(grep -c '"\.order", O_RDONLY' "$T/trace" || true)
	(( n >= 2 && n <= 7 )) || fail "the order file was opened $n times: $(grep -F .order "$T/trace")"
}

@test "qsend -l -g: each line that has come is out, and its group's head is ready, before the next line comes" {
	mkfifo "$T/fifo"
	qsend -g A -l q <"$T/fifo" 3>&- &
	local pid=$!
	exec 5>"$T/fifo"
	printf 'one\ntwo\n' >&5
	r=$(qrecv -w 60 q) || fail "the head did not come while qsend waits"
	assert_equal "$(cat "$r")" one
	qack "$r"
	r=$(qrecv -w 60 q) || fail "the next did not come while qsend waits"
	assert_equal "$(cat "$r")" two
	qack "$r"
	printf 'three\n' >&5
	exec 5>&-
	wait "$pid"
	run drain_bodies
	assert_output three
}

@test "a dead-lettered head frees its group" {
	qsend -g A q a1
	qsend -g A q a2
	r=$(qrecv q)
	qack --reject "$r"
	assert_count dead q 1
	assert_equal "$(field "$(only dead q)" g)" A
	assert_equal "$(claim_body)" a2
}

@test "a head out of attempts is dead-lettered by recovery and frees its group" {
	qadmin config q set max_attempts=1 lease=1s >/dev/null
	qsend -g A q a1
	qsend -g A q a2
	r=$(qrecv q)
	wait_lease_over "$r"
	assert_equal "$(claim_body)" a2
	assert_count dead q 1
}

@test "a lapsed lease gives the head back, never its successor" {
	qsend -g A q a1
	qsend -g A q a2
	r=$(qrecv --lease 1s q)
	run qrecv q
	assert_failure 1
	wait_lease_over "$r"
	r2=$(qrecv q)
	assert_equal "$(cat "$r2")" a1
	assert_equal "$(field "$r2" a)" 2
	qack "$r2"
	assert_equal "$(claim_body)" a2
}

@test "kill -9 of a worker frees its group at once: its lock is free" {
	qsend -g A q a1
	qsend -g A q a2
	qworker q -- sleep 60 2>/dev/null &
	w=$!
	WORKERS=$w
	wait_for eval '[[ $(count cur q) == 1 ]]'
	run qrecv q
	assert_failure 1
	kill -9 "$w"
	wait "$w" || true
	# Nothing else is ready: the claim checks the workers and recovers,
	# once the job has died with its worker (its parent-death signal, a
	# moment after) and freed its job lock.
	r=$(qrecv -w 10 q)
	assert_equal "$(cat "$r")" a1
	qack "$r"
	assert_equal "$(claim_body)" a2
}

# The job's shell dies with its worker; the subshell it runs (a
# grandchild of the worker) appends "start BODY", then "end" once
# $T/f.go exists (30 s at most), to $T/f.
@test "kill -9 of a worker: a process its job left running keeps the group until it has ended" {
	qsend -g A q a1
	qsend -g A q a2
	qworker q -- sh -c '(echo "start $(cat)" >>"$0"
	    i=0; until [ -e "$0.go" ] || [ $i = 600 ]; do
	        sleep 0.05; i=$((i + 1)); done
	    echo end >>"$0"); true' "$T/f" 2>/dev/null &
	w=$!
	WORKERS=$w
	wait_for grep -qx 'start a1' "$T/f"
	kill -9 "$w"
	wait "$w" || true
	WORKERS=
	# Neither its head (its job lock is held) nor the next of the group.
	run qrecv q
	assert_failure 1
	assert_count cur q 1
	touch "$T/f.go"
	r=$(qrecv -w 10 q)
	assert_equal "$(cat "$T/f")" $'start a1\nend'
	assert_equal "$(cat "$r")" a1
	assert_equal "$(field "$r" a)" 2
	qack "$r"
	assert_equal "$(claim_body)" a2
}

@test "a grouped message delivered by hand into new/ waits behind its group's head" {
	qsend -g A q a1
	r=$(qrecv q)
	id=2000000000.000000000.1_0_00000000.hand
	echo hand >"$Q/tmp/$id"
	mv "$Q/tmp/$id" "$Q/new/$id,g=A"
	run qrecv q
	assert_failure 1
	assert_count new q 0
	[[ -f $Q/groups/A/$id,g=A ]] || fail "not queued: $(names groups/A q)"
	qack "$r"
	assert_equal "$(claim_body)" hand
	# A new group by hand works too.
	echo solo >"$Q/tmp/$id.2"
	mv "$Q/tmp/$id.2" "$Q/new/$id.2,g=fresh"
	assert_equal "$(claim_body)" solo
}

@test "a redriven head waits behind the group's current head" {
	qsend -g A q a1
	qsend -g A q a2
	qack --reject "$(qrecv q)"
	r=$(qrecv q)
	assert_equal "$(cat "$r")" a2
	qadmin redrive q >/dev/null
	run qrecv q
	assert_failure 1
	qack "$r"
	assert_equal "$(claim_body)" a1
}

@test "qadmin check --repair finishes a promotion cut short" {
	qsend -g A q a1
	qsend -g A q a2
	r=$(qrecv q)
	qack "$r"		# a2 is head now: put it back as a crash would
	h=$(only new q)
	mv "$Q/new/$h" "$Q/groups/A/$h"
	run qadmin check q
	assert_failure 1
	assert_output --partial "groups/A"
	run qadmin check --repair q
	assert_success
	assert_equal "$(claim_body)" a2
}

@test "a promotion cut short is finished for the baton's head, even with an older message waiting" {
	qsend -g A q a1
	qsend -g A q a2
	qack "$(qrecv q)"
	h=$(only new q)
	mv "$Q/new/$h" "$Q/groups/A/$h"
	id=1000000000.000000000.1_0_00000000.old
	echo old >"$Q/tmp/$id"
	mv "$Q/tmp/$id" "$Q/groups/A/$id,g=A"
	run qadmin check --repair q
	assert_success
	r=$(qrecv q)
	assert_equal "$(cat "$r")" a2
	qack "$r"
	assert_equal "$(claim_body)" old
}

@test "qadmin check --repair frees a baton whose head was settled by a crashed consumer" {
	qsend -g A q a1
	qsend -g A q a2
	r=$(qrecv q)
	rm "$r"			# an ack cut short before the baton moved
	run qrecv q
	assert_failure 1
	run qadmin check q
	assert_failure 1
	assert_output --partial "baton held by a message that is gone"
	assert_equal "$(count groups/A q)" 2	# nothing changed
	run qadmin check --repair q
	assert_success
	assert_output --partial "groups/A"
	assert_equal "$(claim_body)" a2
	run qadmin check q
	assert_success
}

# need_strace: skip unless strace(1) can inject faults here.
need_strace() {
	command -v strace >/dev/null || skip "strace is not installed"
	strace -f -qq -o /dev/null true 2>/dev/null || skip "strace cannot trace here"
}

@test "an ack killed after its unlink frees its group within 15 s, by the claims alone" {
	need_strace
	mkq gk lease=5s
	qsend -g K gk k1 k2 k3
	r=$(qrecv gk)
	assert_equal "$(cat "$r")" k1
	# Killed after the unlink, before the baton moves on.
	run strace -E "$(leakless_env)" -f -qq -o /dev/null \
	    -e inject=renameat2:signal=SIGKILL:when=1 qack "$r"
	[[ ! -e $r ]] || fail "the ack did not unlink $r"
	[[ $(head_of_in gk K) == "$(basename "$r" | cut -d, -f1)" ]] ||
	    fail "the baton moved: $(head_of_in gk K)"
	# Index maintenance comes once a minute; group upkeep every 10 s.
	wait_for -t 40 claim_body_of gk k2
}

# pass_traced FILE CMD...: run CMD with a maintenance pass of groups due
# (groups/,maint a minute old) and its wall clock 30 s ahead (libfaketime),
# so that every baton is past the 5 s a baton is left alone, under strace
# tracing getdents64(2) with the directories' paths into FILE.
pass_traced() {
	local lib out=$1
	shift
	lib=$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -1)
	[[ -n $lib ]] || skip "libfaketime is not installed"
	touch -d '1 min ago' "$Q/groups/,maint"
	strace -E "$(leakless_env):verify_asan_link_order=0" \
	    -E LD_PRELOAD="$lib" -E FAKETIME=+30s \
	    -E FAKETIME_DONT_FAKE_MONOTONIC=1 -f -qq -y \
	    -e trace=getdents64 -o "$out" "$@"
}

@test "a maintenance pass judges a group by its order file, and finds heads waiting behind a backlog by name: it lists neither" {
	need_strace
	local lib
	lib=$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -1)
	[[ -n $lib ]] || skip "libfaketime is not installed"
	seq 1 40 | qsend -g A -l q
	seq 1 40 | qsend -g B -l q
	# The first settle of each group lists it and writes its order file.
	qrecv -n 2 q | qack -
	[[ -s $Q/groups/A/.order && -s $Q/groups/B/.order ]] ||
	    fail "no order files: $(ls -A "$Q/groups/A" "$Q/groups/B" | head)"
	# A backlog sent an hour ago: before the heads, 2 of A and of B.
	seq 1 300 | env LD_PRELOAD="$lib" FAKETIME=-1h \
	    ASAN_OPTIONS="$ASAN_OPTIONS:verify_asan_link_order=0" qsend -l q
	# The claim index, made anew from a listing: the backlog comes first.
	rm -f "$Q"/run/index.*
	qrecv q >/dev/null
	pass_traced "$T/trace" "$SPOOLQ_BIN/qrecv" q >/dev/null
	# The pass ran: groups/,maint is its own.
	[[ $(find "$Q/groups/,maint" -mmin -1) ]] || fail "no pass ran"
	run grep -E 'getdents64\([0-9]+<[^>]*/(groups/[AB]|new)>' "$T/trace"
	assert_failure 1
	# The heads, 2 of each group, 30 s old by then, kept their batons.
	assert_equal "$(cat "$Q/new/$(head_of A),g=A")" 2
	assert_equal "$(cat "$Q/new/$(head_of B),g=B")" 2
}

@test "a maintenance pass that judges a group by its order file promotes a head left in the group, and frees a baton whose head is gone" {
	need_strace
	local h r
	seq 1 40 | qsend -g A -l q
	seq 1 40 | qsend -g B -l q
	qrecv -n 2 q | qack -
	[[ -s $Q/groups/A/.order && -s $Q/groups/B/.order ]] ||
	    fail "no order files"
	# A: a crash between the take of 2 and its promotion.
	h=$(names new q | grep ',g=A$')
	mv "$Q/new/$h" "$Q/groups/A/$h"
	# B: an ack of 2 killed after its unlink, before the baton moved on.
	r=$(qrecv q)
	assert_equal "$(cat "$r")" 2
	rm "$r"
	pass_traced "$T/trace" "$SPOOLQ_BIN/qrecv" q >"$T/got"
	assert_equal "$(cat "$(cat "$T/got")")" 2	# A's head, promoted
	r=$(qrecv q)
	assert_equal "$(cat "$r")" 3			# B goes on
	assert_equal "$(head_of B)" "$(msgid "$r")"
}

# batons KEY: how many batons group KEY has.
batons() {
	(cd "$Q/groups/$1" && ls -1A | grep -cE '^,(free|head=|gone=)') || true
}

@test "a ,free planted beside the baton of a head in flight lets out no second head, and the group goes on by it once the head is settled" {
	local r
	qsend -g k q one two
	r=$(qrecv q)
	mkfifo "$Q/groups/k/,free"
	qsend -g k q three
	run qrecv q
	assert_failure 1			# one is in flight
	qack "$r"
	assert_equal "$(batons k)" 1
	[[ -p $Q/groups/k/,head=$(msgid "$(names new q)") ]] ||
	    fail "the planted baton did not pass on: $(ls -A "$Q/groups/k")"
	r=$(qrecv q)
	assert_equal "$(cat "$r")" two
	qack "$r"
	assert_equal "$(claim_body)" three
}

@test "a ,free planted beside the baton of the last head does not keep the group stuck" {
	local r
	qsend -g k q one
	r=$(qrecv q)
	echo planted >"$Q/groups/k/,free"
	qack "$r"
	assert_equal "$(batons k)" 1
	qsend -g k q two three
	assert_equal "$(claim_body)" two
}

@test "qadmin check --repair puts no baton in the place of one planted beside the group's own" {
	local r
	qsend -g k q one two
	r=$(qrecv q)
	mkfifo "$Q/groups/k/,free"
	run qadmin check --repair q
	[[ ! -e $Q/groups/k/,free ]] || fail "a baton made beside ,head: $(ls -A "$Q/groups/k")"
	assert_equal "$(batons k)" 1
	qack "$r"
	assert_equal "$(claim_body)" two
}

@test "qadmin check --repair advances a group whose baton is free while messages wait" {
	qsend -g A q a1
	qsend -g A q a2
	r=$(qrecv q)
	# A crash between freeing the baton and taking it again.
	qack "$r"
	h=$(only new q)
	mv "$Q/new/$h" "$Q/groups/A/$h"
	mv "$Q/groups/A/,head=$(msgid "$h")" "$Q/groups/A/,free"
	run qadmin check --repair q
	assert_success
	assert_equal "$(claim_body)" a2
}

@test "a baton under review is given back when its head is alive" {
	qsend -g A q a1
	qsend -g A q a2
	r=$(qrecv q)
	id=$(msgid "$r")
	# A recovery that crashed after renaming the baton.
	mv "$Q/groups/A/,head=$id" "$Q/groups/A/,gone=$id"
	run qadmin check --repair q
	assert_success
	assert_equal "$(head_of A)" "$id"
	run qrecv q
	assert_failure 1
	qack "$r"
	assert_equal "$(claim_body)" a2
}

@test "an idle group's directory goes after an hour; the next send makes it anew" {
	qsend -g A q a1
	qsend -g B q b1
	qrecv -n 2 q | qack -
	touch -d '2 hours ago' "$Q/groups/A"
	qadmin recover q >/dev/null
	[[ ! -e $Q/groups/A ]] || fail "idle group A kept: $(ls -A "$Q/groups")"
	[[ -e $Q/groups/B ]] || fail "group B, idle only now, removed"
	assert_equal "$(ls -A "$Q/groups" | grep -c '^\.')" 0
	qsend -g A q a2
	qsend -g A q a3
	assert_equal "$(claim_body)" a2
}

@test "a group removal cut short is finished, and what was sent into it meanwhile is kept" {
	qsend -g A q a1
	qack "$(qrecv q)"
	# Stopped after taking the baton: given back.
	mv "$Q/groups/A/,free" "$Q/groups/A/,head=.gc"
	qadmin recover q >/dev/null
	assert_equal "$(head_of A)" ""
	# Stopped after moving the directory, with a send into it meanwhile.
	mv "$Q/groups/A/,free" "$Q/groups/A/,head=.gc"
	mv "$Q/groups/A" "$Q/groups/.gc.A.0000abcd"
	qsend -g A q a2
	id=2000000000.000000000.1_0_00000000.late
	echo late >"$Q/tmp/$id"
	mv "$Q/tmp/$id" "$Q/groups/.gc.A.0000abcd/$id,g=A"
	qadmin recover q >/dev/null
	[[ ! -e $Q/groups/.gc.A.0000abcd ]] || fail "removal not finished"
	r=$(qrecv q)
	assert_equal "$(cat "$r")" a2
	run qrecv q
	assert_failure 1
	qack "$r"
	assert_equal "$(claim_body)" late
}

@test "qadmin stats shows groups in flight and blocked; qadmin ls shows each message's group" {
	qsend -g A q a1
	qsend -g A q a2
	qsend -g B q b1
	qsend q plain
	r=$(qrecv q)		# a1
	run qadmin stats q
	assert_success
	assert_output --partial "groups       2: 1 in flight, 1 blocked, 1 messages waiting"
	run qadmin stats --json q
	assert_output --partial '"groups":{"all":2,"inflight":1,"blocked":1,"waiting":1}'
	run qadmin ls q
	assert_line --regexp "^inflight +$(msgid "$r") .* lease=[0-9]+,group=A$"
	assert_line --regexp "^ready .* group=B$"
	assert_line --regexp "^ready .* -$"
	run qadmin ls --json q ready
	assert_output --partial '"group":"B"'
	# The message waiting behind a1 is listed last, as grouped.
	run qadmin ls q
	assert_equal "${lines[${#lines[@]} - 1]}" "$(qadmin ls q grouped)"
	assert_line --regexp "^grouped .* group=A$"
	run qadmin ls q grouped
	assert_equal "${#lines[@]}" 1
	run qadmin ls -n 1 q grouped ready
	assert_equal "${#lines[@]}" 2
}

@test "qadmin list, stats, --json and --prometheus count the messages waiting in their groups as ready, oldest first" {
	qsend -g A q a1
	qsend -g A q a2
	qsend -g A q a3
	qsend -g B q b1
	qsend -g B q b2
	r1=$(qrecv q)
	r2=$(qrecv q)
	run qrecv q
	assert_failure 1
	# Every message two hours older, in the same order: names and batons.
	old() {
		local n=$1 s=${1%%.*}
		echo "$((s - 7200)).${n#*.}"
	}
	for d in cur groups/A groups/B; do
		for f in "$Q/$d"/[0-9,]*; do
			b=${f##*/} p=
			case $b in ,head=*) p=,head= b=${b#,head=} ;; esac
			mv "$f" "$Q/$d/$p$(old "$b")"
		done
	done
	assert_equal "$(ls "$Q/new")" ""
	run qadmin list
	assert_success
	assert_line "$(printf 'q\t3\t2\t0\t0\tok')"
	run qadmin stats q
	assert_success
	assert_line --regexp "^  ready +3 +6  oldest 2h$"
	assert_line "  groups       2: 2 in flight, 2 blocked, 3 messages waiting"
	run qadmin stats --json q
	assert_success
	age=$(grep -o '"oldest_age_seconds":[0-9]*' <<<"$output")
	age=${age#*:}
	((age >= 7200 && age < 7500)) || fail "oldest age $age"
	assert_output --partial '"ready":{"count":3,"bytes":6,'
	run qadmin stats --prometheus q
	assert_line 'spoolq_messages{queue="q",state="ready"} 3'
	assert_line 'spoolq_bytes{queue="q",state="ready"} 6'
	assert_line 'spoolq_groups{queue="q",kind="waiting_messages"} 3'
	age=$(grep '^spoolq_oldest_ready_age_seconds' <<<"$output")
	age=${age##* }
	((age >= 7200 && age < 7500)) || fail "oldest age $age"
	run qadmin stats --age q
	assert_line --regexp "^q +3 +0 +0 +0 +0 +0 +3 +0$"
}

# twenty KEY: send m1..m20 into group KEY, claim and ack m1, so that the
# settle lists the group and leaves its order file for the next heads.
twenty() {
	qsend -g "$1" q $(seq -f "$1%g" 1 20)
	r=$(qrecv q)
	assert_equal "$(cat "$r")" "${1}1"
	qack "$r"
	[[ -f $Q/groups/$1/.order ]] || fail "no order file in $1"
}

# swap34: lines 3 and 4 of the input swapped.
swap34() {
	awk 'NR == 3 { l = $0; next } { print } NR == 4 { print l }'
}

# drain_bodies_line: claim and ack one at a time, bodies on one line.
drain_bodies_line() {
	local r out=
	while r=$(qrecv q); do
		out+="$(cat "$r") "
		qack "$r"
	done
	echo "$out"
}

@test "an order file written or edited by hand is not trusted: the group is served in ID order, the file written anew, and check reports and removes a wrong one" {
	local f want
	# Written by hand, m4 before m3.
	twenty A
	f=$Q/groups/A/.order
	{
		echo spoolq-order-1
		swap34 <"$f" | sed 1d
	} >"$f.new"
	assert_equal "$(sed -n 3p "$f.new")" "$(sed -n 4p "$f")"
	assert_equal "$(sed -n 4p "$f.new")" "$(sed -n 3p "$f")"
	cat "$f.new" >"$f"
	rm "$f.new"
	r=$(qrecv q)
	assert_equal "$(cat "$r")" A2
	qack "$r"
	# Written anew by that settle's listing: it checks.
	[[ -f $f ]] || fail "no order file written anew"
	run --separate-stderr qadmin check q
	assert_success
	want=$(seq -f "A%g" 3 20 | tr '\n' ' ')
	assert_equal "$(drain_bodies_line)" "$want"
	# Edited in place, its first line kept: m3 and m4 swapped.
	twenty B
	f=$Q/groups/B/.order
	swap34 <"$f" >"$f.new"
	cat "$f.new" >"$f"
	rm "$f.new"
	run --separate-stderr qadmin check q
	assert_failure 1
	assert_equal "$stderr" "qadmin: check: q: order file that does not check (written by hand or cut short): groups/B/.order"
	run --separate-stderr qadmin check --repair q
	assert_success
	assert_output "remove - groups/B/.order -> -"
	[[ ! -e $f ]] || fail "not removed"
	want=$(seq -f "B%g" 2 20 | tr '\n' ' ')
	assert_equal "$(drain_bodies_line)" "$want"
	# A message put into the group's directory by hand, between m3 and
	# m4: the order file checks, but no longer names the next heads.
	twenty C
	f=$Q/groups/C/.order
	m3=$(sed -n 3p "$f")
	echo Cx >"$Q/groups/C/${m3%%,*}z,g=C"
	run --separate-stderr qadmin check q
	assert_failure 1
	assert_equal "$stderr" "qadmin: check: q: order file that names the next heads out of their order: groups/C/.order"
	run --separate-stderr qadmin check --repair q
	assert_success
	assert_output "remove - groups/C/.order -> -"
	want="C2 C3 Cx $(seq -f "C%g" 4 20 | tr '\n' ' ')"
	assert_equal "$(drain_bodies_line)" "$want"
}

@test "messages waiting in a group count for max_messages" {
	qadmin config q set max_messages=3 >/dev/null
	qsend -g A q a1
	qsend -g A q a2
	qsend -g B q b1
	expect_fail 75 qsend -g A q a3
	assert_output --partial "full"
	assert_equal "$(count groups/A q)" 2	# baton and a2
}

# The concurrency test's job: body "GROUP SEQ".  Logs start and end lines,
# the start with the attempt and its worker's pid (qworker runs it without
# a shell between); fails at random (exit 75, retried).
job_script='
read -r g s
printf "start %s %s %s %s\n" "$g" "$s" "$SPOOLQ_ATTEMPT" "$PPID" >>"$LOG"
sleep 0.0$((RANDOM % 3))
if [ $((RANDOM % 5)) = 0 ]; then
	printf "end %s %s fail\n" "$g" "$s" >>"$LOG"
	exit 75
fi
printf "end %s %s ok\n" "$g" "$s" >>"$LOG"
'

start_worker() {
	qworker -q q -- bash -c "$job_script" job 2>>"$T/worker.err" &
	WORKERS="$WORKERS $!"
}

# queue_empty: no message in new/, cur/, retry/ or a group.  The states
# are listed one after another, so while workers run it can miss a
# message that moves back past the listing: from retry/ or its group to
# new/ after new/ was listed, or from cur/ to new/ by a recovery.  Only
# with the workers stopped is the answer sure.
queue_empty() {
	[[ $(count new q) == 0 && $(count cur q) == 0 &&
	    $(count retry q) == 0 ]] &&
	    [[ -z $(find "$Q/groups" -type f -name '[0-9]*') ]]
}

# never_ok: "GROUP SEQ" of each message of the concurrency test that has
# not succeeded yet, by the log ($n groups of $per, the test's locals).
never_ok() {
	awk -v n="$n" -v per="$per" '
		$1 == "end" && $4 == "ok" { ok[$2 " " $3] = 1 }
		END {
			for (g = 1; g <= n; g++)
				for (s = 1; s <= per; s++)
					if (!(("g" g " " s) in ok)) print "g" g, s
		}' "$LOG"
}

# oks_at_least N: the log holds N successes or more (read at each call).
oks_at_least() {
	(( $(grep -c '^end .* ok$' "$LOG") >= $1 ))
}

# stop_workers: SIGTERM each worker and reap it; nothing moves after.
stop_workers() {
	local p
	for p in $WORKERS; do
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" || true
	done
	WORKERS=
}

# evidence [GROUP...]: what the concurrency test saw, for its failures:
# dead/ (a= attempts, r= reason), each message that never succeeded and
# where its body lies now, then the log lines of their groups, of the
# dead letters' groups and of GROUPs ("kill" lines included, numbered),
# and what the workers said.
evidence() {
	local g f groups="$*"
	echo "dead/:"
	names dead q | sed 's/^/  /'
	for f in "$Q"/dead/*; do
		[[ -f $f ]] && groups="$groups $(cut -d' ' -f1 "$f")"
	done
	while read -r g s; do
		[[ -n $g ]] || continue
		echo "$g $s never succeeded; its body now:" \
		    "$(grep -rlxF "$g $s" "$Q" 2>/dev/null | sed "s|^$Q/||")"
		groups="$groups $g"
	done <<<"$(never_ok)"
	for g in $(tr ' ' '\n' <<<"$groups" | sort -u); do
		echo "log of $g:"
		grep -nE "^(start|end) $g |^kill" "$LOG" | sed 's/^/  /'
	done
	echo "workers said:"
	sed 's/^/  /' "$T/worker.err"
}

@test "4 workers, random failures and kill -9: each group in order, never two at once" {
	local n=${SPOOLQ_GROUPS_N:-20} per=${SPOOLQ_GROUPS_PER:-20} g s i
	qadmin config q set max_attempts=1000 retry_max_delay=200ms >/dev/null
	export LOG=$T/log
	: >"$LOG"
	for s in $(seq "$per"); do
		for g in $(seq "$n"); do
			echo "g$g $s"
		done
	done | while read -r g s; do
		echo "$g $s" | qsend -g "$g" q
	done
	WORKERS=
	for i in 1 2 3 4; do start_worker; done
	# Kill a worker now and then, and start another.  The others are
	# stopped meanwhile, so that none takes the victim's claims before
	# "kill PID" is logged, once it is dead and its job with it (a job
	# dies with its worker).
	for i in 1 2 3 4 5 6; do
		wait_until 30 oks_at_least $((n * per * i / 8)) || break
		set -- $WORKERS
		victim=$1
		shift
		WORKERS="$*"
		kill -STOP $WORKERS
		kill -9 "$victim"
		wait "$victim" 2>/dev/null || true
		echo "kill $victim" >>"$LOG"
		kill -CONT $WORKERS
		start_worker
	done
	# Until the queue is empty with the workers stopped: a listing made
	# while they run can miss a message moving past it (queue_empty).
	for i in 1 2 3; do
		wait_until $((240 + n * per / 10)) queue_empty ||
		    fail "not empty in time; $(evidence)"
		stop_workers
		queue_empty && break
		for g in 1 2 3 4; do start_worker; done
	done
	queue_empty || fail "messages left with the workers stopped:" \
	    "$(find "$Q"/{new,cur,retry,groups} -type f | sed "s|^$Q/||");" \
	    "$(evidence)"
	# max_attempts is 1000, jobs fail only with 75 and the 6 kills cost
	# an attempt each at most: a dead letter is a fault, and so is a
	# message that never succeeded (lost).
	[[ -z $(names dead q) ]] || fail "dead letters; $(evidence)"
	[[ -z $(never_ok) ]] || fail "messages lost; $(evidence)"
	# Every message succeeded at least once; per group, the successful
	# deliveries, repeats folded, are 1..per in order.
	run awk -v per="$per" '
		$1 == "end" && $4 == "ok" {
			if (last[$2] != $3) { seq[$2] = seq[$2] " " $3; last[$2] = $3 }
		}
		END {
			want = ""
			for (i = 1; i <= per; i++) want = want " " i
			for (g in seq) if (seq[g] != want) { print g ":" seq[g]; bad = 1 }
			exit bad
		}' "$LOG"
	(( status == 0 )) || fail "out of order: $output; $(evidence $(cut -d: -f1 <<<"$output"))"
	assert_equal "$(awk '$1 == "end" && $4 == "ok" { print $2 }' "$LOG" | sort -u | wc -l)" "$n"
	# Never two jobs of a group at once: a start while another job of its
	# group has started and not ended, nor died with its worker.
	run awk '
		$1 == "kill" {
			for (g in busy) if (busy[g] == $2) delete busy[g]
			next
		}
		$1 == "start" {
			if ($2 in busy) { print "overlap in " $2 " at line " NR; bad = 1 }
			busy[$2] = $5
		}
		$1 == "end" { delete busy[$2] }
		END { exit bad }' "$LOG"
	(( status == 0 )) || fail "$output; $(evidence $(awk '{ print $3 }' <<<"$output"))"
	[[ ! -s $T/worker.err ]] || fail "workers said: $(cat "$T/worker.err")"
}
