# qbridge_common.bash - the test bodies the qbridge suites share
# (tests/97-qbridge-{redis,nats,rabbitmq}.bats), one per kind of test,
# run against the broker of the file that loads it.  Each file's setup
# sets, for its broker:
#
#   URL		the queue or stream of the test (a URL of qbridge)
#   URL_IN	URL with what the inbox of a round trip adds (a consumer)
#   URL_KILL	URL with what an inbox killed at random adds (an ack wait)
#   AWAY_ERR	the words of the log line of a server that is not there
#   HOLD_BACK	set when the outbox publishes a body larger than any the
#		server confirmed only after the confirms of those before
#		it (AMQP, until it knows the server's limit): a batch of
#		a new bridge then goes out in parts
#
# and defines, when it runs the bodies that need them (after loading this
# file, whose own stand-ins fail the test):
#
#   broker_stop		kill -9 the server and wait until it is gone
#   broker_start	start it again on its port (fails the test if not)
#   round_trip_check	what a round trip left in the broker (by default
#			nothing is checked)
#   away_drained	the backlog of the "server away" test has arrived
#   tls_server		a TLS server for the test: sets TLS_URL to its
#			URL for the name localhost, TLS_IP_URL for
#			127.0.0.1, and CA to the directory of tls_certs
#
# The certificate errors differ by client library: TLS_CHAIN_RE and
# TLS_HOST_RE are the words (extended regexps) of an untrusted chain and
# of a certificate of another host.

# The hooks, until the file that loads this one defines its own.
broker_stop() {
	fail "broker_stop: not defined for this broker"
}
broker_start() {
	fail "broker_start: not defined for this broker"
}
round_trip_check() {
	:
}
away_drained() {
	fail "away_drained: not defined for this broker"
}
tls_server() {
	fail "tls_server: not defined for this broker"
}

# ready_over QUEUE N: more than N messages are ready in QUEUE.
ready_over() {
	(( $(count new "$1") > $2 ))
}

# bridge_wait SECONDS CMD...: wait_for, but a timeout also shows where the
# messages are (each state of queues a and b) and the end of the bridges'
# logs ($T/out.log, $T/in.log), so that a failure says which side stopped.
bridge_wait() {
	local t=$1 q s f
	shift
	wait_until "$t" "$@" && return 0
	{
		echo "wait_for: timed out after ${t}s: $*"
		for q in a b; do
			for s in new cur retry dead; do
				printf '%s/%s: %s\n' "$q" "$s" "$(count "$s" "$q")"
			done
		done
		for f in "$T/out.log" "$T/in.log"; do
			[[ -f $f ]] || continue
			echo "--- ${f##*/} (last 20 lines)"
			tail -n 20 "$f"
		done
	} | fail
}

# outbox_empty QUEUE: nothing ready or claimed is left in QUEUE.
outbox_empty() {
	(( $(count new "$1") + $(count cur "$1") == 0 ))
}

# sent_sum: the messages the batch lines of the outbox in $output say
# were sent, added up.
sent_sum() {
	grep -o '^qbridge: a -> .*: [0-9]* sent' <<<"$output" |
	    awk '{ s += $(NF - 1) } END { print s + 0 }'
}

# re_quote STRING: STRING as an extended regexp that matches it alone.
re_quote() {
	sed 's/[][\.|$(){}?+*^]/\\&/g' <<<"$1"
}

# qb_round_trip: N messages with keys and attributes, out and in, byte
# for byte and in order; an inbox run again finds nothing new.
qb_round_trip() {
	bridge_fill a "$BRIDGE_N"
	want=$(bridge_digest a)
	run qbridge out --drain a "$URL"
	assert_success
	if [[ -n ${HOLD_BACK-} ]]; then
		# The bodies grow by one byte from one message to the next
		# (up to 300 bytes): batches in parts, all sent once.
		assert_equal "$(sent_sum)" "$BRIDGE_N"
		refute_output --regexp ' [1-9][0-9]* refused'
	else
		assert_line --regexp "^qbridge: a -> $(re_quote "$URL"): 100 sent, 0 refused, 0 pending"
	fi
	assert_count new a 0
	assert_count cur a 0
	run qbridge in --drain "$URL_IN" b
	assert_success
	assert_count new b "$BRIDGE_N"
	assert_lines_eq "$want" "$(bridge_digest b)"
	round_trip_check
	# Again: nothing new arrives, everything was acked.
	run qbridge in --drain "$URL_IN" b
	assert_success
	assert_count new b "$BRIDGE_N"
}

