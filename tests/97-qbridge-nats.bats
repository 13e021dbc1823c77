#!/usr/bin/env bats
# qbridge with a real nats-server (JetStream): round trip, faults of the
# server and of the bridge, errors.  One server per file, on a free port
# of 127.0.0.1; each test uses a stream of its own.
# The bodies the three broker suites share are in qbridge_common.bash,
# run here with this file's server, URLs and hooks.

load helpers
load bridge
load qbridge_common

setup_file() {
	export NDIR="$BATS_FILE_TMPDIR/nats"
	if nats_start "$NDIR"; then
		export NATS_PID NATS_PORT
		echo "$NATS_PID" >"$BATS_FILE_TMPDIR/nats.pid"
	else
		export BRIDGE_SKIP
	fi
}

teardown_file() {
	local pid
	pid=$(cat "$BATS_FILE_TMPDIR/nats.pid" 2>/dev/null) || return 0
	kill -9 "$pid" 2>/dev/null || true
}

setup() {
	spoolq_setup
	[[ -z ${BRIDGE_SKIP-} ]] || skip "$BRIDGE_SKIP"
	NATS_PID=$(cat "$BATS_FILE_TMPDIR/nats.pid")
	nats_up "$NDIR" || skip "nats-server stopped"
	S=$BATS_TEST_NUMBER
	URL=nats://127.0.0.1:$NATS_PORT/S$S
	URL_IN="$URL?durable=d"
	URL_KILL="$URL?ackwait=1s"
	AWAY_ERR='No server available for connection'
	TLS_CHAIN_RE='SSL handshake error: .*unable to get local issuer certificate.*'
	TLS_HOST_RE='SSL handshake error: .*mismatch.*'
	mkq a
	# The inbox commits its batches (each message with its dedup ID)
	# without fsync, so that the suite stays short.
	mkq b durability=none
}

teardown() {
	[[ -z ${TLS_PID-} ]] || kill -9 "$TLS_PID" 2>/dev/null || true
	spoolq_teardown
}

broker_stop() {
	nats_kill
}

# broker_start: the shared server again, on its port.
broker_start() {
	nats_start "$NDIR" "$NATS_PORT" || fail "restart: $BRIDGE_SKIP"
	echo "$NATS_PID" >"$BATS_FILE_TMPDIR/nats.pid"
}

away_drained() {
	outbox_empty a
}

# tls_server: a server of the test's own that requires TLS, with a
# certificate for localhost of a throw-away CA; the shared one is left.
tls_server() {
	local pid=$NATS_PID port=$NATS_PORT
	CA=$T/tls
	tls_certs "$CA" || skip "$BRIDGE_SKIP"
	nats_start "$T/tlsnats" "" --tls --tlscert "$CA/server.pem" \
	    --tlskey "$CA/server.key" || skip "$BRIDGE_SKIP"
	TLS_PID=$NATS_PID TLS_PORT=$NATS_PORT
	TLS_URL=tls://localhost:$TLS_PORT/S$S
	TLS_IP_URL=tls://127.0.0.1:$TLS_PORT/S$S
	NATS_PID=$pid NATS_PORT=$port
}

@test "nats: round trip of $BRIDGE_N messages, byte for byte with keys and attributes, in order" {
	qb_round_trip
}

@test "nats: a re-publish of a message is dropped by the stream (Nats-Msg-Id)" {
	qsend a one
	n=$(only new a)
	cp -p "$(qdir a)/new/$n" "$T/copy"
	qbridge out --drain -q a "$URL"
	# The same message once more, as after a crash before the local ack.
	mv "$T/copy" "$(qdir a)/new/$n"
	qbridge out --drain -q a "$URL"
	qbridge in --drain -q "$URL" b
	assert_count new b 1
}

@test "nats: the server killed (kill -9) and restarted mid-way: nothing lost, nothing twice" {
	qb_server_killed
}

@test "nats: qbridge killed (kill -9) at random moments: nothing lost, nothing twice" {
	qb_bridge_killed
}

@test "nats: qbridge in stopped (SIGTERM) gives back the batch it fetched ahead: the next inbox carries it at once, nothing lost, nothing twice" {
	bridge_fill a "$BRIDGE_N"
	want=$(bridge_bodies a)
	qbridge out --drain -q a "$URL"
	# An ack wait far longer than any wait below: a batch not given back
	# would come again only after it.
	url="$URL?durable=d&ackwait=10m"
	qbridge in --batch 10 "$url" b 2>"$T/in.log" &
	in=$!
	bridge_wait 120 ready_over b 50
	kill -TERM "$in"
	wait "$in"
	qbridge in --batch 10 "$url" b 2>"$T/in.log" &
	in=$!
	bridge_wait 120 ready_over b $((BRIDGE_N - 1))
	kill -TERM "$in"
	wait "$in"
	assert_lines_eq "$want" "$(bridge_bodies b)"
}

