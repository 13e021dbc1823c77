#!/usr/bin/env bats
# Entries that are not regular files: a FIFO, a socket, a symlink to a
# file, a symlink to a FIFO, a directory and (as root) a device, planted
# with message-like names in every directory of a queue.  No tool opens,
# follows, claims or moves one, none blocks on one, the real messages
# beside them are served, and qadmin check reports each one and --repair
# moves it into quarantine/.

load helpers

setup() {
	spoolq_setup
	mkq q
	# What the symlinks point at, outside the spool.
	OUT=$T/outside
	printf 'secret\n' >"$OUT"
	touch -d '2001-02-03 04:05:06' "$OUT"
	OUT_STAT=$(stat -c '%s %Y %X' "$OUT")
	mkfifo "$T/outfifo"
	KINDS="fifo socket symlink fifolink dir"
	if [[ $(id -u) == 0 ]]; then
		KINDS="$KINDS device"
	fi
	# An ID older than any real message: it comes first in claim order.
	PID=1000000000.000000001.1_0_0000beef.planted
}

teardown() {
	spoolq_teardown
}

# plant KIND PATH: make an entry of that kind at PATH.
plant() {
	case $1 in
	fifo) mkfifo "$2" ;;
	socket) (cd "${2%/*}" && perl -MIO::Socket::UNIX -e '
	    IO::Socket::UNIX->new(Type => SOCK_STREAM(), Local => $ARGV[0],
	    Listen => 1) or die "$ARGV[0]: $!\n"' "${2##*/}") ;;
	symlink) ln -s "$OUT" "$2" ;;
	fifolink) ln -s "$T/outfifo" "$2" ;;
	dir) mkdir "$2" && printf 'inside\n' >"$2/file" ;;
	device) mknod "$2" c 1 3 ;;
	*) fail "plant: unknown kind $1" ;;
	esac
}

# type_of PATH: what stat says the entry is, never followed.
type_of() {
	stat -c %F "$1"
}

# outside_untouched: the target of the symlinks was neither read nor
# written (size, mtime and atime as set up; atime was set in the past, so
# any read moves it even under relatime).
outside_untouched() {
	[[ $(stat -c '%s %Y %X' "$OUT") == "$OUT_STAT" ]] ||
	    fail "outside file read or written: $(stat -c '%s %Y %X' "$OUT"), was $OUT_STAT"
}

# planted_in DIR KIND: the planted entry (any name starting with PID) in
# q/DIR is still there, of its own type.
planted_in() {
	local p
	p=$(ls -d "$(qdir q)/$1/$PID"* 2>/dev/null | head -n 1)
	[[ -n $p ]] || fail "planted $2 gone from $1/: $(ls -A "$(qdir q)/$1")"
	[[ $(type_of "$p") != "regular file" && $(type_of "$p") != "regular empty file" ]] ||
	    fail "planted $2 in $1/ became a regular file"
}

# planted_in_name DIR NAME KIND: DIR/NAME is there and not a regular file.
planted_in_name() {
	local p=$(qdir q)/$1/$2
	[[ -e $p || -L $p ]] || fail "planted $3 gone from $1/: $(ls -A "$(qdir q)/$1")"
	[[ -L $p || ! -f $p ]] || fail "planted $3 in $1/ became a regular file"
}

@test "qrecv: skips every kind of non-regular entry in new/ and claims the real message; none is moved" {
	local k out
	for k in $KINDS; do
		plant "$k" "$(qdir q)/new/$PID.$k"
		qsend q "real-$k"
		run -0 timeout -k 5 10 qrecv -n 5 q
		refute_crash
		[[ $(wc -l <<<"$output") == 1 ]] || fail "$k: more than the real message: $output"
		[[ $(cat "$output") == "real-$k" ]] || fail "$k: handed out $output"
		qack "$output"
		planted_in new "$k"
		assert_count cur q 0
		assert_count dead q 0
		rm -rf "$(qdir q)/new/$PID.$k"
	done
	outside_untouched
}

@test "qrecv -A: never blocks on a FIFO or follows a link in new/; prints the real body" {
	local k
	for k in $KINDS; do
		plant "$k" "$(qdir q)/new/$PID.$k"
		qsend q "body-$k"
		run -0 timeout -k 5 10 qrecv -A -n 5 q
		refute_crash
		assert_output "body-$k"
		planted_in new "$k"
		run -1 timeout -k 5 10 qrecv -A q
		refute_crash
		rm -rf "$(qdir q)/new/$PID.$k"
	done
	outside_untouched
}