# qb_server_killed: the server killed (kill -9) and started again while an
# outbox and an inbox run: nothing lost, nothing twice, one log line per
# wait.
qb_server_killed() {
	bridge_fill a "$BRIDGE_N"
	want=$(bridge_bodies a)
	qbridge out a "$URL" 2>"$T/out.log" &
	out=$!
	qbridge in "$URL_KILL" b 2>"$T/in.log" &
	in=$!
	bridge_wait 120 ready_over b $((BRIDGE_N / 4))
	broker_stop
	broker_start
	bridge_wait 240 ready_over b $((BRIDGE_N - 1))
	kill -TERM "$out" "$in"
	wait "$out"
	wait "$in"
	assert_lines_eq "$want" "$(bridge_bodies b)"
	assert_count new a 0
	assert_count cur a 0
	run cat "$T/out.log" "$T/in.log"
	assert_output --regexp 'retrying in [0-9.]+s'
}

# qb_bridge_killed: an outbox and an inbox killed (kill -9) at random
# moments, six times, then run to the end: nothing lost, nothing twice.
qb_bridge_killed() {
	# Attempts count at claim: a slow machine may kill a bridge six times
	# with the same batch claimed and not yet sent, which max_attempts
	# (5) would dead-letter.  This is about loss and duplicates.
	qadmin config set a max_attempts=20 >/dev/null
	bridge_fill a "$BRIDGE_N"
	want=$(bridge_bodies a)
	bridge_kill_rounds "$URL" "$URL_KILL"
	qbridge out --drain -q a "$URL"
	# What a killed inbox was given comes again (at once, or after the
	# ack wait).
	qbridge in "$URL_KILL" b 2>"$T/in.log" &
	in=$!
	bridge_wait 120 ready_over b $((BRIDGE_N - 1))
	kill -TERM "$in"
	wait "$in"
	assert_count new a 0
	assert_count cur a 0
	assert_lines_eq "$want" "$(bridge_bodies b)"
}

# qb_server_away: the server stopped before the messages are sent: sends
# succeed locally, the outbox waits with a line per wait, and the backlog
# drains when the server is back.
qb_server_away() {
	broker_stop
	bridge_fill a 300
	want=$( (bridge_bodies a; echo 6c617465) | sort)	# + "late"
	qbridge out a "$URL" 2>"$T/out.log" &
	out=$!
	wait_for grep -q "$AWAY_ERR; retrying in" "$T/out.log"
	# Senders go on meanwhile.
	qsend a late
	broker_start
	bridge_wait 180 away_drained
	kill -TERM "$out"
	wait "$out"
	qbridge in --drain -q "$URL" b
	assert_lines_eq "$want" "$(bridge_bodies b)"
	# The worker lock is gone with the bridge.
	run ls "$(qdir a)/run"
	refute_output --partial worker.
}

