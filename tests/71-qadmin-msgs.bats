#!/usr/bin/env bats
# qadmin purge, redrive, move, retry-now, hold, release and delete: which
# messages each takes, the names they get, the "ACTION ID FROM -> TO"
# lines, -n (nothing changes, "would ..." lines) and -q, errors, and
# admin commands racing a running qworker and a producer without losing
# or doubling a message.

load helpers

setup() {
	spoolq_setup
	mkq q
	mkq other
}

teardown() {
	local p
	for p in ${BG_PIDS:-}; do
		kill -9 "$p" 2>/dev/null || true
	done
	[[ -z ${SHM_Q:-} ]] || rm -rf "$SHM_Q"
	spoolq_teardown
}

# re_escape STRING: STRING as a literal in an extended regular expression.
re_escape() {
	sed 's/[][\.*^$+?(){}|/]/\\&/g' <<<"$1"
}

# assert_said ACTION ID FROM TO: $output has the line "ACTION ID FROM -> TO"
# (TO is a regular expression).
assert_said() {
	assert_line --regexp "^$1 $(re_escape "$2") $3 -> $4\$"
}

# said ACTION: the number of lines of $output that start with "ACTION ".
said() {
	local n
	n=$(grep -c "^$1 " <<<"$output") || true
	echo "${n:-0}"
}

# in_state DIR QUEUE ID: the name of message ID in a state directory
# (fails when it is not there).
in_state() {
	local n
	n=$(names "$1" "$2" | awk -v id="$3" 'index($0, id) == 1 && (length($0) == length(id) || substr($0, length(id) + 1, 1) == ",")')
	[[ -n $n ]] || fail "$3 is not in $2/$1; there: $(names "$1" "$2")"
	printf '%s\n' "$n"
}

# not_in_state DIR QUEUE ID
not_in_state() {
	! names "$1" "$2" | grep -q "^$(re_escape "$3")\(,\|$\)" || fail "$3 is still in $2/$1"
}

# hold_by_hand QUEUE ID: move a ready message into hold/ (as hold ID does).
hold_by_hand() {
	local d
	d=$(qdir "$1")
	mkdir -p "$d/hold"
	mv "$d/new/$(in_state new "$1" "$2")" "$d/hold/$2"
}

# dead_by_hand QUEUE AGE REASON [EXTRA]: plant a dead letter; prints its ID.
dead_by_hand() {
	local d id
	d=$(qdir "$1")
	id=$(printf '%010d.%09d.%d_%d_%08x.handmade' $(( $(now) - $2 )) $((RANDOM * 1000)) $$ "$RANDOM" "$RANDOM")
	printf 'dead %s' "$id" > "$d/tmp/$id"
	mv "$d/tmp/$id" "$d/dead/$id,a=5${4:-},r=$3"
	printf '%s\n' "$id"
}

# mixed: in q, FLIGHT in flight (receipt RECEIPT), RETRY waiting an hour,
# DEAD rejected, READY1 and READY2 ready after one attempt (a=1), HELD held.
mixed() {
	FLIGHT=$(qsend -p q flight)
	RETRY=$(qsend -p q retry)
	DEAD=$(qsend -p q dead)
	RECEIPT=$(qrecv q)
	[[ $(msgid "$RECEIPT") == "$FLIGHT" ]] || fail "claimed $RECEIPT, not $FLIGHT"
	qack --retry --delay 1h "$(qrecv q)"
	qack --reject "$(qrecv q)"
	READY1=$(qsend -p q ready1)
	READY2=$(qsend -p q ready2)
	HELD=$(qsend -p q held)
	hold_by_hand q "$HELD"
	mv "$SPOOLQ_DIR/q/new/$READY1" "$SPOOLQ_DIR/q/new/$READY1,a=1"
	mv "$SPOOLQ_DIR/q/new/$READY2" "$SPOOLQ_DIR/q/new/$READY2,a=1"
	assert_count new q 2
	assert_count cur q 1
	assert_count retry q 1
	assert_count dead q 1
	assert_count hold q 1
}

# lines_in FILE: the number of lines of FILE (0 when missing).
lines_in() {
	if [[ -f $1 ]]; then
		wc -l < "$1"
	else
		echo 0
	fi
}

# ------------------------------------------------------------------ usage