@test "qrecv -w: a planted entry neither wakes it into a spin nor is handed out; a later real message is" {
	local k
	k=fifo
	plant fifo "$(qdir q)/new/$PID.fifo"
	qrecv -w 20 q >"$T/out" &
	sleep 0.5
	plant symlink "$(qdir q)/new/$PID.link"
	qsend q real
	wait $!
	[[ $(cat "$(cat "$T/out")") == real ]] || fail "handed out: $(cat "$T/out")"
	outside_untouched
}

@test "qworker --drain: ends, runs the real messages once, never opens a planted entry in new/" {
	local k
	for k in $KINDS; do
		plant "$k" "$(qdir q)/new/$PID.$k"
	done
	qsend q one two three
	run -0 timeout -k 5 20 qworker --drain q -- sh -c 'cat >>"$0"; echo >>"$0"' "$T/done"
	refute_crash
	assert_same $'one\ntwo\nthree' "$(cat "$T/done")"
	for k in $KINDS; do
		planted_in new "$k"
	done
	assert_count cur q 0
	outside_untouched
}

@test "qworker: SIGTERM stops it while a FIFO sits in new/" {
	plant fifo "$(qdir q)/new/$PID.fifo"
	qsend q real
	qworker q -- cat >"$T/out" 2>/dev/null &
	local pid=$!
	wait_for grep -q real "$T/out"
	kill -TERM "$pid"
	run timeout -k 5 15 tail --pid="$pid" -f /dev/null
	(( status == 0 )) || fail "qworker did not stop on SIGTERM"
	planted_in new fifo
}

@test "claims: planted entries in cur/ (lapsed lease, dead worker) and retry/ (due) are never recovered or promoted" {
	local k
	for k in $KINDS; do
		plant "$k" "$(qdir q)/cur/$PID.$k,a=1,l=1000000000"
		plant "$k" "$(qdir q)/cur/$PID.w$k,a=1,l=1000000000,w=deadworker"
		plant "$k" "$(qdir q)/retry/$PID.$k,a=1,t=1000000000"
	done
	qsend q real
	run -0 timeout -k 5 10 qrecv -n 50 q
	refute_crash
	[[ $(cat "$output") == real ]] || fail "handed out: $output"
	run -0 timeout -k 5 10 qadmin recover q
	refute_crash
	assert_output --partial "recovered 0, dead-lettered 0, promoted 0"
	assert_count new q 0
	assert_count dead q 0
	[[ $(count cur q) == $(( $(wc -w <<<"$KINDS") * 2 + 1 )) ]] ||
	    fail "cur/ changed: $(names cur q)"
	[[ $(count retry q) == $(wc -w <<<"$KINDS") ]] || fail "retry/ changed: $(names retry q)"
	outside_untouched
}

@test "qadmin redrive, retry-now, release: never move a planted entry; the real messages move" {
	local k
	for k in $KINDS; do
		plant "$k" "$(qdir q)/dead/$PID.$k,a=1,r=rejected"
		plant "$k" "$(qdir q)/retry/$PID.$k,a=1,t=9999999999"
		mkdir -p "$(qdir q)/hold"
		plant "$k" "$(qdir q)/hold/$PID.$k"
	done
	qsend q real
	r=$(qrecv q)
	qack --reject "$r"
	run -0 timeout -k 5 10 qadmin redrive q
	refute_crash
	run -0 timeout -k 5 10 qadmin retry-now q
	run -0 timeout -k 5 10 qadmin release q
	refute_crash
	[[ $(bodies new q) == real ]] || fail "new/: $(names new q)"
	for k in $KINDS; do
		planted_in dead "$k"
	done
	[[ $(count dead q) == $(wc -w <<<"$KINDS") ]] || fail "dead/: $(names dead q)"
	[[ $(count retry q) == $(wc -w <<<"$KINDS") ]] || fail "retry/: $(names retry q)"
	[[ $(count hold q) == $(wc -w <<<"$KINDS") ]] || fail "hold/: $(names hold q)"
	outside_untouched
}

@test "qadmin replay: a planted entry in archive/ is not replayed" {
	local k
	qadmin config q set archive=yes >/dev/null
	qsend q real
	qack "$(qrecv q)"
	for k in $KINDS; do
		plant "$k" "$(qdir q)/archive/$PID.$k,a=1"
	done
	run -0 timeout -k 5 10 qadmin replay q
	refute_crash
	[[ $(bodies new q) == real ]] || fail "new/: $(names new q)"
	outside_untouched
}