# qb_tls: the server's certificate verified: a CA of --cacert is trusted;
# an unknown CA or a certificate of another host is refused with one
# line and exit status 78, and nothing is taken from the queue.
qb_tls() {
	tls_server
	qsend a one two
	# Not signed by a CA of the system's.
	expect_fail 78 qbridge out --drain a "$TLS_URL"
	assert_output --regexp "^qbridge: $(re_quote "$TLS_URL"): connect: $TLS_CHAIN_RE \(not signed by a CA the system trusts; --cacert FILE names others\)\$"
	assert_equal "${#lines[@]}" 1
	# Nor by the CA named.
	expect_fail 78 qbridge out --drain --cacert "$CA/other.pem" a "$TLS_URL"
	assert_output --regexp "^qbridge: $(re_quote "$TLS_URL"): connect: $TLS_CHAIN_RE \(not signed by a CA of $(re_quote "$CA/other.pem")\)\$"
	assert_equal "${#lines[@]}" 1
	# The right CA, but the URL names a host the certificate does not.
	expect_fail 78 qbridge out --drain --cacert "$CA/ca.pem" a "$TLS_IP_URL"
	assert_output --regexp "^qbridge: $(re_quote "$TLS_IP_URL"): connect: $TLS_HOST_RE \(the certificate does not name 127\.0\.0\.1\)\$"
	assert_equal "${#lines[@]}" 1
	assert_count new a 2
	assert_count cur a 0
	# Trusted: the round trip.
	run qbridge out --drain --cacert "$CA/ca.pem" a "$TLS_URL"
	assert_success
	if [[ -n ${HOLD_BACK-} ]]; then
		# Bodies of one size: the second waits for the first's confirm.
		assert_line --regexp "^qbridge: a -> $(re_quote "$TLS_URL"): 1 sent, 0 refused, 1 pending"
		assert_line --regexp "^qbridge: a -> $(re_quote "$TLS_URL"): 1 sent, 0 refused, 0 pending"
	else
		assert_line --regexp "^qbridge: a -> $(re_quote "$TLS_URL"): 2 sent, 0 refused, 0 pending"
	fi
	assert_count new a 0
	qbridge in --drain -q --cacert "$CA/ca.pem" "$TLS_URL" b
	assert_equal "$(bodies new b)" $'one\ntwo'
}

# qb_groups: grouped messages (qsend -g) keep their groups (g=) from queue
# a through the broker into queue b, in order within each group, and the
# groups hold in b.
qb_groups() {
	qsend -g g1 a one
	qsend -g g1 a two
	qsend -g 'a group, named freely' a three
	qsend a plain
	qsend -g g2 a four
	want=$(bridge_groups a)
	[[ $(tr '\n' ' ' <<<"$want") =~ \
	    ^-\ plain\ g1\ one\ g1\ two\ g2\ four\ h[0-9a-f]{16}\ three\ $ ]] ||
	    fail "$want"
	run qbridge out --drain a "$URL"
	assert_success
	assert_count new a 0
	assert_count cur a 0
	run qbridge in --drain "$URL" b
	assert_success
	assert_lines_eq "$want" "$(bridge_groups b)"
	# The groups hold in b: two waits behind one.
	got=$(for i in 1 2 3 4 5; do
		r=$(qrecv b) || break
		cat "$r"
		echo
	done | sort | tr '\n' ' ')
	assert_equal "$got" "four one plain three "
}

# qb_group_drain: one outbox with --drain carries a whole group, each
# message freed by the ack of the one before, in order: it ends only when
# a claim made after its last ack found nothing.
qb_group_drain() {
	seq 1 100 | qsend -l -g A a
	want=$(bridge_groups a)
	assert_equal "$(sort -u <<<"$want" | wc -l)" 100
	run qbridge out -q --drain a "$URL"
	assert_success
	assert_count new a 0
	assert_count cur a 0
	assert_equal "$(bridge_groups a)" ""
	run qbridge in -q --drain "$URL_IN" b
	assert_success
	assert_count new b 1
	assert_lines_eq "$want" "$(bridge_groups b)"
	assert_equal "$(bridge_groups b | head -1)" "A 1"
	assert_equal "$(bridge_groups b | tail -1)" "A 100"
}