@test "qadmin: usage errors of the message commands exit 64 with the synopsis" {
	local -a c
	local i
	local cmds=(
		"purge"
		"purge --bogus q"
		"redrive"
		"redrive --bogus q"
		"redrive --reason"
		"move q"
		"move"
		"move --bogus q other"
		"retry-now"
		"retry-now q extra"
		"retry-now --bogus q"
		"hold"
		"hold --bogus q"
		"release"
		"release --bogus q"
		"delete q"
		"delete"
		"delete --bogus q x"
	)
	for i in "${cmds[@]}"; do
		read -ra c <<<"$i"
		expect_fail 64 qadmin "${c[@]}"
		assert_usage qadmin
	done
}

@test "qadmin: an unknown option after the operands is still an option (64, synopsis), nothing changed" {
	qsend q a b
	qack --reject "$(qrecv q)"
	local before
	before=$(snapshot "$SPOOLQ_DIR")
	local -a c
	local i
	local cmds=(
		"purge q --bogus"
		"redrive q --bogus"
		"move q other --bogus"
		"retry-now q --bogus"
		"hold q --bogus"
		"release q --bogus"
		"delete q x --bogus"
	)
	for i in "${cmds[@]}"; do
		read -ra c <<<"$i"
		expect_fail 64 qadmin "${c[@]}"
		assert_usage qadmin
		assert_unchanged "$before"
	done
}

@test "qadmin redrive: options may follow the operands (getopt permutes)" {
	local a b
	a=$(qsend -p q a) b=$(qsend -p q b)
	qack --reject "$(qrecv q)"
	qack --reject=bad-input "$(qrecv q)"
	run --separate-stderr qadmin redrive q --reason bad-input --limit 5
	assert_success
	assert_said redrive "$b" dead ready
	assert_equal "${#lines[@]}" 1
	run --separate-stderr qadmin redrive q --to other
	assert_success
	assert_said redrive "$a" dead '.*other.*'
	assert_equal "$(names new other)" "$a"
}

@test "qadmin: bad values of the message commands exit 64 and name the value" {
	local -a c
	local i
	# "VALUE COMMAND...": the message must name VALUE.
	local cmds=(
		"nostate purge q nostate"
		"many redrive --limit many q"
		"0 redrive --limit 0 q"
		"10x redrive --older-than 10x q"
		"Bad,Reason redrive --reason Bad,Reason q"
	)
	local before
	qsend q a
	qack --reject "$(qrecv q)"
	before=$(snapshot "$SPOOLQ_DIR")
	for i in "${cmds[@]}"; do
		read -ra c <<<"$i"
		expect_fail 64 qadmin "${c[@]:1}"
		assert_output --regexp '^qadmin: '
		assert_output --partial "${c[0]}"
		assert_unchanged "$before"
	done
}

@test "qadmin: the message commands on a missing queue exit 66 and change nothing" {
	qsend q a b
	qack --reject "$(qrecv q)"
	local before
	before=$(snapshot "$SPOOLQ_DIR")
	local -a c
	local i
	local cmds=(
		"purge nope"
		"redrive nope"
		"redrive --to nope q"
		"move nope q"
		"move q nope"
		"retry-now nope"
		"hold nope"
		"release nope"
		"delete nope 1764425000.123456789.1_0_00000000.x"
	)
	for i in "${cmds[@]}"; do
		read -ra c <<<"$i"
		expect_fail 66 qadmin "${c[@]}"
		assert_output --partial nope
		assert_unchanged "$before"
	done
}

# ------------------------------------------------------------------ purge

@test "qadmin purge: ready and retry by default; dead, held and in-flight stay" {
	mixed
	run --separate-stderr qadmin purge q
	assert_success
	assert_said purge "$READY1" ready -
	assert_said purge "$READY2" ready -
	assert_said purge "$RETRY" retry -
	assert_equal "$(said purge)" 3
	assert_equal "${#lines[@]}" 3
	assert_count new q 0
	assert_count retry q 0
	assert_count cur q 1
	assert_count dead q 1
	assert_count hold q 1
	# The receipt of the claim still works.
	qack "$RECEIPT"
}

@test "qadmin purge STATE...: dead and held only when named; ready alone leaves retry" {
	mixed
	run --separate-stderr qadmin purge q ready
	assert_success
	assert_equal "$(said purge)" 2
	assert_count new q 0
	assert_count retry q 1
	run --separate-stderr qadmin purge q dead
	assert_success
	assert_said purge "$DEAD" dead -
	assert_equal "${#lines[@]}" 1
	assert_count dead q 0
	assert_count retry q 1
	assert_count hold q 1
	run --separate-stderr qadmin purge q held retry
	assert_success
	assert_said purge "$HELD" held -
	assert_said purge "$RETRY" retry -
	assert_count hold q 0
	assert_count retry q 0
	assert_count cur q 1
	# Directory names work too.
	qsend q x y
	run --separate-stderr qadmin purge q new
	assert_success
	assert_equal "$(said purge)" 2
	assert_count new q 0
}