@test "attr/: a planted sidecar never blocks qrecv --meta or qworker; the message is served" {
	local k id
	for k in $KINDS; do
		qsend -H color=red q "real-$k"
		id=$(msgid "$(names new q)")
		rm "$(qdir q)/attr/$id"
		plant "$k" "$(qdir q)/attr/$id"
		run -0 --separate-stderr timeout -k 5 10 qrecv --meta q
		refute_crash
		[[ $(cat "${lines[0]}") == "real-$k" ]] || fail "$k: $output"
		[[ $output != *secret* ]] || fail "$k: followed the sidecar link"
		[[ $stderr == *"attributes: not a regular file"* ]] ||
		    fail "$k: no warning: $stderr"
		qack --retry --delay 0 "${lines[0]}"
		qadmin retry-now q >/dev/null
		run -0 --separate-stderr timeout -k 5 20 qworker --drain q -- cat
		refute_crash
		assert_output "real-$k"
		planted_in attr "$k" 2>/dev/null || [[ -e $(qdir q)/attr/$id || -L $(qdir q)/attr/$id ]] ||
		    fail "$k: sidecar entry removed"
		rm -rf "$(qdir q)/attr/$id"
	done
	outside_untouched
}

@test "run/: planted index, usage, worker lock and slot entries: consumers go on serving" {
	local k
	qadmin config q set max_messages=100 >/dev/null
	for k in $KINDS; do
		rm -rf "$(qdir q)/run"
		mkdir "$(qdir q)/run"
		plant "$k" "$(index_of q)"
		plant "$k" "$(qdir q)/run/worker.planted$k"
		plant "$k" "$(qdir q)/run/slot.0"
		run timeout -k 5 10 qsend q "real-$k"
		refute_crash
		if (( status != 0 )); then
			# run/usage may be what was planted: a clean refusal.
			(( status == 65 || status == 74 )) || fail "$k: qsend: $status $output"
		fi
		rm -f "$(qdir q)/run/usage"
		plant "$k" "$(qdir q)/run/usage"
		qadmin config q set max_messages=0 >/dev/null
		qsend q "more-$k"
		qadmin config q set max_messages=100 >/dev/null
		run -0 timeout -k 5 20 qworker --drain --slots 2 q -- cat
		refute_crash
		assert_output --partial "more-$k"
		[[ -e $(qdir q)/run/worker.planted$k || -L $(qdir q)/run/worker.planted$k ]] ||
		    fail "$k: a planted worker lock was reaped"
		assert_count new q 0
		assert_count cur q 0
	done
	outside_untouched
}

@test "run/ planted as a symlink to a directory outside: no tool writes there, and the messages are served" {
	local evil=$T/evil
	mkdir "$evil"
	qsend q before
	rm -rf "$(qdir q)/run"
	ln -s "$evil" "$(qdir q)/run"
	run -0 timeout -k 5 10 qsend q one two
	run -0 timeout -k 5 10 qrecv -A -n 3 q
	assert_output $'before\none\ntwo'
	run timeout -k 5 10 qadmin stats q
	refute_crash
	run -0 ls -A "$evil"
	assert_output ''
}

@test "dedup/: a planted marker makes the send fail cleanly, never block" {
	local k
	for k in $KINDS; do
		mkdir -p "$(qdir q)/dedup"
		plant "$k" "$(qdir q)/dedup/key-$k"
		run timeout -k 5 10 qsend --dedup-id "key-$k" q "real-$k"
		refute_crash
		(( status != 124 )) || fail "$k: qsend blocked"
		qsend --dedup-id "other-$k" q "other-$k"
	done
	[[ $(count new q) -ge $(wc -w <<<"$KINDS") ]] || fail "new/: $(names new q)"
	outside_untouched
}

@test "queue.conf and held: a planted entry is refused (78) or ignored, never opened" {
	local k
	for k in $KINDS; do
		mkq "c$k"
		plant "$k" "$(qdir "c$k")/queue.conf"
		expect_fail 78 timeout -k 5 10 qsend "c$k" x
		assert_output --partial "not a regular file"
		mkq "h$k"
		plant "$k" "$(qdir "h$k")/held"
		qsend "h$k" x
		run -0 timeout -k 5 10 qrecv "h$k"
	done
	outside_untouched
}