# qb_bad_marker: in queue b, the names of the dedup markers of three
# messages (their broker IDs) are taken by a symlink, a FIFO and a
# directory.  The inbox sets each of the three aside into b's dead/ with
# r=badmarker, says so in one line each, acks the whole batch and
# carries the other messages on; the entries are left for check --repair.
qb_bad_marker() {
	local ids dead d i kinds=(- symlink FIFO directory -)
	printf 'outside\n' >"$T/outside"
	# In the past, so that a read would move its atime.
	touch -d @978307200 "$T/outside"
	qsend a one two three four five
	mapfile -t ids < <(names new a | sed 's/,.*//')
	assert_equal "${#ids[@]}" 5
	d=$(qdir b)/dedup
	mkdir -p "$d"
	ln -s "$T/outside" "$d/${ids[1]}"
	mkfifo "$d/${ids[2]}"
	mkdir "$d/${ids[3]}"
	run qbridge out --drain -q a "$URL"
	assert_success
	assert_count new a 0
	run --separate-stderr timeout 120 qbridge in --drain "$URL_IN" b
	assert_success
	assert_equal "$(bodies new b)" $'one\nfive'
	assert_equal "$(bodies dead b)" $'two\nthree\nfour'
	assert_equal "$(names dead b | grep -vc ',r=badmarker$')" 0
	# One line per message set aside, naming the entry, its kind and the
	# dead letter, in the order of the batch; then the batch's line.
	mapfile -t dead < <(names dead b | sed 's/,.*//')
	for i in 1 2 3; do
		assert_equal "${stderr_lines[i - 1]}" "qbridge: b/dedup/${ids[i]}: not a regular file (${kinds[i]}); ${dead[i - 1]} dead-lettered (r=badmarker), qadmin check --repair moves the entry to quarantine/"
	done
	[[ ${stderr_lines[3]} =~ ': 5 received, 0 duplicates, 3 dead (r=badmarker) '[0-9.]+s$ ]] ||
	    fail "batch line: ${stderr_lines[3]}"
	assert_equal "${#stderr_lines[@]}" 4
	assert_equal "$(stat -c '%s %Y %X' "$T/outside")" "8 978307200 978307200"
	[[ -L $d/${ids[1]} && -p $d/${ids[2]} && -d $d/${ids[3]} ]] ||
	    fail "planted entries: $(ls -l "$d")"
	# All were acked: nothing comes again.
	run --separate-stderr qbridge in --drain "$URL_IN" b
	assert_success
	assert_equal "$stderr" ""
	assert_count new b 2
	assert_count dead b 3
	# check --repair moves the entries away; the dead letters redrive.
	run qadmin check --repair b
	[[ ! -e $d/${ids[1]} && ! -L $d/${ids[1]} && ! -e $d/${ids[2]} &&
	    ! -e $d/${ids[3]} ]] || fail "after repair: $(ls -l "$d")"
	run -0 qadmin redrive b
	assert_count new b 5
	assert_count dead b 0
}

# bad_marker_full_inbox: the messages one to five through the broker to
# queue b, the second with a FIFO planted at its dedup/ marker name, b
# taking 2 (max_messages = 2, overflow = reject); an inbox that runs with
# --drain until it gives up (exit 75) and leaves one and three in new/, two
# in dead/. Sets the caller's ids to the names of the messages sent.
bad_marker_full_inbox() {
	qsend a one two three four five
	mapfile -t ids < <(names new a | sed 's/,.*//')
	mkdir -p "$(qdir b)/dedup"
	mkfifo "$(qdir b)/dedup/${ids[1]}"
	run qbridge out --drain -q a "$URL"
	assert_success
	qadmin config b set max_messages=2 overflow=reject >/dev/null
	run --separate-stderr timeout 60 qbridge in -q --drain "$URL_IN" b
	assert_equal "$status" 75
	assert_equal "$(bodies new b)" $'one\nthree'
	assert_equal "$(bodies dead b)" two
}

# qb_bad_marker_held: a batch that holds a message with a planted marker
# name is refused by a full queue b and held: each try of the batch sends
# the others again, but the message set aside goes to dead/ once, not at
# every wait.
qb_bad_marker_held() {
	local ids
	bad_marker_full_inbox
	# Four waits and the end, each a try of the batch again.
	assert_equal "$(printf '%s\n' "${stderr_lines[@]}" |
	    grep -Ec "$FULL_WAIT_RE")" 4
	assert_equal "$(printf '%s\n' "${stderr_lines[@]}" |
	    grep -c 'dead-lettered (r=badmarker)')" 1
}

