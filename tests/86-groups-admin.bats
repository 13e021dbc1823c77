#!/usr/bin/env bats
# qadmin and message groups: a message waiting behind its group's head, in
# groups/KEY/, is a ready message blocked by its group (state "grouped").
# Every command that names messages by ID or by state finds it there, and
# every move keeps a grouped message's g= field, so that it stays in its
# group; the group's baton is handed on whenever its holder leaves, so
# that a group is never blocked by a message that is gone, and never has
# two messages out at once.  spoolq(5) "Message groups", qadmin(1).

load helpers

setup() {
	spoolq_setup
	mkq q durability=none
	mkq o durability=none
	Q=$(qdir q)
	O=$(qdir o)
}

teardown() {
	spoolq_teardown
}

# head_of KEY [QUEUE]: the ID the baton of group KEY names ("" when free).
head_of() {
	local b
	b=$(cd "$(qdir "${2:-q}")/groups/$1" && ls -1A |
	    grep -E '^,(free|head=|gone=)') || return 1
	case $b in
	,free) echo ;;
	,head=*) echo "${b#,head=}" ;;
	*) echo "$b" ;;
	esac
}

# drain QUEUE: claim and ack one message at a time, printing each body on
# its own line, until none is ready.
drain() {
	local r
	while r=$(qrecv "$1"); do
		cat "$r"
		echo
		qack "$r"
	done
}

# three KEY [QUEUE]: send KEY1 KEY2 KEY3 into group KEY, print their IDs.
three() {
	local i
	for i in 1 2 3; do
		qsend -p -g "$1" "${2:-q}" "$1$i"
	done
}

@test "qadmin cat and cat --meta find a message waiting in its group" {
	mapfile -t id < <(three A)
	[[ -f $Q/groups/A/${id[1]},g=A ]] || fail "not waiting: $(names groups/A q)"
	run --separate-stderr qadmin cat q "${id[1]}"
	assert_success
	assert_output A2
	run --separate-stderr qadmin cat --meta q "${id[1]}"
	assert_success
	assert_line "state: grouped"
	assert_line "name: ${id[1]},g=A"
	assert_line "group: A"
	# The head, in new/, says its group too.
	run --separate-stderr qadmin cat --meta q "${id[0]}"
	assert_line "state: ready"
	assert_line "group: A"
}

@test "qadmin delete of a waiting message: the group goes on in order without it" {
	mapfile -t id < <(three A)
	run --separate-stderr qadmin delete q "${id[1]}"
	assert_success
	assert_output "delete ${id[1]} grouped -> -"
	assert_count groups/A q 2	# the baton and A3
	assert_equal "$(head_of A)" "${id[0]}"
	assert_equal "$(drain q)" $'A1\nA3'
	assert_equal "$(head_of A)" ""
}

@test "qadmin delete of the head, ready or in flight, hands the baton to the next of its group" {
	mapfile -t id < <(three A)
	qadmin -q delete q "${id[0]}"
	assert_equal "$(head_of A)" "${id[1]}"
	r=$(qrecv q)
	assert_equal "$(cat "$r")" A2
	# In flight: its consumer loses it, the group does not.
	qadmin -q delete q "${id[1]}"
	assert_equal "$(head_of A)" "${id[2]}"
	expect_fail 66 qack "$r"
	assert_output --partial "lease lost or message already settled"
	assert_equal "$(drain q)" A3
}

@test "qadmin delete of a head whose promotion was cut short frees the group" {
	mapfile -t id < <(three A)
	# A crash between take and promote: the head still in groups/A/.
	mv "$Q/new/${id[0]},g=A" "$Q/groups/A/${id[0]},g=A"
	assert_equal "$(head_of A)" "${id[0]}"
	run --separate-stderr qadmin delete q "${id[0]}"
	assert_success
	assert_output "delete ${id[0]} grouped -> -"
	assert_equal "$(head_of A)" "${id[1]}"
	assert_equal "$(drain q)" $'A2\nA3'
}

@test "qadmin purge takes the messages waiting in groups with the ready ones, and leaves each group free" {
	three A >/dev/null
	three B >/dev/null
	qsend q plain
	run --separate-stderr qadmin purge q
	assert_success
	assert_equal "$(grep -c ' grouped -> -$' <<<"$output")" 4
	assert_equal "$(grep -c ' ready -> -$' <<<"$output")" 3
	# The waiting ones go first: no head's deletion promoted one of them.
	assert_equal "$(grep -n ' ready -> -$' <<<"$output" | head -1 | cut -d: -f1)" 5
	assert_count new q 0
	assert_count groups/A q 1
	assert_count groups/B q 1
	assert_equal "$(head_of A)" ""
	assert_equal "$(head_of B)" ""
	run qrecv q
	assert_failure 1
	# The groups work on.
	qsend -g A q again
	assert_equal "$(drain q)" again
}