@test "qadmin purge inflight: refused (64), nothing changed" {
	mixed
	local before
	before=$(snapshot "$SPOOLQ_DIR")
	expect_fail 64 qadmin purge q inflight
	assert_output --regexp '^qadmin: '
	assert_unchanged "$before"
	expect_fail 64 qadmin purge q ready cur
	assert_unchanged "$before"
}

@test "qadmin purge: failure records go with their messages" {
	local id
	id=$(qsend -p q failing)
	run timeout 30 qworker --drain q -- sh -c 'echo oops >&2; exit 75'
	assert_count retry q 1
	assert_file_exists "$SPOOLQ_DIR/q/attr/$id.failure"
	run --separate-stderr qadmin purge q
	assert_success
	assert_count retry q 0
	assert_file_not_exists "$SPOOLQ_DIR/q/attr/$id.failure"
}

@test "qadmin -n purge: 'would purge' lines, nothing changed; -q: no lines" {
	mixed
	local before
	before=$(snapshot "$SPOOLQ_DIR")
	run --separate-stderr qadmin -n purge q ready retry dead held
	assert_success
	assert_said "would purge" "$READY1" ready -
	assert_said "would purge" "$RETRY" retry -
	assert_said "would purge" "$DEAD" dead -
	assert_said "would purge" "$HELD" held -
	assert_equal "${#lines[@]}" 5
	assert_unchanged "$before"
	run --separate-stderr qadmin --dry-run purge q
	assert_success
	assert_equal "$(said 'would purge')" 3
	assert_unchanged "$before"
	run --separate-stderr qadmin -q purge q
	assert_success
	assert_output ''
	assert_count new q 0
	assert_count retry q 0
}

# ---------------------------------------------------------------- redrive

@test "qadmin redrive: every dead letter to new/ as its bare ID, attempts reset, body kept" {
	mkq r max_attempts=1
	local a b c e
	a=$(qsend -p r alpha)
	b=$(qsend -p r beta)
	c=$(qsend -p r gamma)
	qack --reject "$(qrecv r)"
	qack --reject=bad-input "$(qrecv r)"
	qack --retry "$(qrecv r)"	# the last of max_attempts=1: dead, r=attempts
	assert_equal "$(field "$(in_state dead r "$c")" r)" attempts
	assert_count dead r 3
	e=$(dead_by_hand r 100 expired ',e=9999999999')
	run --separate-stderr qadmin redrive r
	assert_success
	assert_said redrive "$a" dead ready
	assert_said redrive "$b" dead ready
	assert_said redrive "$c" dead ready
	assert_said redrive "$e" dead ready
	assert_equal "${#lines[@]}" 4
	assert_count dead r 0
	# A redrive starts afresh: attempts and expiry both go.
	assert_same "$(printf '%s\n' "$a" "$b" "$c" "$e")" "$(names new r)"
	assert_equal "$(cat "$SPOOLQ_DIR/r/new/$c")" gamma
	# Attempts start again: every claim is attempt 1.
	local rc
	for rc in $(qrecv -n 4 r); do
		assert_equal "$(field "$rc" a)" 1
	done
	assert_count cur r 4
}

@test "qadmin redrive, move, delete: attributes (h and attr/ID) go with the message" {
	local id
	id=$(qsend -p -H color=red -k route.a q body)
	assert_file_exists "$SPOOLQ_DIR/q/attr/$id"
	qack --reject "$(qrecv q)"
	field "$(only dead q)" h >/dev/null || fail "no h in $(only dead q)"
	run --separate-stderr qadmin redrive q
	assert_success
	assert_equal "$(names new q)" "$id,h"
	assert_file_exists "$SPOOLQ_DIR/q/attr/$id"
	run --separate-stderr qadmin move q other
	assert_success
	assert_equal "$(names new other)" "$id,h"
	assert_file_exists "$SPOOLQ_DIR/other/attr/$id"
	assert_file_not_exists "$SPOOLQ_DIR/q/attr/$id"
	run --separate-stderr qadmin cat --meta other "$id"
	assert_success
	assert_output --partial color=red
	assert_output --partial route.a
	run --separate-stderr qadmin delete other "$id"
	assert_success
	assert_file_not_exists "$SPOOLQ_DIR/other/attr/$id"
	assert_count new other 0
}

