#!/usr/bin/env bats
# 87-dead-letter-queue.bats - queue.conf dead_letter: a queue's dead
# letters go into the new/ of another queue beside it (spoolq(5)
# "Dead-letter queues"), by one rename, with their ID, body, sidecar,
# group and reason; back into dead/ with one warning when they cannot.

load helpers
load qworker_helpers

setup() {
	spoolq_setup
	mkq dlq
	mkq m max_attempts=2 retry_delay=0 dead_letter=dlq
}

teardown() {
	spoolq_teardown
}

# An ID sent long ago (2023-11-14), for messages put into new/ by hand:
# ttl counts from the ID's time, so it is over without any wait.
OLD_ID=1700000000.000000000.1_0_0000abcd.host

# deliver QUEUE NAME BODY: a message delivered by hand, maildir style.
deliver() {
	local d
	d=$(qdir "$1")
	printf '%s' "$3" >"$d/tmp/$2"
	mv "$d/tmp/$2" "$d/new/$2"
}

@test "dead_letter: a queue name of 128 bytes is shown and read back whole" {
	local long
	long=$(printf 'd%.0s' {1..128})
	qadmin create "$long"
	run -0 qadmin config m set dead_letter="$long"
	run -0 qadmin config m get dead_letter
	assert_output "$long"
	run -0 qadmin config m show
	assert_line --regexp "^dead_letter = $long	\(queue.conf:[0-9]+\)\$"
}

@test "dead_letter: set, shown and got by qadmin config; none is the default" {
	run --separate-stderr qadmin config m get dead_letter
	assert_success
	assert_output dlq
	run --separate-stderr qadmin config m
	assert_success
	assert_line 'dead_letter = dlq	(queue.conf:4)'
	run --separate-stderr qadmin config dlq
	assert_line 'dead_letter = none	(default)'
	run --separate-stderr qadmin config dlq set dead_letter=m
	assert_success
	grep -qx 'dead_letter = m' "$SPOOLQ_DIR/dlq/queue.conf"
	run --separate-stderr qadmin config dlq set dead_letter=none
	assert_success
	run --separate-stderr qadmin config dlq
	assert_line 'dead_letter = none	(queue.conf:2)'
}

@test "dead_letter: the queue itself, a path or a bad name is refused (78), naming file, line and key" {
	run --separate-stderr qadmin config m set dead_letter=m
	assert_failure 78
	assert_equal "$stderr" "qadmin: config: $SPOOLQ_DIR/m/queue.conf:4: dead_letter: m: is this queue itself"
	grep -qx 'dead_letter = dlq' "$SPOOLQ_DIR/m/queue.conf"
	run --separate-stderr qadmin config m set dead_letter=../dlq
	assert_failure 78
	[[ $stderr == *"dead_letter: ../dlq: not a queue name"* ]] || fail "$stderr"
	run --separate-stderr qadmin config m set dead_letter=.dlq
	assert_failure 78
	[[ $stderr == *"dead_letter: .dlq: not a queue name"* ]] || fail "$stderr"
	printf '[queue]\n; moved\ndead_letter = m\n' >"$SPOOLQ_DIR/m/queue.conf"
	run --separate-stderr qrecv m
	assert_failure 78
	assert_equal "$stderr" "qrecv: $SPOOLQ_DIR/m/queue.conf:3: dead_letter: m: is this queue itself"
	printf '[queue]\ndead_letter = /tmp/x\n' >"$SPOOLQ_DIR/m/queue.conf"
	run --separate-stderr qrecv m
	assert_failure 78
	[[ $stderr == "qrecv: $SPOOLQ_DIR/m/queue.conf:2: dead_letter: /tmp/x: not a queue name"* ]] || fail "$stderr"
}