# sends_failed N: qbridge in's log ($T/in.log) tells of N failed local
# sends or more.
sends_failed() {
	(( $(grep -c '^qbridge: b: send: ' "$T/in.log") >= $1 ))
}

@test "nats: qbridge in keeps the stream's order through failed local sends (the queue full): it sends the batch again, and gives it back with the one fetched ahead on SIGHUP, without waiting out the ack wait" {
	local f
	seq 1 100 | qsend -l a
	qbridge out --drain -q a "$URL"
	# Two batches of 10 and half the third fit (a batch is admitted
	# message by message); the rest is refused until there is room.
	qadmin config b set max_messages=25 overflow=reject
	# An ack wait far longer than any wait below: a batch given back
	# late would come again only after it, behind the batches after it.
	url="$URL?durable=d&ackwait=10m"
	qbridge in --batch 10 "$url" b 2>"$T/in.log" &
	in=$!
	bridge_wait 120 sends_failed 3
	assert_count new b 25
	# Room for 25 more: the batch refused is sent, then the next ones,
	# until the queue is full again.
	qrecv -A -n 25 b >"$T/taken"
	f=$(grep -c '^qbridge: b: send: ' "$T/in.log")
	bridge_wait 120 sends_failed $((f + 3))
	assert_count new b 25
	# No bound, read on SIGHUP, which closes the connection: what the
	# bridge holds is given back, in order, and fetched again at once.
	qadmin config b set max_messages=0
	kill -HUP "$in"
	bridge_wait 120 ready_over b 74
	kill -TERM "$in"
	wait "$in"
	assert_count new b 75
	assert_lines_eq "$(seq 1 100)" "$(cat "$T/taken"; bodies new b)"
}

@test "nats: qbridge in --drain takes the whole stream in batches as large as the consumer's limit of unacknowledged messages (1000): a batch fetched ahead that the server held back is fetched again" {
	local f id
	seq 1 2500 | qsend -l a
	# The first message's Nats-Msg-Id is its ID here: its marker in b,
	# held locked for 3 s, keeps the first batch from being acknowledged
	# for longer than the 1 s that the fetch asked for ahead waits.
	id=$(names new a | head -n 1)
	id=${id%%,*}
	qbridge out --drain -q a "$URL"
	mkdir -p "$(qdir b)/dedup"
	flock "$(qdir b)/dedup/$id" sleep 3 &
	wait_for bash -c '! flock -n "$0" true' "$(qdir b)/dedup/$id"
	run qbridge in -q --drain --batch 1000 "$URL_IN" b
	assert_success
	assert_count new b 2500
	assert_equal "$(for f in "$(qdir b)"/new/*; do cat "$f"; echo; done |
	    sort -n)" "$(seq 1 2500)"
}

@test "nats: the server away: sends succeed locally, the backlog drains on its return" {
	qb_server_away
}

@test "nats: unroutable and oversized messages (a body over max_payload, or one its headers take over it) are dead-lettered with their reasons" {
	# The stream exists with the subject S$S; S$S-other is nobody's.
	qsend a first
	qbridge out --drain -q a "$URL"
	qsend a lost
	run qbridge out --drain a "$URL?subject=S$S-other"
	assert_success
	assert_line --regexp " a dead:unroutable$"
	[[ $(only dead a) == *,r=unroutable ]] || fail "$(only dead a)"
	head -c 1200000 /dev/zero | qsend a
	# Under max_payload (1 MiB) alone, over it with its headers.
	head -c 1048000 /dev/zero | qsend -H "pad=$(printf '%01000d' 0)" a
	qsend a after
	run qbridge out --drain a "$URL"
	assert_success
	refute_output --partial 'retrying'
	assert_count dead a 3
	assert_equal "$(names dead a | grep -c ',r=refused\(,h\)\?$')" 2
	qbridge in --drain -q "$URL" b
	assert_equal "$(bodies new b)" $'first\nafter'
}

@test "nats: a message whose dedup marker's name is taken by a non-file goes to dead/ with r=badmarker, the rest of its batch flows on" {
	qb_bad_marker
}