@test "qadmin redrive --reason: only that reason" {
	local a b c
	a=$(qsend -p q a) b=$(qsend -p q b) c=$(qsend -p q c)
	qack --reject "$(qrecv q)"
	qack --reject=bad-input "$(qrecv q)"
	qack --reject "$(qrecv q)"
	run --separate-stderr qadmin redrive --reason bad-input q
	assert_success
	assert_said redrive "$b" dead ready
	assert_equal "${#lines[@]}" 1
	assert_equal "$(names new q)" "$b"
	assert_count dead q 2
	run --separate-stderr qadmin redrive --reason rejected q
	assert_success
	assert_equal "$(said redrive)" 2
	assert_count dead q 0
	run --separate-stderr qadmin redrive --reason timeout q
	assert_success
	assert_output ''
}

@test "qadmin redrive, delete, move with -: an empty list of IDs changes nothing" {
	local a b
	a=$(qsend -p q a) b=$(qsend -p q b)
	qack --reject "$(qrecv q)"
	# A filter that matched nothing must not mean "all".
	run --separate-stderr qadmin redrive q - < /dev/null
	assert_success
	assert_output ''
	assert_equal "$(names dead q | cut -d, -f1)" "$a"
	run --separate-stderr qadmin delete q - < /dev/null
	assert_success
	assert_output ''
	run --separate-stderr qadmin move q other - < /dev/null
	assert_success
	assert_output ''
	assert_equal "$(names new q)" "$b"
	assert_count dead q 1
	assert_count new other 0
	# One ID on the input: that one only.
	run --separate-stderr qadmin redrive q - <<<"$a"
	assert_success
	assert_said redrive "$a" dead ready
	assert_count dead q 0
}

@test "qadmin redrive --older-than: only those dead for longer" {
	local old new
	old=$(qsend -p q old)
	qack --reject "$(qrecv q)"
	# The age is the time in dead/ (ctime, which cannot be set): margins
	# far above any scheduling delay on both sides of 4s.
	sleep 6
	new=$(qsend -p q new)
	qack --reject "$(qrecv q)"
	run --separate-stderr qadmin redrive --older-than 4s q
	assert_success
	assert_said redrive "$old" dead ready
	assert_equal "${#lines[@]}" 1
	assert_equal "$(names new q)" "$old"
	in_state dead q "$new" >/dev/null
	run --separate-stderr qadmin redrive --older-than 1h q
	assert_success
	assert_output ''
	assert_count dead q 1
}

@test "qadmin redrive --limit N: at most N" {
	seq 1 5 | qsend -l q
	local i
	for i in 1 2 3 4 5; do qack --reject "$(qrecv q)"; done
	run --separate-stderr qadmin redrive --limit 2 q
	assert_success
	assert_equal "$(said redrive)" 2
	assert_count new q 2
	assert_count dead q 3
	run --separate-stderr qadmin redrive --reason rejected --limit 1 q
	assert_success
	assert_equal "$(said redrive)" 1
	assert_count dead q 2
	run --separate-stderr qadmin redrive --limit 10 q
	assert_success
	assert_equal "$(said redrive)" 2
	assert_count dead q 0
}

@test "qadmin redrive ID... and - (IDs on stdin)" {
	local -a ids
	mapfile -t ids < <(qsend -p q m1 m2 m3 m4)
	local i
	for i in 1 2 3 4; do qack --reject "$(qrecv q)"; done
	run --separate-stderr qadmin redrive q "${ids[0]}" "${ids[2]}"
	assert_success
	assert_said redrive "${ids[0]}" dead ready
	assert_said redrive "${ids[2]}" dead ready
	assert_equal "${#lines[@]}" 2
	assert_same "$(printf '%s\n' "${ids[0]}" "${ids[2]}")" "$(names new q)"
	run --separate-stderr qadmin redrive q - <<<"${ids[3]}"
	assert_success
	assert_said redrive "${ids[3]}" dead ready
	assert_equal "${#lines[@]}" 1
	assert_count dead q 1
	in_state dead q "${ids[1]}" >/dev/null
}

