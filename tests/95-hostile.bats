#!/usr/bin/env bats
# A hostile queue: while workers, a shell consumer, senders and qadmin
# run, every kind of entry that is not a regular file (FIFO, socket,
# symlink to a file outside, to a FIFO outside, to a directory outside,
# to a message of the queue, directory, and as root a device) is planted
# in every directory of the queue.  Every real message is still handled
# exactly once, nothing outside the spool is read or written, an idle
# worker does not spin beside the planted entries, and qadmin check
# reports each of them.

load helpers

# Messages sent by the senders: single sends and one batch.
SINGLES=150
BATCH=150

setup() {
	spoolq_setup
	mkq q durability=none
	OUT=$T/outside
	mkdir "$OUT"
	printf 'secret\n' >"$OUT/file"
	mkfifo "$OUT/fifo"
	mkdir "$OUT/dir"
	printf 'inside\n' >"$OUT/dir/file"
	touch -d '2001-02-03 04:05:06' "$OUT/file" "$OUT/dir/file" "$OUT/dir"
	OUT_BEFORE=$(outside_state)
	KINDS="fifo socket filelink fifolink dirlink msglink dir"
	if [[ $(id -u) == 0 ]]; then
		KINDS="$KINDS device"
	fi
	DIRS="new cur retry dead hold tmp attr archive run dedup"
	BG=
}

teardown() {
	local p
	for p in $BG; do
		kill -9 "$p" 2>/dev/null || true
	done
	spoolq_teardown
}

# outside_state: everything about the files outside the spool that a
# read or a write would change: names, sizes, mtimes, and the atimes of
# files (set in the past, so that a read moves them even under relatime;
# a directory's atime moves when find itself lists it).
outside_state() {
	(cd "$OUT" && find . -type d -printf '%p %y %T@\n' -o \
	    -printf '%p %y %s %T@ %A@\n' | sort)
}