@test "qadmin check: every kind in every directory is reported; --repair moves each into quarantine/, then the queue is clean" {
	local k d n=0 name
	mkdir -p "$(qdir q)/hold" "$(qdir q)/archive" "$(qdir q)/dedup"
	for k in $KINDS; do
		for d in new cur retry dead hold tmp attr archive run dedup; do
			case $d in
			cur) name=$PID.$k,a=1,l=9999999999 ;;
			retry) name=$PID.$k,a=1,t=9999999999 ;;
			dead) name=$PID.$k,a=1,r=rejected ;;
			*) name=$PID.$k ;;
			esac
			plant "$k" "$(qdir q)/$d/$name"
			n=$(( n + 1 ))
		done
	done
	qsend q real
	run -1 --separate-stderr timeout -k 5 20 qadmin check q
	refute_crash
	output=$stderr
	for k in $KINDS; do
		for d in new cur retry dead hold tmp attr archive run dedup; do
			grep -q "not a regular file .*: $d/$PID\.$k" <<<"$output" ||
			    fail "not reported: $d/$PID.$k"$'\n'"$output"
		done
	done
	[[ $(grep -c "not a regular file" <<<"$output") == "$n" ]] ||
	    fail "expected $n reports: $output"
	run -0 --separate-stderr timeout -k 5 20 qadmin check --repair q
	refute_crash
	[[ $(grep -c "^quarantine " <<<"$output") == "$n" ]] || fail "expected $n moves: $output"
	for k in $KINDS; do
		for d in new cur retry dead hold tmp attr archive run dedup; do
			compgen -G "$(qdir q)/quarantine/$d/$PID.$k*" >/dev/null ||
			    fail "$d/$PID.$k not in quarantine/$d"
		done
	done
	run -0 timeout -k 5 20 qadmin check q
	[[ $(bodies new q) == real ]] || fail "new/: $(names new q)"
	outside_untouched
}

@test "claims: an entry that took a listed message's name after the listing is put back, never handed out" {
	local k b
	for k in fifo symlink fifolink dir; do
		qsend q "first-$k" "second-$k"
		# The first claim lists new/ into the claim index: both names.
		run -0 qrecv q
		[[ $(cat "$output") == "first-$k" ]] || fail "$k: $output"
		qack "$output"
		# Now the second name is taken by something else.
		b=$(names new q)
		rm "$(qdir q)/new/$b"
		plant "$k" "$(qdir q)/new/$b"
		run -1 timeout -k 5 10 qrecv q
		refute_crash
		assert_output ""
		planted_in_name new "$b" "$k"
		assert_count cur q 0
		rm -rf "$(qdir q)/new/$b"
	done
	outside_untouched
}

@test "qworker: an entry that took a listed message's name is put back, the worker goes on" {
	qsend q first second third
	run -0 qrecv q
	qack "$output"
	b=$(names new q | head -n 1)
	rm "$(qdir q)/new/$b"
	plant fifo "$(qdir q)/new/$b"
	run -0 --separate-stderr timeout -k 5 20 qworker --drain q -- cat
	refute_crash
	assert_output "third"
	planted_in_name new "$b" fifo
}

@test "qadmin hold, move, purge, cat, ls: a planted entry is never moved, removed or opened; real messages are" {
	local k
	mkq other
	for k in $KINDS; do
		plant "$k" "$(qdir q)/new/$PID.$k"
	done
	qsend q one two
	run -0 timeout -k 5 10 qadmin hold q "$(msgid "$(names new q | tail -n 1)")"
	run -0 timeout -k 5 10 qadmin move q other
	refute_crash
	assert_same one "$(bodies new other)"
	run -65 --separate-stderr timeout -k 5 10 qadmin cat q "$PID.fifo"
	refute_crash
	run -0 --separate-stderr timeout -k 5 10 qadmin ls q
	refute_crash
	[[ $(grep -c stray <<<"$output") == $(wc -w <<<"$KINDS") ]] || fail "ls: $output"
	run -0 timeout -k 5 10 qadmin purge q
	refute_crash
	for k in $KINDS; do
		planted_in new "$k"
	done
	assert_same two "$(bodies hold q)"
	assert_count new other 1
	outside_untouched
}