@test "qadmin redrive --to other: into other's new/, bare ID, body kept" {
	local a b
	a=$(qsend -p q "to the other queue")
	b=$(qsend -p q stays)
	qack --reject "$(qrecv q)"
	qack --reject=keep "$(qrecv q)"
	run --separate-stderr qadmin redrive --to other --reason rejected q
	assert_success
	assert_said redrive "$a" dead '.*other.*'
	assert_equal "${#lines[@]}" 1
	assert_equal "$(names new other)" "$a"
	assert_equal "$(cat "$SPOOLQ_DIR/other/new/$a")" "to the other queue"
	assert_count dead q 1
	assert_count new q 0
	# The other queue's consumers get it at once.
	local r
	r=$(qrecv other)
	assert_equal "$(msgid "$r")" "$a"
	assert_equal "$(field "$r" a)" 1
}

@test "qadmin redrive: an ID that is not a dead letter, or unknown: 66, nothing changed" {
	mixed
	local before
	before=$(snapshot "$SPOOLQ_DIR")
	expect_fail 66 qadmin redrive q "$READY1"
	assert_unchanged "$before"
	expect_fail 66 qadmin redrive q "$FLIGHT"
	assert_unchanged "$before"
	expect_fail 66 qadmin redrive q 1764425000.123456789.1_0_00000000.nosuch
	assert_output --partial nosuch
	assert_unchanged "$before"
	# A known one among them is still redriven.
	expect_fail 66 qadmin redrive q "$DEAD" 1764425000.123456789.1_0_00000000.nosuch
	assert_said redrive "$DEAD" dead ready
	in_state new q "$DEAD" >/dev/null
}

@test "qadmin -n redrive: 'would redrive' lines, nothing changed" {
	local a
	a=$(qsend -p q a)
	qack --reject "$(qrecv q)"
	local before
	before=$(snapshot "$SPOOLQ_DIR")
	run --separate-stderr qadmin -n redrive q
	assert_success
	assert_said "would redrive" "$a" dead ready
	assert_unchanged "$before"
	run --separate-stderr qadmin -n redrive --to other q "$a"
	assert_success
	assert_equal "$(said 'would redrive')" 1
	assert_unchanged "$before"
}

# ------------------------------------------------------------------- move

@test "qadmin move: every ready message to other's new/, attempts kept; other states stay" {
	mixed
	run --separate-stderr qadmin move q other
	assert_success
	assert_said move "$READY1" ready '.*other.*'
	assert_said move "$READY2" ready '.*other.*'
	assert_equal "${#lines[@]}" 2
	assert_count new q 0
	assert_same "$(printf '%s\n' "$READY1,a=1" "$READY2,a=1")" "$(names new other)"
	assert_equal "$(cat "$SPOOLQ_DIR/other/new/$READY1,a=1")" ready1
	assert_count cur q 1
	assert_count retry q 1
	assert_count dead q 1
	assert_count hold q 1
	# Claimable in the other queue at once, attempts counting on.
	local r
	r=$(qrecv other)
	assert_equal "$(field "$r" a)" 2
}

@test "qadmin move ID...: from retry, held and dead too, with their state fields dropped" {
	mixed
	run --separate-stderr qadmin move q other "$RETRY" "$HELD" "$DEAD"
	assert_success
	assert_said move "$RETRY" retry '.*other.*'
	assert_said move "$HELD" held '.*other.*'
	assert_said move "$DEAD" dead '.*other.*'
	assert_same "$(printf '%s\n' "$RETRY,a=1" "$HELD" "$DEAD,a=1")" "$(names new other)"
	assert_count new q 2
	assert_count retry q 0
	assert_count hold q 0
	assert_count dead q 0
}

@test "qadmin move: an in-flight message is never moved" {
	mixed
	local before
	before=$(snapshot "$SPOOLQ_DIR")
	expect_fail '65|66' qadmin move q other "$FLIGHT"
	assert_unchanged "$before"
	qack "$RECEIPT"
}

@test "qadmin move -: IDs on stdin" {
	local -a ids
	mapfile -t ids < <(qsend -p q m1 m2 m3)
	run --separate-stderr qadmin move q other - < <(printf '%s\n' "${ids[1]}" "${ids[2]}")
	assert_success
	assert_equal "$(said move)" 2
	assert_same "$(printf '%s\n' "${ids[1]}" "${ids[2]}")" "$(names new other)"
	assert_equal "$(names new q)" "${ids[0]}"
}