@test "qadmin purge ready includes the grouped; purge grouped takes only them; purge dead none of them" {
	mapfile -t id < <(three A)
	qadmin -q purge q dead
	assert_count groups/A q 3
	run --separate-stderr qadmin purge q grouped
	assert_success
	assert_equal "$(wc -l <<<"$output")" 2
	refute_output --partial " ready -> "
	assert_count groups/A q 1
	assert_equal "$(head_of A)" "${id[0]}"
	three A >/dev/null
	qadmin -q purge q ready
	assert_count new q 0
	assert_count groups/A q 1
	assert_equal "$(head_of A)" ""
	expect_fail 64 qadmin purge q inflight
	expect_fail 64 qadmin purge q nosuch
	assert_output --partial "grouped"
}

@test "qadmin hold of a waiting message takes it out of its group; released, it joins its group again" {
	mapfile -t id < <(three A)
	run --separate-stderr qadmin hold q "${id[1]}"
	assert_success
	assert_output "hold ${id[1]} grouped -> held"
	assert_equal "$(names hold q)" "${id[1]},g=A"
	assert_equal "$(head_of A)" "${id[0]}"
	r=$(qrecv q)
	assert_equal "$(cat "$r")" A1
	# Released while A1 is in flight: it waits behind it, never beside.
	qadmin -q release q "${id[1]}"
	run qrecv q
	assert_failure 1
	assert_equal "$(head_of A)" "${id[0]}"
	qack "$r"
	assert_equal "$(drain q)" $'A2\nA3'
}

@test "qadmin hold of a group's head hands the baton on; the held head keeps g=" {
	mapfile -t id < <(three A)
	qadmin -q hold q "${id[0]}"
	assert_equal "$(names hold q)" "${id[0]},g=A"
	assert_equal "$(head_of A)" "${id[1]}"
	assert_equal "$(drain q)" $'A2\nA3'
	qadmin -q release q "${id[0]}"
	assert_equal "$(drain q)" A1
}

@test "qadmin move by ID of a waiting message: it leaves its group and joins the group of the same key in the other queue" {
	mapfile -t id < <(three A)
	run --separate-stderr qadmin move q o "${id[2]}"
	assert_success
	assert_output "move ${id[2]} grouped -> o/ready"
	assert_equal "$(names new o)" "${id[2]},g=A"
	assert_equal "$(head_of A)" "${id[0]}"
	assert_equal "$(drain q)" $'A1\nA2'
	# In o, its first claim takes the baton of o's group A ...
	r=$(qrecv o)
	assert_equal "$(cat "$r")" A3
	assert_equal "$(head_of A o)" "${id[2]}"
	# ... and the next of that group waits for it.
	qsend -g A o next-in-o
	run qrecv o
	assert_failure 1
	qack "$r"
	assert_equal "$(drain o)" next-in-o
}

@test "qadmin move of all ready messages takes whole groups in order; a group whose head is in flight stays" {
	mapfile -t b < <(three B)
	mapfile -t a < <(three A)
	qsend q plain
	r=$(qrecv q)		# B1, the oldest
	assert_equal "$(cat "$r")" B1
	run --separate-stderr qadmin move q o
	assert_success
	assert_equal "$(wc -l <<<"$output")" 4
	# One head at a time: each group's next left q after its head.
	assert_line "move ${a[0]} ready -> o/ready"
	[[ $(grep -n "${a[0]}" <<<"$output" | cut -d: -f1) -lt $(grep -n "${a[1]}" <<<"$output" | cut -d: -f1) ]] ||
	    fail "A2 before A1: $output"
	assert_line "move ${a[1]} ready -> o/ready"
	assert_line "move ${a[2]} ready -> o/ready"
	[[ $(grep -n "${a[1]}" <<<"$output" | cut -d: -f1) -lt $(grep -n "${a[2]}" <<<"$output" | cut -d: -f1) ]] ||
	    fail "A3 before A2: $output"
	assert_count groups/A q 1
	assert_equal "$(head_of A)" ""
	# B stays whole behind its claimed head.
	assert_count groups/B q 3
	assert_equal "$(head_of B)" "${b[0]}"
	assert_equal "$(drain o | sort)" $'A1\nA2\nA3\nplain'
	qack "$r"
	assert_equal "$(drain q)" $'B2\nB3'
}