# qb_bad_marker_again: a batch that holds a message with a planted marker
# name is held on a full queue b until --drain gives up, not acked: the
# broker gives the whole batch again to the next inbox (another process),
# which finds the message's set-aside made (its marker dedup/ID,badmarker)
# and drops it as a duplicate: one dead letter, not one per delivery.
qb_bad_marker_again() {
	local ids run
	bad_marker_full_inbox
	[[ -f $(qdir b)/dedup/${ids[1]},badmarker ]] ||
	    fail "no set-aside marker: $(ls "$(qdir b)/dedup")"
	# Room again; two inboxes, one after the other.
	qadmin config b set max_messages=100 >/dev/null
	for run in 1 2; do
		run --separate-stderr timeout 60 qbridge in --drain "$URL_IN" b
		assert_success
		assert_equal "$(bodies new b)" $'one\nthree\nfour\nfive'
		assert_equal "$(bodies dead b)" two
		assert_count dead b 1
		[[ $stderr != *dead-lettered* ]] || fail "set aside again: $stderr"
	done
	# The FIFO is still there, untouched, for check --repair.
	[[ -p $(qdir b)/dedup/${ids[1]} ]] || fail "planted FIFO gone"
}

# The lines of an inbox whose queue is full: one per wait, then the one of
# --drain giving up.
FULL_WHY='queue full \(max_messages or max_bytes in queue\.conf\)'
FULL_WAIT_RE="^qbridge: b: send: $FULL_WHY; retrying in [0-9]+\\.[0-9]{3}s\$"
FULL_END_RE="^qbridge: b: send: $FULL_WHY; giving up\$"

# inbox_full_fill: the messages 1 to 20 in the broker, queue b taking 5
# (max_messages = 5, overflow = reject).
inbox_full_fill() {
	seq 1 20 | qsend -l a
	run qbridge out --drain -q a "$URL"
	assert_success
	qadmin config b set max_messages=5 overflow=reject >/dev/null
}

# took_all N: take what is ready in b (qrecv -A) into $T/took; true once
# N bodies were taken.
took_all() {
	qrecv -A -n 20 b >>"$T/took" 2>/dev/null || true
	(( $(wc -l <"$T/took") >= $1 ))
}

# qb_inbox_full_drain: queue b full: the inbox holds its batch, not acked,
# and sends it again after each wait of the back-off, one line per wait
# (not per try); --drain gives up after 4 waits with 75.  Emptied and run
# again, the inbox brings the rest, in order, nothing lost or twice.
qb_inbox_full_drain() {
	local round rc
	inbox_full_fill
	run --separate-stderr timeout 30 qbridge in -q --drain "$URL_IN" b
	assert_equal "$status" 75
	assert_equal "$(bodies new b)" "$(seq 1 5)"
	assert_equal "${#stderr_lines[@]}" 5
	for round in 0 1 2 3; do
		[[ ${stderr_lines[round]} =~ $FULL_WAIT_RE ]] ||
		    fail "wait $round: ${stderr_lines[round]}"
	done
	[[ ${stderr_lines[4]} =~ $FULL_END_RE ]] || fail "end: ${stderr_lines[4]}"
	# Nothing was acked that did not go in: emptied, the queue takes the
	# rest, 5 at a time, one run after the other.
	qrecv -A -n 5 b >"$T/took"
	for round in 1 2 3 4 5; do
		rc=0
		timeout 30 qbridge in -q --drain "$URL_IN" b 2>>"$T/in.log" ||
		    rc=$?
		qrecv -A -n 5 b >>"$T/took" 2>/dev/null || true
		(( rc == 0 )) && break
		assert_equal "$rc" 75
	done
	assert_equal "$rc" 0
	assert_equal "$(cat "$T/took")" "$(seq 1 20)"
	assert_count new b 0
	# Each run gave up after its own 4 waits.
	assert_equal "$(grep -Ec "$FULL_END_RE" "$T/in.log")" $((round - 1))
	assert_equal "$(grep -Evc "$FULL_WAIT_RE|$FULL_END_RE" "$T/in.log")" 0
}