@test "qadmin move and redrive --to: a queue on another file system gets a copy, the source loses it" {
	local other=/dev/shm/spoolq-test.$$.$BATS_TEST_NUMBER
	[[ -d /dev/shm && -w /dev/shm ]] || skip "no writable /dev/shm"
	SHM_Q=$other
	[[ $(stat -c %d /dev/shm) != $(stat -c %d "$SPOOLQ_DIR") ]] || skip "/dev/shm is on the spool's file system"
	rm -rf "$other"
	qadmin create "$other" >/dev/null
	head -c 300000 /dev/urandom > "$T/body"
	local a d
	a=$(qsend -p -f q "$T/body")
	mv "$SPOOLQ_DIR/q/new/$a" "$SPOOLQ_DIR/q/new/$a,a=2"
	d=$(qsend -p q dead-one)
	run timeout 30 qworker --drain q -- sh -c 'cat >/dev/null; case $SPOOLQ_ID in "$0") echo bad >&2; exit 100 ;; *) exit 75 ;; esac' "$d"
	in_state dead q "$d" >/dev/null
	# The retry of a (a=3 now) is brought back.
	qadmin -q retry-now q
	run --separate-stderr qadmin move q "$other"
	assert_success
	assert_equal "$(said move)" 1
	assert_equal "$(names new "$other")" "$a,a=3"
	cmp "$T/body" "$other/new/$a,a=3"
	assert_count new q 0
	assert_equal "$(ls -A "$other/tmp")" ""
	run --separate-stderr qadmin redrive --to "$other" q
	assert_success
	assert_said redrive "$d" dead '.*'
	in_state new "$other" "$d" >/dev/null
	assert_equal "$(cat "$other/new/$d")" dead-one
	assert_count dead q 0
	# The failure record followed it.
	assert_file_exists "$other/attr/$d.failure"
	assert_file_not_exists "$SPOOLQ_DIR/q/attr/$d.failure"
	rm -rf "$other"
}

@test "qadmin -n move: 'would move' lines, nothing changed" {
	mixed
	local before
	before=$(snapshot "$SPOOLQ_DIR")
	run --separate-stderr qadmin -n move q other
	assert_success
	assert_said "would move" "$READY1" ready '.*other.*'
	assert_equal "${#lines[@]}" 2
	assert_unchanged "$before"
	run --separate-stderr qadmin -n move q other "$DEAD"
	assert_success
	assert_said "would move" "$DEAD" dead '.*other.*'
	assert_unchanged "$before"
}

# -------------------------------------------------------------- retry-now

@test "qadmin retry-now: every retry message to new/ at once, attempts kept" {
	local a b c r
	a=$(qsend -p q a)
	b=$(qsend -p q b)
	c=$(qsend -p q c)
	qack --retry --delay 1h "$(qrecv q)"
	qack --retry --delay 2h "$(qrecv q)"
	assert_count retry q 2
	run --separate-stderr qadmin retry-now q
	assert_success
	assert_said retry-now "$a" retry ready
	assert_said retry-now "$b" retry ready
	assert_equal "${#lines[@]}" 2
	assert_count retry q 0
	assert_same "$(printf '%s\n' "$a,a=1" "$b,a=1" "$c")" "$(names new q)"
	# Claimed at once, the second attempt.
	r=$(qrecv q)
	assert_equal "$(msgid "$r")" "$a"
	assert_equal "$(field "$r" a)" 2
	# Nothing waiting: nothing to say.
	run --separate-stderr qadmin retry-now q
	assert_success
	assert_output ''
}

@test "qadmin -n retry-now: 'would retry-now' lines, nothing changed" {
	local a
	a=$(qsend -p q a)
	qack --retry --delay 1h "$(qrecv q)"
	local before
	before=$(snapshot "$SPOOLQ_DIR")
	run --separate-stderr qadmin -n retry-now q
	assert_success
	assert_said "would retry-now" "$a" retry ready
	assert_unchanged "$before"
}

# ------------------------------------------------------------ hold/release

@test "qadmin hold QUEUE: claims get nothing, sends are accepted; release: claims work again" {
	qsend q one two
	run --separate-stderr qadmin hold q
	assert_success
	assert_file_exists "$SPOOLQ_DIR/q/held"
	expect_fail 1 qrecv q
	expect_fail 1 qrecv -w 1 q
	run qsend q three
	assert_success
	assert_count new q 3
	run timeout 20 qworker --drain q -- true
	assert_success
	assert_count new q 3
	assert_count cur q 0
	# Holding twice is fine.
	run --separate-stderr qadmin hold q
	assert_success
	run --separate-stderr qadmin release q
	assert_success
	assert_file_not_exists "$SPOOLQ_DIR/q/held"
	run qrecv -n 10 q
	assert_success
	assert_equal "${#lines[@]}" 3
}