@test "qadmin move of all: the messages of a group are claimed in the other queue in their order" {
	three A >/dev/null
	qadmin -q move q o
	assert_equal "$(drain o)" $'A1\nA2\nA3'
}

@test "qadmin replay keeps the group of a grouped message: one at a time again, in order" {
	qadmin config q set archive=yes >/dev/null
	three A >/dev/null
	qsend q plain
	assert_equal "$(drain q)" $'A1\nA2\nA3\nplain'
	run --separate-stderr qadmin replay q
	assert_success
	assert_equal "$(wc -l <<<"$output")" 4
	assert_count new q 2		# A1 and plain
	assert_equal "$(names new q | grep -c ',g=A')" 1
	assert_count groups/A q 3	# the baton, A2 and A3
	run bodies groups/A q
	assert_output --partial A2
	assert_output --partial A3
	# Replayed with --to, into the other queue's group.
	qadmin -q replay --to o q
	assert_equal "$(names new o | grep -c ',g=A')" 1
	assert_count groups/A o 3
	assert_equal "$(drain o)" $'A1\nA2\nA3\nplain'
}

@test "qadmin recover gives a lapsed head back to new/ with its g=; its group waits for it" {
	mapfile -t id < <(three A)
	r=$(qrecv q)
	# Its lease over: l= in the past, as a name may say.
	mv "$r" "$Q/cur/${id[0]},a=1,l=1000000000,g=A"
	run --separate-stderr qadmin recover q
	assert_success
	assert_equal "$(names new q)" "${id[0]},a=1,g=A"
	assert_equal "$(head_of A)" "${id[0]}"
	assert_equal "$(drain q)" $'A1\nA2\nA3'
}

@test "qadmin redrive, into its queue or another, keeps g=: the message joins its group behind the head" {
	mapfile -t id < <(three A)
	qack --reject "$(qrecv q)"
	assert_equal "$(names dead q)" "${id[0]},a=1,g=A,r=rejected"
	r=$(qrecv q)
	assert_equal "$(cat "$r")" A2
	qadmin -q redrive q
	assert_equal "$(names new q)" "${id[0]},g=A"
	run qrecv q
	assert_failure 1
	qack "$r"
	assert_equal "$(drain q)" $'A1\nA3'
	# Dead again, then redriven into o.
	qsend -g A q A4
	qack --reject "$(qrecv q)"
	qadmin -q redrive --to o q
	assert_equal "$(field "$(only new o)" g)" A
	assert_equal "$(drain o)" A4
}

@test "qadmin retry-now keeps g= and the baton of a head waiting in retry/" {
	mapfile -t id < <(three A)
	qack --retry --delay 1h "$(qrecv q)"
	run --separate-stderr qadmin retry-now q
	assert_success
	assert_equal "$(names new q)" "${id[0]},a=1,g=A"
	assert_equal "$(head_of A)" "${id[0]}"
	assert_equal "$(drain q)" $'A1\nA2\nA3'
}

@test "qadmin gc keeps the sidecar of a message waiting in its group, however old" {
	mapfile -t id < <(for i in 1 2; do qsend -p -g A -H n=$i q "A$i"; done)
	touch -d '2 hours ago' "$Q/attr/${id[0]}" "$Q/attr/${id[1]}"
	run --separate-stderr qadmin gc q
	assert_success
	refute_output --partial "attr/"
	qadmin -q gc q
	[[ -f $Q/attr/${id[1]} ]] || fail "sidecar of ${id[1]} removed"
	qack "$(qrecv q)"
	r=$(qrecv --meta q)
	grep -q 'n=2' <<<"$r" || fail "attributes lost: $r"
}