@test "qadmin stats and ls count and show an entry planted in groups/ itself as stray" {
	local k n
	qsend -g g1 q one
	for k in $KINDS; do
		[[ $k == dir ]] && continue	# a directory is a group: check's
		plant "$k" "$(qdir q)/groups/$PID.$k"
	done
	n=$(( $(wc -w <<<"$KINDS") - 1 ))
	run -0 --separate-stderr timeout -k 5 10 qadmin stats --json q
	refute_crash
	[[ $(jq -r '.queues[0].stray // .stray' <<<"$output") == "$n" ]] ||
	    fail "stats: $output"
	run -0 --separate-stderr timeout -k 5 10 qadmin stats --prometheus q
	assert_line "spoolq_stray_entries{queue=\"q\"} $n"
	run -0 --separate-stderr timeout -k 5 10 qadmin ls q
	refute_crash
	[[ $(grep -c stray <<<"$output") == "$n" ]] || fail "ls: $output"
	assert_same one "$(qrecv -A q)"
	outside_untouched
}

@test "qadmin hold: a FIFO planted as held is refused at once, never opened for writing" {
	mkfifo "$(qdir q)/held"
	expect_fail 65 timeout -k 5 10 qadmin hold q
	qsend q x
	run -0 timeout -k 5 10 qrecv q
}

@test "cat, delete and qack of a planted entry name it and its kind, and point to check --repair; nothing is opened or removed" {
	local k want
	declare -A kind=([fifo]=FIFO [socket]=socket [symlink]=symlink
	    [fifolink]=symlink [dir]=directory [device]=device)
	for k in $KINDS; do
		plant "$k" "$(qdir q)/new/$PID.$k"
		want="q/new/$PID.$k: not a regular file (${kind[$k]}); qadmin check --repair q moves it to quarantine/"
		run --separate-stderr timeout -k 5 10 qadmin cat q "$PID.$k"
		assert_failure 65
		assert_equal "$stderr" "qadmin: cat: $want"
		run --separate-stderr timeout -k 5 10 qadmin delete q "$PID.$k"
		assert_failure 65
		assert_equal "$stderr" "qadmin: delete: $want"
		planted_in_name new "$PID.$k" "$k"
	done
	# A receipt that is not a regular file.
	for k in fifo symlink dir; do
		plant "$k" "$(qdir q)/cur/$PID.c$k,a=1,l=9999999999"
		run --separate-stderr timeout -k 5 10 qack "$(qdir q)/cur/$PID.c$k,a=1,l=9999999999"
		assert_failure 65
		assert_equal "$stderr" "qack: $(qdir q)/cur/$PID.c$k,a=1,l=9999999999: not a regular file (${kind[$k]}); qadmin check --repair moves it to quarantine/"
		planted_in_name cur "$PID.c$k,a=1,l=9999999999" "$k"
	done
	# A real message beside them is still found.
	qsend q real
	run -0 qadmin cat q "$(msgid "$(names new q | grep -v planted)")"
	assert_output real
	outside_untouched
}

@test "qadmin hold: a FIFO, symlink or directory at q/held is named as such (65); qadmin move q q is a usage error" {
	local k
	declare -A kind=([fifo]=FIFO [symlink]=symlink [dir]=directory)
	for k in fifo symlink dir; do
		plant "$k" "$(qdir q)/held"
		run --separate-stderr timeout -k 5 10 qadmin hold q
		assert_failure 65
		assert_equal "$stderr" "qadmin: hold: q/held: not a regular file (${kind[$k]}); qadmin check --repair q moves it to quarantine/"
		rm -rf "$(qdir q)/held"
	done
	outside_untouched
	qsend q one two
	run qadmin move q q
	assert_failure 64
	assert_line --index 0 "qadmin: move: q: q is the same queue"
	assert_line --index 1 "usage: qadmin [-nqv] [-d root] move queue other [id ... | -]"
	run --separate-stderr qadmin move q "$(qdir q)"
	assert_failure 64
	assert_count new q 2
}

# drain_group: claim and ack one message at a time, printing each body,
# and fail when a second one is ready while the first is out.
drain_group() {
	local r
	while r=$(qrecv q); do
		cat "$r"
		echo
		if qrecv q >/dev/null; then
			echo "two out at once"
			return 1
		fi
		qack "$r"
	done
}

# batons KEY: the batons of group KEY, one a line, with their kinds.
batons() {
	local f
	for f in "$(qdir q)/groups/$1"/,*; do
		echo "${f##*/} $(type_of "$f")"
	done
}