@test "qadmin hold QUEUE: claims in flight finish as usual" {
	qsend q a b
	local r
	r=$(qrecv q)
	qadmin hold q
	run qack "$r"
	assert_success
	qadmin -q release q
	r=$(qrecv q)
	run qack --retry "$r"
	assert_success
}

@test "qadmin release QUEUE: a waiting qworker resumes without a new send" {
	qadmin hold q
	qsend q a b c
	qworker q -- sh -c 'cat >> "$0"; echo >> "$0"' "$T/out" 2>"$T/wlog" 3>&- &
	BG_PIDS=$!
	sleep 1
	[[ ! -s $T/out ]] || fail "a held queue handed out: $(cat "$T/out")"
	assert_count new q 3
	qadmin release q
	wait_until 5 eval '[[ $(lines_in "$T/out") == 3 ]]' ||
	    fail "qworker did not resume within 5 s of 'qadmin release' (handled: $(lines_in "$T/out"), ready: $(count new q))"
	kill -TERM "$BG_PIDS"
	wait "$BG_PIDS" || true
}

@test "qadmin hold ID...: ready and retry messages to hold/, never claimed; release ID: back" {
	local a b c r
	a=$(qsend -p q a) b=$(qsend -p q b) c=$(qsend -p q c)
	qack --retry --delay 1h "$(qrecv q)"
	run --separate-stderr qadmin hold q "$a" "$b"
	assert_success
	assert_said hold "$a" retry held
	assert_said hold "$b" ready held
	assert_equal "${#lines[@]}" 2
	assert_same "$(printf '%s\n' "$a,a=1" "$b")" "$(names hold q)"
	assert_file_not_exists "$SPOOLQ_DIR/q/held"
	# Only c is handed out.
	r=$(qrecv q)
	assert_equal "$(msgid "$r")" "$c"
	expect_fail 1 qrecv q
	qadmin retry-now q >/dev/null
	expect_fail 1 qrecv q
	run --separate-stderr qadmin release q "$a"
	assert_success
	assert_said release "$a" held ready
	assert_equal "${#lines[@]}" 1
	r=$(qrecv q)
	assert_equal "$(msgid "$r")" "$a"
	assert_equal "$(field "$r" a)" 2
	assert_equal "$(names hold q)" "$b"
}

@test "qadmin release QUEUE: releases every held message too" {
	local a b
	a=$(qsend -p q a) b=$(qsend -p q b)
	qadmin hold q "$a" "$b" >/dev/null
	qadmin hold q
	run --separate-stderr qadmin release q
	assert_success
	assert_said release "$a" held ready
	assert_said release "$b" held ready
	assert_file_not_exists "$SPOOLQ_DIR/q/held"
	assert_count hold q 0
	assert_same "$(printf '%s\n' "$a" "$b")" "$(names new q)"
}

@test "qadmin hold ID: in-flight and dead messages are refused, nothing changed" {
	mixed
	local before
	before=$(snapshot "$SPOOLQ_DIR")
	expect_fail '65|66' qadmin hold q "$FLIGHT"
	assert_unchanged "$before"
	expect_fail '65|66' qadmin hold q "$DEAD"
	assert_unchanged "$before"
	expect_fail '65|66' qadmin release q "$READY1"
	assert_unchanged "$before"
}

@test "qadmin -n hold and release: nothing changed, 'would' lines" {
	local a
	a=$(qsend -p q a)
	local before
	before=$(snapshot "$SPOOLQ_DIR")
	run --separate-stderr qadmin -n hold q
	assert_success
	assert_output --regexp '^would hold'
	assert_unchanged "$before"
	run --separate-stderr qadmin -n hold q "$a"
	assert_success
	assert_said "would hold" "$a" ready held
	assert_unchanged "$before"
	qadmin hold q "$a" >/dev/null
	qadmin hold q
	before=$(snapshot "$SPOOLQ_DIR")
	run --separate-stderr qadmin -n release q
	assert_success
	assert_output --regexp '^would release'
	assert_said "would release" "$a" held ready
	assert_unchanged "$before"
}

# ----------------------------------------------------------------- delete