@test "qworker: a job failing max_attempts=2 times lands in dlq/new with its ID, body, attributes, group and reason" {
	local id name
	local runs=0
	id=$(qsend -p -g grp -k route.x -H colour=blue m 'the body')
	: >"$T/all.log"
	while [[ $(count new dlq) == 0 ]]; do
		runs=$((runs + 1))
		(( runs <= 3 )) || fail "not dead-lettered after 3 --drain runs"
		work --drain m -- sh -c 'cat >/dev/null; exit 3'
		cat "$T/log" >>"$T/all.log"
		if [[ $(count retry m) != 0 ]]; then
			wait_due_over "$(only retry m)"
		fi
	done
	grep -q "$id m 2 dead:attempts" "$T/all.log" || fail "$(cat "$T/all.log")"
	for s in new cur retry dead; do assert_count $s m 0; done
	assert_file_not_exists "$SPOOLQ_DIR/m/attr/$id"
	name=$(only new dlq)
	assert_equal "$name" "$id,g=grp,r=attempts,h"
	assert_equal "$(cat "$SPOOLQ_DIR/dlq/new/$name")" 'the body'
	run --separate-stderr qadmin ls dlq
	assert_success
	[[ $output == *"$id"*"dead=attempts,group=grp"* ]] || fail "$output"
	run --separate-stderr qadmin check dlq
	assert_success
	# A fresh start in dlq: attempt 1, the attributes in the job's
	# environment, the worker's failure record of m kept.
	grep -qx 'status=exit 3' "$(failure "$id" dlq)"
	work --drain dlq -- sh -c 'echo "$SPOOLQ_ID $SPOOLQ_ATTEMPT $SPOOLQ_ATTR_colour $SPOOLQ_KEY" >"$0"' "$T/seen"
	assert_success
	assert_equal "$(cat "$T/seen")" "$id 1 blue route.x"
	assert_count new dlq 0
	assert_file_not_exists "$SPOOLQ_DIR/dlq/attr/$id"
}

@test "qack --reject: into dlq/new as ID,r=rejected (or the reason given); qack -v names it there" {
	local a b
	a=$(qsend -p m one)
	b=$(qsend -p m two)
	qack --reject "$(qrecv m)"
	run --separate-stderr qack -v --reject=bad-input "$(qrecv m)"
	assert_success
	[[ $stderr == "qack: $b,a=1,"*": dlq/new/$b,r=bad-input" ]] || fail "$stderr"
	assert_equal "$(names new dlq)" "$a,r=rejected"$'\n'"$b,r=bad-input"
	assert_equal "$(bodies new dlq)" $'one\ntwo'
	assert_count dead m 0
}

@test "ttl: expired at claim and in qadmin gc, into dlq/new with r=expired and no e=" {
	qadmin config m set ttl=1h >/dev/null
	deliver m "$OLD_ID" aged
	deliver m "${OLD_ID%host}other,e=1700000001" dated
	run --separate-stderr qrecv m
	assert_failure 1
	assert_equal "$(names new dlq)" "$OLD_ID,r=expired"$'\n'"${OLD_ID%host}other,r=expired"
	assert_count dead m 0
	mkq g ttl=1h dead_letter=dlq
	deliver g "${OLD_ID%host}gc" gced
	run --separate-stderr qadmin gc g
	assert_success
	assert_count new g 0
	assert_count dead g 0
	[[ $(names new dlq) == *"${OLD_ID%host}gc,r=expired"* ]] || fail "$(names new dlq)"
}

@test "no dead_letter queue: dead/ as ever, with one warning per run that names the reason" {
	local a b
	qadmin destroy dlq >/dev/null
	a=$(qsend -p m one)
	b=$(qsend -p m two)
	run --separate-stderr qack --reject "$(qrecv m)" "$(qrecv m)"
	assert_success
	assert_equal "$stderr" "qack: $SPOOLQ_DIR/m: dead_letter dlq: no such queue; dead letters kept in dead/"
	assert_equal "$(names dead m)" "$a,a=1,r=rejected"$'\n'"$b,a=1,r=rejected"
	# A file where the queue should be: not a queue, kept in dead/ too.
	: >"$SPOOLQ_DIR/dlq"
	qsend m three >/dev/null
	work --drain m -- sh -c 'exit 100'
	assert_equal "$(count dead m)" 3
	grep -qx "qworker: $SPOOLQ_DIR/m: dead_letter dlq: not a queue; dead letters kept in dead/" "$T/log" ||
	    fail "$(cat "$T/log")"
}

@test "dead_letter: a directory without the queue layout, or a file, in the queue's place is not a queue, as qadmin says of it" {
	local a
	rm -r "$SPOOLQ_DIR/dlq"
	mkdir -p "$SPOOLQ_DIR/dlq/stuff"
	a=$(qsend -p m one)
	run --separate-stderr qack --reject "$(qrecv m)"
	assert_success
	assert_equal "$stderr" "qack: $SPOOLQ_DIR/m: dead_letter dlq: not a queue; dead letters kept in dead/"
	assert_equal "$(names dead m)" "$a,a=1,r=rejected"
	expect_fail 66 qadmin destroy -f dlq
	assert_output --partial 'dlq: not a queue'
	rm -r "$SPOOLQ_DIR/dlq"
	: >"$SPOOLQ_DIR/dlq"
	qsend m two >/dev/null
	run --separate-stderr qack --reject "$(qrecv m)"
	assert_equal "$stderr" "qack: $SPOOLQ_DIR/m: dead_letter dlq: not a queue; dead letters kept in dead/"
	assert_count dead m 2
}