@test "a free baton of any other kind: check reports it, --repair quarantines it and makes a regular one, and the group is served one at a time in order" {
	local k Q
	Q=$(qdir q)
	declare -A kind=([fifo]=FIFO [socket]=socket [symlink]=symlink
	    [fifolink]=symlink [dir]=directory [device]=device)
	for k in $KINDS; do
		qsend -g "$k" q "${k}0"
		qack "$(qrecv q)"
		assert_equal "$(batons "$k")" ",free regular empty file"
		rm "$Q/groups/$k/,free"
		plant "$k" "$Q/groups/$k/,free"
		run --separate-stderr qadmin check q
		assert_failure 1
		assert_equal "$stderr" "qadmin: check: q: baton not a regular file (${kind[$k]}): groups/$k/,free"
		run --separate-stderr qadmin check --repair q
		assert_success
		assert_equal "$output" "quarantine - groups/$k/,free -> quarantine/groups/,free${QN-}
make - groups/$k/,free -> groups/$k/,free"
		QN=.q$(( ${#QN} == 0 ? 1 : ${QN#.q} + 1 ))
		assert_equal "$(batons "$k")" ",free regular empty file"
		run --separate-stderr qadmin check q
		assert_success
		qsend -g "$k" q "${k}1" "${k}2" "${k}3"
		run drain_group
		assert_success
		assert_output "${k}1
${k}2
${k}3"
	done
	[[ -e $Q/quarantine/groups/,free ]] || fail "not quarantined"
}

@test "a head's baton of any other kind: --repair makes it a regular file of the same name, never a second head, and the group goes on in order" {
	local k Q ids
	Q=$(qdir q)
	for k in $KINDS; do
		qsend -g "$k" q "${k}0"
		qack "$(qrecv q)"
		rm "$Q/groups/$k/,free"
		plant "$k" "$Q/groups/$k/,free"
		# The planted baton is taken as it is by the sends.
		qsend -g "$k" q "${k}1" "${k}2" "${k}3"
		mapfile -t ids < <(ls "$Q/new" "$Q/groups/$k" | grep "^[0-9].*,g=$k" | cut -d, -f1 | sort)
		assert_equal "${#ids[@]}" 3
		[[ $(batons "$k") == ",head=${ids[0]} "* ]] || fail "$(batons "$k")"
		run --separate-stderr qadmin check --repair q
		assert_success
		assert_line "make - groups/$k/,head=${ids[0]} -> groups/$k/,head=${ids[0]}"
		assert_equal "$(batons "$k")" ",head=${ids[0]} regular empty file"
		run drain_group
		assert_success
		assert_output "${k}1
${k}2
${k}3"
		assert_equal "$(batons "$k")" ",free regular empty file"
	done
}

@test "an order file, a group or groups/,maint of another kind: check reports it, --repair quarantines it, and sends to the group work again" {
	local k Q
	Q=$(qdir q)
	declare -A kind=([fifo]=FIFO [socket]=socket [symlink]=symlink
	    [fifolink]=symlink [dir]=directory [device]=device)
	qsend -g A q a1 a2
	for k in $KINDS; do
		plant "$k" "$Q/groups/A/.order"
		[[ $k == dir ]] || plant "$k" "$Q/groups/G$k"
		rm -f "$Q/groups/,maint"
		plant "$k" "$Q/groups/,maint"
		run qadmin check q
		assert_failure 1
		assert_line --partial "order file not a regular file (${kind[$k]}): groups/A/.order"
		[[ $k == dir ]] ||
		    assert_line --partial "group not a directory (${kind[$k]}): groups/G$k"
		assert_line --partial "maintenance stamp not a regular file (${kind[$k]}): groups/,maint"
		if [[ $k != dir ]]; then
			expect_fail 65 qsend -g "G$k" q x
			assert_line --index 0 "qsend: q/groups/G$k: not a directory (${kind[$k]}); qadmin check --repair moves it to quarantine/"
		fi
		run --separate-stderr qadmin check --repair q
		assert_success
		[[ ! -e $Q/groups/A/.order && ! -L $Q/groups/A/.order ]] || fail "order file left"
		run --separate-stderr qadmin check q
		assert_success
		assert_equal "$stderr" ""
		qsend -g "G$k" q "g$k"
	done
	run bash -c 'while r=$(qrecv q); do cat "$r"; echo; qack "$r"; done'
	assert_equal "$(sort <<<"$output" | tr '\n' ' ')" "a1 a2 $(for k in $KINDS; do echo "g$k"; done | sort | tr '\n' ' ')"
}