@test "qadmin delete: a message in any state, with its failure record" {
	mixed
	local f
	mkq w
	# A failure record for a message in retry/.
	f=$(qsend -p w failing)
	run timeout 30 qworker --drain w -- sh -c 'exit 75'
	assert_file_exists "$SPOOLQ_DIR/w/attr/$f.failure"
	run --separate-stderr qadmin delete w "$f"
	assert_success
	assert_said delete "$f" retry -
	assert_count retry w 0
	assert_file_not_exists "$SPOOLQ_DIR/w/attr/$f.failure"
	run --separate-stderr qadmin delete q "$READY1" "$FLIGHT" "$RETRY" "$DEAD" "$HELD"
	assert_success
	assert_said delete "$READY1" ready -
	assert_said delete "$FLIGHT" inflight -
	assert_said delete "$RETRY" retry -
	assert_said delete "$DEAD" dead -
	assert_said delete "$HELD" held -
	assert_equal "${#lines[@]}" 5
	assert_count cur q 0
	assert_count retry q 0
	assert_count dead q 0
	assert_count hold q 0
	assert_equal "$(names new q)" "$READY2,a=1"
	# The consumer's receipt names nothing now.
	expect_fail 66 qack "$RECEIPT"
}

@test "qadmin delete: an unknown ID exits 66; the known ones are deleted" {
	local a b
	a=$(qsend -p q a) b=$(qsend -p q b)
	expect_fail 66 qadmin delete q "$a" 1764425000.123456789.1_0_00000000.nosuch
	assert_output --partial nosuch
	assert_equal "$(names new q)" "$b"
}

@test "qadmin -n delete: 'would delete' lines, nothing changed" {
	mixed
	local before
	before=$(snapshot "$SPOOLQ_DIR")
	run --separate-stderr qadmin -n delete q "$FLIGHT" "$DEAD"
	assert_success
	assert_said "would delete" "$FLIGHT" inflight -
	assert_said "would delete" "$DEAD" dead -
	assert_unchanged "$before"
}

# ------------------------------------------------------------------ races

@test "qadmin hold, release, retry-now, stats, ls race qworker -j 4 and a producer: each body handled exactly once" {
	mkq r durability=none retry_delay=1h retry_max_delay=1h
	local n=500 i
	# Bodies ending in 7 fail their first attempt and wait an hour in
	# retry/, unless retry-now brings them back.
	qworker -q -j 4 r -- sh -c 'b=$(cat); case $b in *7) [ "$SPOOLQ_ATTEMPT" -gt 1 ] || exit 75 ;; esac; printf "%s\n" "$b" >> "$0"' "$T/done" 2>"$T/wlog" 3>&- &
	local wpid=$!
	(
		while [[ ! -e $T/stop ]]; do
			qadmin -q hold r || echo "hold $?"
			qadmin stats --json r >/dev/null || echo "stats --json $?"
			qadmin ls r >/dev/null || echo "ls $?"
			ids=$(qadmin ls -n 3 r ready | awk '$1 == "ready" { print $2 }')
			if [[ -n $ids ]]; then
				# Racing claims may take some first: 66 then.
				qadmin -q hold r $ids 2>/dev/null; s=$?
				(( s == 0 || s == 66 )) || echo "hold IDs $s"
			fi
			sleep 0.02
			qadmin -q release r || echo "release $?"
			qadmin -q retry-now r || echo "retry-now $?"
			qadmin stats --prometheus r >/dev/null || echo "stats --prometheus $?"
			qadmin ls --json r >/dev/null || echo "ls --json $?"
			sleep 0.02
		done
	) > "$T/adminerr" 2>&1 3>&- &
	local apid=$!
	BG_PIDS="$wpid $apid"
	for i in $(seq 0 49); do
		seq -f "m-%g" $((i * 10 + 1)) $((i * 10 + 10)) | qsend -l r
		sleep 0.01
	done
	: > "$T/stop"
	wait "$apid" || true
	qadmin -q release r
	# Until all are done: retries back at once.  (A dot-file in new/ wakes a
	# waiting worker without being a message; release waking workers is
	# tested on its own above.)
	local deadline=$((SECONDS + 40))
	while (( $(lines_in "$T/done") < n && SECONDS < deadline )); do
		qadmin -q retry-now r
		: > "$SPOOLQ_DIR/r/new/.wake" && rm -f "$SPOOLQ_DIR/r/new/.wake"
		sleep 0.2
	done
	kill -TERM "$wpid"
	wait "$wpid" || true
	[[ ! -s $T/adminerr ]] || fail "admin commands failed while racing:"$'\n'"$(sort "$T/adminerr" | uniq -c)"
	local dups
	dups=$(sort "$T/done" | uniq -d)
	[[ -z $dups ]] || fail "handled more than once: $(head <<<"$dups")"
	assert_lines_eq "$(seq -f 'm-%g' 1 $n | sort)" "$(sort "$T/done")"
	local s
	for s in new cur retry dead hold; do
		assert_count "$s" r 0
	done
}