@test "dead_letter: the dead-letter queue is opened once per run, not per dead letter, and opened again when it is made anew" {
	command -v strace >/dev/null || skip "strace is not installed"
	strace -f -qq -o /dev/null true 2>/dev/null || skip "strace cannot trace here"
	local -a r
	qsend m a b c d >/dev/null
	r=($(qrecv -n 4 m))
	strace -E "$(leakless_env)" -f -qq -o "$T/trace" -e trace=openat \
	    qack --reject "${r[@]:0:3}"
	assert_equal "$(count new dlq)" 3
	run grep -c '/\.\./dlq",' "$T/trace"
	assert_output 1
	# Made anew meanwhile: the next dead letter finds the new queue.
	qadmin destroy -f dlq
	mkq dlq
	run -0 qack --reject "${r[3]}"
	assert_equal "$(count new dlq)" 1
	assert_count dead m 0
}

# anew QUEUE DIR: make the directory DIR of QUEUE anew (empty), as a
# destroy that puts the queue back does.
anew() {
	local d
	d=$(qdir "$1")
	mv "$d/$2" "$d/.old-$2"
	mkdir "$d/$2"
	rm -r "$d/.old-$2"
}

@test "dead_letter: a run whose dead-letter queue had its directories made anew forwards into the new ones, a grouped dead letter too" {
	local -a r
	qsend m a b >/dev/null
	r=($(qrecv -n 2 m))
	mkfifo "$T/receipts"
	qack --reject - <"$T/receipts" 2>"$T/err" &
	exec 7>"$T/receipts"
	echo "${r[0]}" >&7
	wait_for eval '[[ $(count new dlq) == 1 ]]'
	run -0 qrecv -A dlq
	anew dlq new
	echo "${r[1]}" >&7
	wait_for eval '[[ $(count new dlq) == 1 ]]'
	run -0 qrecv -A dlq
	qsend -g grp m c >/dev/null
	qrecv m >&7
	wait_for eval '[[ $(count new dlq) == 1 ]]'
	run -0 qrecv -A dlq
	assert_output c
	anew dlq groups
	qsend -g grp m d >/dev/null
	qrecv m >&7
	exec 7>&-
	wait $!
	assert_equal "$(cat "$T/err")" ""
	assert_count dead m 0
	run -0 qrecv -A dlq
	assert_output d
	run -0 qadmin check dlq
}

@test "dead_letter: a grouped dead letter waits in its group of dlq behind the head, as a send into the group does, never beside the head in new/" {
	local head later id
	head=$(qsend -p -g grp dlq head)
	later=$(qsend -p -g grp dlq later)
	id=$(qsend -p -g grp m letter)
	assert_equal "$(names new dlq)" "$head,g=grp"
	run -0 qack --reject "$(qrecv m)"
	# One message of the group in new/, cur/ or retry/: the head.
	assert_equal "$(names new dlq)" "$head,g=grp"
	assert_file_exists "$SPOOLQ_DIR/dlq/groups/grp/$id,g=grp,r=rejected"
	assert_count dead m 0
	run -0 qadmin check dlq
	# One at a time (a batch holds one message per group), in ID order.
	assert_equal "$(qrecv -A dlq; qrecv -A dlq)" $'head\nlater'
	# Promoted in its turn with its reason, shown until its claim.
	assert_equal "$(names new dlq)" "$id,g=grp,r=rejected"
	assert_equal "$(qrecv -A dlq)" letter
}

@test "dead_letter: a symlink in the queue's place, even to the queue itself, is no queue: dead/ with one warning, the queue still served" {
	local a
	rm -r "$SPOOLQ_DIR/dlq"
	ln -s m "$SPOOLQ_DIR/dlq"
	a=$(qsend -p m one)
	run --separate-stderr qack --reject "$(qrecv m)"
	assert_success
	assert_equal "$stderr" "qack: $SPOOLQ_DIR/m: dead_letter dlq: not a queue; dead letters kept in dead/"
	assert_equal "$(names dead m)" "$a,a=1,r=rejected"
	assert_count new m 0
}

@test "dead_letter: the target's max_messages never refuses a dead letter; two queues pointing at each other pass a message on only when it fails again" {
	local id
	qadmin config dlq set max_messages=1 dead_letter=m >/dev/null
	qsend dlq filler >/dev/null
	id=$(qsend -p m one)
	qack --reject "$(qrecv m)"
	assert_equal "$(count new dlq)" 2
	assert_file_exists "$SPOOLQ_DIR/dlq/new/$id,r=rejected"
	# Claimed in dlq, it leaves its reason; rejected there, back to m.
	qack --reject "$(qrecv dlq)"
	qack --reject "$(qrecv dlq)"
	assert_count new dlq 0
	[[ $(names new m) == *"$id,r=rejected"* ]] || fail "$(names new m)"
	assert_equal "$(count new m)" 2
}