# qb_inbox_full_flows: queue b full under an inbox that runs on: it waits
# with a line per wait, and once a consumer takes from b the rest flows
# in, in order.
qb_inbox_full_flows() {
	inbox_full_fill
	qbridge in -q "$URL_IN" b 2>"$T/in.log" &
	in=$!
	bridge_wait 60 grep -Eq "$FULL_WAIT_RE" "$T/in.log"
	: >"$T/took"
	bridge_wait 120 took_all 20
	kill -TERM "$in"
	wait "$in"
	assert_equal "$(cat "$T/took")" "$(seq 1 20)"
	assert_count new b 0
	# Every line is a wait's.
	run grep -Evc "$FULL_WAIT_RE" "$T/in.log"
	assert_output 0
}

# took_none QUEUE: a qrecv on QUEUE gets nothing (it would recover the
# claims of a worker whose heartbeat is older than its lease); what it
# got goes into $T/stolen.
took_none() {
	local got
	got=$(qrecv -n 10 "$1" 2>/dev/null) || true
	[[ -z $got ]] || { echo "$got" >>"$T/stolen"; return 1; }
}

# qb_outage_heartbeat: an outbox of a queue with a short lease (3 s)
# holds its claims through an outage of the broker whose waits grow past
# the lease; it beats meanwhile, so another consumer of the queue never
# recovers them.  Once the broker is back each message goes out once,
# in order.
qb_outage_heartbeat() {
	local t0
	qadmin config a set lease=3s >/dev/null
	seq 1 5 | qsend -l a
	broker_stop
	qbridge out a "$URL" 2>"$T/out.log" &
	out=$!
	# A wait of 6.4 s less up to a fifth, longer than the lease, under
	# way with the 5 messages claimed.
	bridge_wait 60 grep -Eq 'retrying in [5-9]\.[0-9]{3}s$' "$T/out.log"
	assert_count cur a 5
	# Two leases and more, through that wait and into the next: a
	# consumer of a finds nothing to recover.
	: >"$T/stolen"
	t0=$(now_f)
	until float_past "$t0" 7; do
		took_none a || fail "recovered from a live bridge: $(cat "$T/stolen")"
		sleep 0.2
	done
	assert_count cur a 5
	broker_start
	bridge_wait 120 outbox_empty a
	kill -TERM "$out"
	wait "$out"
	run qbridge in --drain -q "$URL" b
	assert_success
	assert_equal "$(bodies new b)" "$(seq 1 5)"
}

# The lines of an inbox whose queue of overflow = block stays full.
BLOCK_WHY='queue full \(max_messages or max_bytes in queue\.conf, overflow = block\)'
BLOCK_WAIT_RE="^qbridge: b: send: $BLOCK_WHY; waiting up to [0-9]+\\.[0-9]{3}s for room\$"
BLOCK_END_RE="^qbridge: b: send: $BLOCK_WHY; giving up\$"