@test "qadmin check knows the messages waiting in groups; what is no message there goes to quarantine" {
	mapfile -t id < <(three A)
	run --separate-stderr qadmin check q
	assert_success
	x=2000000000.000000000.1_0_00000000.x
	mkfifo "$Q/groups/A/$x,g=A"
	echo other >"$Q/groups/A/$x.y,g=B"
	run --separate-stderr qadmin check q
	assert_failure 1
	assert_equal "$(grep -c . <<<"$stderr")" 2
	[[ $stderr == *"not a regular file (FIFO): groups/A/$x,g=A"* ]] || fail "$stderr"
	[[ $stderr == *"name without its group's g= field: groups/A/$x.y,g=B"* ]] || fail "$stderr"
	# cat and delete name the FIFO, never open it.
	expect_fail 65 qadmin cat q "$x"
	assert_output --partial "q/groups/A/$x,g=A: not a regular file (FIFO)"
	run --separate-stderr qadmin check --repair q
	assert_success
	assert_line "quarantine $x groups/A/$x,g=A -> quarantine/groups/$x,g=A"
	[[ -p $Q/quarantine/groups/$x,g=A ]] || fail "not quarantined"
	[[ -f $Q/quarantine/groups/$x.y,g=B ]] || fail "not quarantined"
	run --separate-stderr qadmin check q
	assert_success
	assert_equal "$(drain q)" $'A1\nA2\nA3'
}

# Entries of a group's directory that are not regular files, under names
# of the groups' own (add markers, other comma and dot names): the group
# code never opens, removes or follows them, nor retires a group that
# holds one (its directory could not be removed); check reports each and
# --repair moves it into quarantine/groups/, after which the group goes.
@test "qadmin check reports and quarantines every entry of a group's directory that is not a regular file, add markers too; the group code leaves them" {
	local G=$Q/groups/K e
	three K >/dev/null
	mkdir "$G/,add.dir"
	mkfifo "$G/,add.fifo"
	ln -s /etc/passwd "$G/,add.sym"
	mkfifo "$G/,other"
	mkdir "$G/.x"
	assert_equal "$(drain q)" $'K1\nK2\nK3'
	# Older than the grace of a marker, in a group idle for an hour.
	touch -h -d '2 hours ago' "$G/,add.dir" "$G/,add.fifo" "$G/,add.sym" \
	    "$G/,other" "$G/.x" "$G"
	qadmin recover q >/dev/null
	[[ -d $G/,add.dir && -p $G/,add.fifo && -L $G/,add.sym &&
	    -p $G/,other && -d $G/.x ]] ||
	    fail "planted entries removed: $(ls -A "$Q/groups" "$G" 2>&1)"
	assert_equal "$(ls -A "$Q/groups" | grep -c '^\.gc\.')" 0
	run --separate-stderr qadmin check q
	assert_failure 1
	assert_equal "$(grep -c . <<<"$stderr")" 5
	[[ $stderr == *"add marker not a regular file (directory): groups/K/,add.dir"* ]] || fail "$stderr"
	[[ $stderr == *"add marker not a regular file (FIFO): groups/K/,add.fifo"* ]] || fail "$stderr"
	[[ $stderr == *"add marker not a regular file (symlink): groups/K/,add.sym"* ]] || fail "$stderr"
	[[ $stderr == *"entry not a regular file (FIFO): groups/K/,other"* ]] || fail "$stderr"
	[[ $stderr == *"entry not a regular file (directory): groups/K/.x"* ]] || fail "$stderr"
	run --separate-stderr qadmin check --repair q
	assert_success
	for e in ,add.dir ,add.fifo ,add.sym ,other .x; do
		[[ -e $Q/quarantine/groups/$e || -L $Q/quarantine/groups/$e ]] ||
		    fail "$e not quarantined: $(ls -A "$Q/quarantine/groups")"
		[[ ! -e $G/$e && ! -L $G/$e ]] || fail "$e left in groups/K"
	done
	[[ -L $Q/quarantine/groups/,add.sym ]] || fail "the symlink was followed"
	run --separate-stderr qadmin check q
	assert_success
	touch -d '2 hours ago' "$G"
	qadmin recover q >/dev/null
	[[ ! -e $G ]] || fail "idle group K kept: $(ls -A "$Q/groups")"
}

# A removal of a group cut short leaves groups/.gc.KEY.RAND; finishing it
# removes the add markers, but never an entry of another kind planted
# under such a name.
@test "a group removal being finished removes its add markers, never an entry of another kind under a marker's name" {
	local D=$Q/groups/.gc.K.0000abcd
	mkdir -p "$D"
	: >"$D/,add.0000000100000001"
	mkfifo "$D/,add.fifo"
	mkdir "$D/,add.dir"
	touch -d '2 hours ago' "$D/,add.0000000100000001" "$D/,add.fifo" \
	    "$D/,add.dir" "$D"
	qadmin recover q >/dev/null
	[[ ! -e $D/,add.0000000100000001 ]] || fail "marker kept: $(ls -A "$D")"
	[[ -p $D/,add.fifo && -d $D/,add.dir ]] ||
	    fail "planted entries removed: $(ls -A "$D" 2>&1)"
}