@test "nats: bad URLs and credentials: one line and the sysexits code" {
	qsend a x
	expect_fail 78 qbridge out a "nats://127.0.0.1:$NATS_PORT/"
	assert_output "qbridge: nats://127.0.0.1:$NATS_PORT/: no stream name ([A-Za-z0-9_-]: nats://HOST:PORT/STREAM)"
	expect_fail 78 qbridge in "$URL?durable=a.b" b
	assert_output 'qbridge: durable=a.b: not a consumer name'
	expect_fail 69 qbridge out --drain a "nats://127.0.0.1:$(free_port)/S"
	assert_line --index 0 --regexp 'connect: No server available for connection; retrying in [0-9.]+s$'
	assert_count new a 1
	# A server of its own that wants a user and password.
	local NATS_PID NATS_PORT
	nats_start "$T/auth" "" --user u --pass right || skip "$BRIDGE_SKIP"
	QBRIDGE_USER=u QBRIDGE_PASSWORD=wrong expect_fail 77 \
	    qbridge out --drain a "nats://127.0.0.1:$NATS_PORT/S"
	assert_output "qbridge: nats://127.0.0.1:$NATS_PORT/S: connect: Authorization Violation"
	QBRIDGE_USER=u QBRIDGE_PASSWORD=right run qbridge out --drain a \
	    "nats://127.0.0.1:$NATS_PORT/S"
	nats_kill
	assert_success
	assert_count new a 0
}

@test "nats: tls:// verifies the server: a CA of --cacert is trusted; an unknown CA or another host name is refused (78), nothing lost" {
	qb_tls
	# nats:// goes TLS for a server that requires it, verified as well.
	qsend a three
	expect_fail 78 qbridge out --drain a "nats://localhost:$TLS_PORT/S$S"
	assert_output --partial 'unable to get local issuer certificate'
	expect_fail 78 qbridge out --cacert "$T/nosuch" a "$TLS_URL"
	assert_output "qbridge: $T/nosuch: No such file or directory"
	expect_fail 78 qbridge out --drain --cacert "$CA/ext" a "$TLS_URL"
	assert_output --regexp "^qbridge: $TLS_URL: options: Error loading trusted certificates '$CA/ext'"
	assert_equal "${#lines[@]}" 1
	assert_count new a 1
}

@test "nats: a message's group (qsend -g) crosses the bridge as the header Spoolq-Group and holds in the inbox" {
	qb_groups
}

@test "nats: one outbox with --drain carries all 100 messages of a group, in order, each freed by the ack of the one before" {
	qb_group_drain
}

@test "nats: queue b full: the inbox holds its batch and waits, one line per wait, and --drain gives up after 4 waits with 75; the batch given back (Nak), the rest comes in order" {
	qb_inbox_full_drain
}

@test "nats: queue b full under a running inbox: once a consumer takes from b, the rest flows in, in order" {
	qb_inbox_full_flows
}

# c_took_nothing URL: an inbox of URL into queue c, run to its end,
# took nothing.
c_took_nothing() {
	qbridge in -q --drain "$1" c 2>>"$T/c.log" || true
	assert_count new c 0
}

@test "nats: a batch held by a full queue past the consumer's ack wait is kept in progress: a second inbox on the consumer gets none of it, and every message comes once, in order" {
	local t0 url="$URL?durable=d&ackwait=2s"
	mkq c durability=none
	inbox_full_fill
	qbridge in -q "$url" b 2>"$T/in.log" &
	in=$!
	bridge_wait 60 grep -Eq "$FULL_WAIT_RE" "$T/in.log"
	assert_equal "$(bodies new b)" "$(seq 1 5)"
	# Three ack waits of the held batch: the server redelivers nothing
	# of it, to this inbox or any other of the consumer.
	t0=$(now_f)
	until float_past "$t0" 6; do
		c_took_nothing "$url"
	done
	assert_count new c 0
	: >"$T/took"
	bridge_wait 120 took_all 20
	kill -TERM "$in"
	wait "$in"
	assert_equal "$(cat "$T/took")" "$(seq 1 20)"
	assert_count new b 0
	run qbridge in -q --drain "$url" c
	assert_success
	assert_count new c 0
}

@test "nats: queue b full with overflow = block: the inbox waits for room in slices, one line per wait; SIGTERM stops it at once, --drain gives up with 75, and the rest comes in order once there is room" {
	qb_inbox_block
}

@test "nats: a message larger than queue b's max_bytes goes to b's dead letters with r=toolarge and one line, acked; the rest flows on in order, and a batch held behind it does not set it aside twice" {
	qb_inbox_toolarge
}

@test "nats: an outbox of a queue with a 3 s lease beats through an outage whose waits outgrow the lease: its claims are never recovered, each message goes out once" {
	qb_outage_heartbeat
}