# qb_inbox_block: queue b of overflow = block, full: the inbox waits for
# room in slices, one line per wait; SIGTERM stops it within a slice with
# the batch given back, --drain gives up after 4 waits with 75, and once
# a consumer takes from b the rest flows in, in order.
qb_inbox_block() {
	local t0 round
	inbox_full_fill
	qadmin config b set overflow=block >/dev/null
	qbridge in "$URL_IN" b 2>"$T/in.log" &
	in=$!
	# A wait of 1.6 s less up to a fifth: the fifth.
	bridge_wait 60 grep -Eq 'waiting up to 1\.[0-9]{3}s for room$' "$T/in.log"
	t0=$(now_f)
	kill -TERM "$in"
	rc=0
	wait "$in" || rc=$?
	assert_equal "$rc" 0
	float_between "$(elapsed_since "$t0")" 0 4
	assert_equal "$(grep -Ec "$BLOCK_WAIT_RE" "$T/in.log")" 5
	assert_equal "$(wc -l <"$T/in.log")" 5
	assert_equal "$(bodies new b)" "$(seq 1 5)"
	run --separate-stderr timeout 60 qbridge in -q --drain "$URL_IN" b
	assert_equal "$status" 75
	assert_equal "${#stderr_lines[@]}" 5
	for round in 0 1 2 3; do
		[[ ${stderr_lines[round]} =~ $BLOCK_WAIT_RE ]] ||
		    fail "wait $round: ${stderr_lines[round]}"
	done
	[[ ${stderr_lines[4]} =~ $BLOCK_END_RE ]] || fail "end: ${stderr_lines[4]}"
	assert_equal "$(bodies new b)" "$(seq 1 5)"
	qbridge in -q "$URL_IN" b 2>"$T/in.log" &
	in=$!
	: >"$T/took"
	bridge_wait 120 took_all 20
	kill -TERM "$in"
	wait "$in"
	assert_equal "$(cat "$T/took")" "$(seq 1 20)"
	assert_count new b 0
}

# qb_inbox_toolarge: a message larger than queue b's max_bytes alone,
# which would never fit, goes to b's dead letters with r=toolarge and one
# line, and is acked; the rest flows on, in order.  A batch held behind
# it (b full) does not set it aside again at each try, nor when the
# broker gives it again.
qb_inbox_toolarge() {
	local big
	big=$(printf 'x%.0s' {1..200})
	{ echo 1; echo "$big"; seq 2 5; } | qsend -l a
	run qbridge out --drain -q a "$URL"
	assert_success
	qadmin config b set max_bytes=100 max_messages=3 overflow=reject \
	    >/dev/null
	run --separate-stderr timeout 60 qbridge in -q --drain "$URL_IN" b
	assert_equal "$status" 75
	[[ ${stderr_lines[0]} =~ ^qbridge:\ b:\ [^\ ]+:\ 200\ bytes,\ larger\ than\ the\ queue\'s\ max_bytes\ \(100\)\;\ dead-lettered\ \(r=toolarge\)$ ]] ||
	    fail "line: ${stderr_lines[0]}"
	assert_equal "${#stderr_lines[@]}" 6
	assert_equal "$(bodies new b)" "$(seq 1 3)"
	assert_count dead b 1
	assert_equal "$(bodies dead b)" "$big"
	[[ $(names dead b) == *,r=toolarge* ]] || fail "$(names dead b)"
	qrecv -A -n 3 b >"$T/took"
	run --separate-stderr timeout 60 qbridge in --drain "$URL_IN" b
	assert_success
	qrecv -A -n 3 b >>"$T/took"
	assert_equal "$(cat "$T/took")" "$(seq 1 5)"
	assert_count dead b 1
	assert_equal "${#stderr_lines[@]}" 1
	# Given back when the first run gave up, it came again: it was
	# deduplicated as a send, and is not dead-lettered twice.
	[[ ${stderr_lines[0]} == *" -> b: 6 received, 4 duplicates "* ]] ||
	    fail "line: ${stderr_lines[0]}"
	# The batch's line counts it.
	qsend a "$big"
	qbridge out --drain -q a "$URL"
	run --separate-stderr timeout 60 qbridge in --drain "$URL_IN" b
	assert_success
	assert_equal "${#stderr_lines[@]}" 2
	[[ ${stderr_lines[1]} == *" -> b: 1 received, 0 duplicates, 1 dead (r=toolarge) "* ]] ||
	    fail "line: ${stderr_lines[1]}"
	assert_count dead b 2
}

# ready_cur QUEUE: something of QUEUE is claimed.
ready_cur() {
	(( $(count cur "$1") > 0 ))
}