@test "overflow = drop-oldest: the message pushed out goes to dlq/new with r=overflow; qsend warns when it cannot" {
	local a b
	mkq o max_messages=1 overflow=drop-oldest dead_letter=dlq
	a=$(qsend -p o one)
	b=$(qsend -p o two)
	assert_equal "$(names new dlq)" "$a,r=overflow"
	assert_equal "$(names new o)" "$b"
	assert_count dead o 0
	qadmin destroy -f dlq >/dev/null
	run --separate-stderr qsend o three
	assert_success
	assert_equal "$stderr" "qsend: $SPOOLQ_DIR/o: dead_letter dlq: no such queue; dead letters kept in dead/"
	assert_equal "$(names dead o)" "$b,r=overflow"
}

@test "dead_letter: a fan-out copy still shared with other queues stays in its own dead/, so dlq never holds one ID twice" {
	local id
	mkq a max_attempts=1 dead_letter=dlq
	mkq b dead_letter=dlq
	qadmin -q exchange create ex fanout
	qadmin -q bind ex a
	qadmin -q bind ex b
	qadmin -q bind ex dlq
	id=$(qsend -p -H k=v ex body)
	qack --retry "$(qrecv a)"
	run --separate-stderr qack --reject "$(qrecv b)"
	assert_success
	assert_equal "$stderr" ""
	assert_equal "$(names dead a)" "$id,a=1,r=attempts,h"
	assert_equal "$(names dead b)" "$id,a=1,r=rejected,h"
	assert_equal "$(names new dlq)" "$id,h"
	run --separate-stderr qadmin check dlq
	assert_success
	# The tap's copy acked: the others keep their sidecar.
	qack "$(qrecv dlq)"
	assert_file_exists "$SPOOLQ_DIR/a/attr/$id"
	assert_file_exists "$SPOOLQ_DIR/b/attr/$id"
}

@test "dead_letter: queues naming each other, both with a ttl: a message expired on arrival stops in the second queue's dead/" {
	qadmin config m set ttl=1h >/dev/null
	qadmin config dlq set ttl=1h dead_letter=m >/dev/null
	deliver m "$OLD_ID" aged
	run --separate-stderr qrecv m
	assert_failure 1
	assert_equal "$(names new dlq)" "$OLD_ID,r=expired"
	run --separate-stderr qrecv dlq
	assert_failure 1
	assert_equal "$stderr" ""
	assert_equal "$(names dead dlq)" "$OLD_ID,r=expired"
	assert_count new dlq 0
	assert_count new m 0
	assert_count dead m 0
	# Expired in qadmin gc: the same.
	deliver m "${OLD_ID%host}gc" gced
	qadmin gc m >/dev/null
	assert_equal "$(names new dlq)" "${OLD_ID%host}gc,r=expired"
	run --separate-stderr qadmin gc dlq
	assert_success
	assert_count new dlq 0
	assert_count new m 0
	[[ $(names dead dlq) == *"${OLD_ID%host}gc,r=expired"* ]] || fail "$(names dead dlq)"
}

@test "dead_letter: a sidecar the target cannot take (attr/ a file or a symlink) keeps the message with it in dead/, with one warning" {
	local id kind
	for kind in file symlink; do
		rm -rf "$SPOOLQ_DIR/dlq/attr"
		case $kind in
		file)	: >"$SPOOLQ_DIR/dlq/attr" ;;
		symlink) mkdir -p "$T/elsewhere"
			ln -s "$T/elsewhere" "$SPOOLQ_DIR/dlq/attr" ;;
		esac
		id=$(qsend -p -H colour=blue m body)
		run --separate-stderr qack --reject "$(qrecv m)"
		assert_success
		assert_equal "$stderr" "qack: $SPOOLQ_DIR/m: dead_letter dlq: not a whole queue; dead letters kept in dead/"
		assert_file_exists "$SPOOLQ_DIR/m/dead/$id,a=1,r=rejected,h"
		grep -q colour "$SPOOLQ_DIR/m/attr/$id" || fail "$kind: sidecar lost"
		assert_count new dlq 0
		[[ -z $(ls "$T/elsewhere" 2>/dev/null) ]] || fail "$(ls "$T/elsewhere")"
		rm -f "$SPOOLQ_DIR"/m/dead/* "$SPOOLQ_DIR"/m/attr/*
	done
	# Without a sidecar nothing is lost: it moves.
	id=$(qsend -p m plain)
	run --separate-stderr qack --reject "$(qrecv m)"
	assert_success
	assert_equal "$(names new dlq)" "$id,r=rejected"
}