@test "qadmin gc dead-letters an expired message waiting in its group; the group goes on" {
	mapfile -t id < <(three A)
	# Sent in 2001 by its ID: past a ttl of an hour.
	old=1000000000.000000000.1_0_00000000.old
	echo old >"$Q/tmp/$old"
	mv "$Q/tmp/$old" "$Q/groups/A/$old,g=A"
	qadmin config q set ttl=1h >/dev/null
	run --separate-stderr qadmin gc q
	assert_success
	assert_output "gc groups/A/$old,g=A dead-lettered (expired)"
	assert_equal "$(names dead q)" "$old,g=A,r=expired"
	assert_equal "$(head_of A)" "${id[0]}"
	assert_equal "$(drain q)" $'A1\nA2\nA3'
}

@test "qadmin destroy without -f refuses a queue whose only message waits in its group" {
	mapfile -t id < <(three A)
	qadmin -q delete q "${id[2]}"
	# The head settled by a consumer that crashed before freeing the baton.
	r=$(qrecv q)
	rm -- "$r"
	assert_count new q 0
	assert_count groups/A q 2	# the baton and A2
	expect_fail 65 qadmin destroy q
	assert_output 'qadmin: destroy: q: queue not empty: 1 in groups/; use -f'
	[[ -f $Q/groups/A/${id[1]},g=A ]] || fail "A2 lost"
	qadmin -q destroy -f q
	[[ ! -e $Q ]] || fail "not destroyed"
}

@test "qadmin move by ID of a whole group: its messages leave head first, in their order" {
	mapfile -t id < <(three A)
	run --separate-stderr qadmin move q o "${id[2]}" "${id[1]}" "${id[0]}"
	assert_success
	assert_lines_eq "move ${id[0]} ready -> o/ready
move ${id[1]} ready -> o/ready
move ${id[2]} ready -> o/ready" "$output"
	assert_count groups/A q 1
	assert_equal "$(head_of A)" ""
	assert_equal "$(drain o)" $'A1\nA2\nA3'
}

@test "qadmin check, check --repair, stats, ls and list work within a limit of 16 descriptors on a queue with groups" {
	local g i r out
	for i in $(seq 1 20); do
		qsend -g big q "big$i"
	done
	for g in A B C D E F; do
		three "$g" >/dev/null
	done
	# big1 settled from a listing of 19: big2 is head by the order file.
	r=$(qrecv q)
	assert_equal "$(cat "$r")" big1
	qack "$r"
	[[ -f $Q/groups/big/.order ]] || fail "no order file"
	r=$(qrecv q)		# a head in flight
	assert_equal "$(cat "$r")" big2
	r=$(qrecv q)		# and one waiting in retry/
	assert_equal "$(cat "$r")" A1
	qack --retry "$r"
	x=2000000000.000000000.1_0_00000000.x
	mkfifo "$Q/groups/C/$x,g=C"
	out=$(low_fds 16 qadmin check q 2>&1) && fail "check passed: $out"
	[[ $out == "qadmin: check: q: not a regular file (FIFO): groups/C/$x,g=C" ]] ||
	    fail "$out"
	out=$(low_fds 16 qadmin check --repair q 2>/dev/null) || fail "repair: $out"
	[[ $out == "quarantine $x groups/C/$x,g=C -> quarantine/groups/$x,g=C" ]] ||
	    fail "$out"
	out=$(low_fds 16 qadmin check q 2>&1) || fail "check: $out"
	assert_equal "$out" ""
	# 37 messages: 1 in flight, 1 in retry/, 35 ready (30 of them grouped).
	out=$(low_fds 16 qadmin stats q 2>&1) || fail "stats: $out"
	[[ $out == *$'\n  ready              35 '* ]] || fail "$out"
	[[ $out == *"groups       7: 1 in flight, 7 blocked, 30 messages waiting"* ]] ||
	    fail "$out"
	out=$(low_fds 16 qadmin ls q 2>&1) || fail "ls: $out"
	assert_equal "$(grep -c '^grouped ' <<<"$out")" 30
	assert_equal "$(grep -c . <<<"$out")" 37
	out=$(low_fds 16 qadmin list 2>&1) || fail "list: $out"
	assert_equal "$(grep '^q' <<<"$out")" "$(printf 'q\t35\t1\t1\t0\tok')"
}