# plant KIND PATH
plant() {
	case $1 in
	fifo) mkfifo "$2" ;;
	socket) (cd "${2%/*}" && perl -MIO::Socket::UNIX -e '
	    IO::Socket::UNIX->new(Type => SOCK_STREAM(), Local => $ARGV[0],
	    Listen => 1) or die "$ARGV[0]: $!\n"' "${2##*/}") ;;
	filelink) ln -s "$OUT/file" "$2" ;;
	fifolink) ln -s "$OUT/fifo" "$2" ;;
	dirlink) ln -s "$OUT/dir" "$2" ;;
	# A second name for a real message: handing it out would deliver
	# that message twice.
	msglink)
		local m
		m=$(ls -d "$(qdir q)"/new/* 2>/dev/null | head -n 1) || true
		ln -s "${m:-$(qdir q)/new/1000000000.000000002.1_0_0000beef.gone}" "$2" ;;
	dir) mkdir "$2" ;;
	device) mknod "$2" c 1 3 ;;
	esac
}

# plant_all: one entry of every kind in every directory, with names a
# message would have there (an ID older than any real one, a lapsed lease
# and a dead worker in cur/, a due time passed in retry/).
plant_all() {
	local k d name id
	mkdir -p "$(qdir q)"/{hold,archive,dedup,attr,run}
	for k in $KINDS; do
		id=1000000000.000000001.1_0_0000beef.$k
		for d in $DIRS; do
			case $d in
			cur) name=$id,a=1,l=1000000000,w=deadworker ;;
			retry) name=$id,a=1,t=1000000000 ;;
			dead) name=$id,a=1,r=rejected ;;
			archive) name=$id,a=1 ;;
			run) name=worker.planted$k ;;
			*) name=$id ;;
			esac
			plant "$k" "$(qdir q)/$d/$name" || return 1
			echo "$d/$name" >>"$T/planted"
		done
	done
}

# cpu_ticks PID: user + system CPU time of PID, in clock ticks.
cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# handled: lines in the consumers' logs.
handled() {
	cat "$T/worker.log" "$T/shell.log" 2>/dev/null | grep -c . || true
}

@test "hostile queue: every kind of entry in every directory of a busy queue; real messages handled once, nothing outside touched, no spin, all reported" {
	local total=$(( SINGLES + BATCH )) wpid i t0 c0 c1 elapsed hz

	# Two workers, one shell consumer, qadmin in a loop.
	qworker -j 2 q -- sh -c 'b=$(cat); printf "%s\n" "$b" >>"$0"' \
	    "$T/worker.log" 2>"$T/worker.err" &
	wpid=$!
	BG="$BG $wpid"
	qworker -q q -- sh -c 'b=$(cat); printf "%s\n" "$b" >>"$0"' \
	    "$T/worker.log" 2>/dev/null &
	BG="$BG $!"
	(
		set +e
		while :; do
			r=$(qrecv -w 1 q 2>/dev/null) || continue
			b=$(cat "$r") && printf '%s\n' "$b" >>"$T/shell.log" &&
			    qack "$r"
		done
	) &
	BG="$BG $!"
	(
		set +e
		while :; do
			qadmin stats q >/dev/null 2>&1
			qadmin recover q >/dev/null 2>&1
			qadmin gc q >/dev/null 2>&1
			qadmin check q >/dev/null 2>&1
			qadmin redrive q >/dev/null 2>&1
			qadmin ls q >/dev/null 2>&1
		done
	) &
	local apid=$!
	BG="$BG $apid"

	# Senders, and the planting in the middle of their work.
	(
		for (( i = 0; i < SINGLES; i++ )); do
			qsend q "single-$i" || exit 1
		done
	) &
	local spid=$!
	BG="$BG $spid"
	for (( i = 0; i < BATCH; i++ )); do
		echo "batch-$i"
	done | qsend -l q
	plant_all
	wait "$spid"

	# Every real message handled, exactly once.
	wait_for -t 120 eval '(( $(handled) >= total ))'
	sleep 1
	kill -9 "$apid"
	{
		for (( i = 0; i < SINGLES; i++ )); do echo "single-$i"; done
		for (( i = 0; i < BATCH; i++ )); do echo "batch-$i"; done
	} >"$T/sent"
	assert_same "$(cat "$T/sent")" "$(cat "$T/worker.log" "$T/shell.log" 2>/dev/null)"
	# The shell consumer acks just after it logs: wait for that.
	wait_for -t 30 eval '[[ $(count cur q) == $(grep -c "^cur/" "$T/planted") ]]'

	# Nothing outside the spool was read or written.
	[[ $(outside_state) == "$OUT_BEFORE" ]] ||
	    fail "outside the spool changed:"$'\n'"$(diff <(echo "$OUT_BEFORE") <(outside_state))"

	# The planted entries are all where they were planted.
	while read -r p; do
		[[ -e $(qdir q)/$p || -L $(qdir q)/$p ]] || fail "planted $p was moved"
	done <"$T/planted"

	# An idle worker beside them does not spin: under 1% of a CPU.
	hz=$(getconf CLK_TCK)
	t0=$EPOCHREALTIME
	c0=$(cpu_ticks "$wpid")
	sleep 10
	c1=$(cpu_ticks "$wpid")
	elapsed=$(elapsed_since "$t0")
	awk -v c=$(( c1 - c0 )) -v hz="$hz" -v e="$elapsed" 'BEGIN {
		printf "# idle worker: %.3f s of CPU in %.1f s (%.2f%%)\n", c / hz, e, 100 * c / hz / e
		exit !(c / hz < 0.01 * e) }' >&3 ||
	    fail "the idle worker used $(( c1 - c0 )) ticks ($hz/s) in ${elapsed}s"
	# Idle, not stuck: it still serves the next message.
	qsend q last
	wait_for -t 60 grep -qx last "$T/worker.log" "$T/shell.log"

	# qadmin check reports every planted entry, and nothing else.
	run -1 --separate-stderr timeout -k 5 60 qadmin check q
	refute_crash
	while read -r p; do
		grep -qF "not a regular file" <<<"$(grep -F ": $p" <<<"$stderr")" ||
		    fail "not reported: $p"$'\n'"$stderr"
	done <"$T/planted"
	[[ $(grep -c . <<<"$stderr") == $(grep -c . "$T/planted") ]] ||
	    fail "reported more than was planted:"$'\n'"$stderr"

	# --repair moves each into quarantine/, and the queue is clean.
	run -0 --separate-stderr timeout -k 5 60 qadmin check --repair q
	refute_crash
	[[ $(grep -c '^quarantine ' <<<"$output") == $(grep -c . "$T/planted") ]] ||
	    fail "not every planted entry quarantined:"$'\n'"$output"
	run -0 timeout -k 5 60 qadmin check q
}
