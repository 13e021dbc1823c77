#!/usr/bin/env bats
# qbridge with a real nats-server (JetStream): round trip, faults of the
# server and of the bridge, errors.  One server per file, on a free port
# of 127.0.0.1; each test uses a stream of its own.

load helpers
load bridge

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
	mkq a
	# The inbox commits message by message (each has its dedup ID):
	# without fsync, so that the suite stays short.
	mkq b durability=none
}

teardown() {
	spoolq_teardown
}

# restart: kill -9 the shared server and start it again on its port.
restart() {
	nats_kill
	nats_start "$NDIR" "$NATS_PORT" || fail "restart: $BRIDGE_SKIP"
	echo "$NATS_PID" >"$BATS_FILE_TMPDIR/nats.pid"
}

# ready_over QUEUE N: more than N messages are ready in QUEUE.
ready_over() {
	(( $(count new "$1") > $2 ))
}

# outbox_empty QUEUE: nothing ready or claimed is left in QUEUE.
outbox_empty() {
	(( $(count new "$1") + $(count cur "$1") == 0 ))
}

@test "nats: round trip of $BRIDGE_N messages, byte for byte with keys and attributes, in order" {
	bridge_fill a "$BRIDGE_N"
	want=$(bridge_digest a)
	run qbridge out --drain a "$URL"
	assert_success
	assert_line --regexp "^qbridge: a -> $URL: 100 sent, 0 refused, 0 pending"
	assert_count new a 0
	assert_count cur a 0
	run qbridge in --drain "$URL?durable=d" b
	assert_success
	assert_count new b "$BRIDGE_N"
	assert_lines_eq "$want" "$(bridge_digest b)"
	# Again: nothing new arrives, everything was acked.
	run qbridge in --drain "$URL?durable=d" b
	assert_success
	assert_count new b "$BRIDGE_N"
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
	bridge_fill a "$BRIDGE_N"
	want=$(bridge_bodies a)
	qbridge out a "$URL" 2>"$T/out.log" &
	out=$!
	qbridge in "$URL?ackwait=1s" b 2>"$T/in.log" &
	in=$!
	wait_for -t 120 ready_over b $((BRIDGE_N / 4))
	restart
	wait_for -t 240 ready_over b $((BRIDGE_N - 1))
	kill -TERM "$out" "$in"
	wait "$out"
	wait "$in"
	assert_lines_eq "$want" "$(bridge_bodies b)"
	assert_count new a 0
	assert_count cur a 0
	run cat "$T/out.log" "$T/in.log"
	assert_output --regexp 'retrying in [0-9.]+s'
}

@test "nats: qbridge killed (kill -9) at random moments: nothing lost, nothing twice" {
	bridge_fill a "$BRIDGE_N"
	want=$(bridge_bodies a)
	bridge_kill_rounds "$URL" "$URL?ackwait=1s"
	qbridge out --drain -q a "$URL"
	# What a killed inbox was given comes again after the ack wait.
	qbridge in -q "$URL?ackwait=1s" b &
	in=$!
	wait_for -t 120 ready_over b $((BRIDGE_N - 1))
	kill -TERM "$in"
	wait "$in"
	assert_count new a 0
	assert_count cur a 0
	assert_lines_eq "$want" "$(bridge_bodies b)"
}

@test "nats: the server away: sends succeed locally, the backlog drains on its return" {
	nats_kill
	bridge_fill a 300
	want=$( (bridge_bodies a; echo 6c617465) | sort)	# + "late"
	qbridge out a "$URL" 2>"$T/out.log" &
	out=$!
	wait_for grep -q 'No server available for connection; retrying in' \
	    "$T/out.log"
	# Senders go on meanwhile.
	qsend a late
	nats_start "$NDIR" "$NATS_PORT" || fail "restart: $BRIDGE_SKIP"
	echo "$NATS_PID" >"$BATS_FILE_TMPDIR/nats.pid"
	wait_for -t 180 outbox_empty a
	kill -TERM "$out"
	wait "$out"
	qbridge in --drain -q "$URL" b
	assert_lines_eq "$want" "$(bridge_bodies b)"
}

@test "nats: unroutable and oversized messages are dead-lettered with their reasons" {
	# The stream exists with the subject S$S; S$S-other is nobody's.
	qsend a first
	qbridge out --drain -q a "$URL"
	qsend a lost
	run qbridge out --drain a "$URL?subject=S$S-other"
	assert_success
	assert_line --regexp " a dead:unroutable$"
	[[ $(only dead a) == *,r=unroutable ]] || fail "$(only dead a)"
	head -c 1200000 /dev/zero | qsend a
	qsend a after
	run qbridge out --drain a "$URL"
	assert_success
	assert_count dead a 2
	assert_equal "$(names dead a | grep -c ',r=refused$')" 1
	qbridge in --drain -q "$URL" b
	assert_equal "$(bodies new b)" $'first\nafter'
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
	tls_certs "$T/tls" || skip "$BRIDGE_SKIP"
	local NATS_PID NATS_PORT
	nats_start "$T/tlsnats" "" --tls --tlscert "$T/tls/server.pem" \
	    --tlskey "$T/tls/server.key" || skip "$BRIDGE_SKIP"
	TURL=tls://localhost:$NATS_PORT/S$S
	qsend a one two
	# Not signed by a CA of the system's.
	expect_fail 78 qbridge out --drain a "$TURL"
	assert_output --regexp "^qbridge: $TURL: connect: SSL handshake error: .*unable to get local issuer certificate.* \(not signed by a CA the system trusts; --cacert FILE names others\)\$"
	assert_equal "${#lines[@]}" 1
	# Nor by the CA named.
	expect_fail 78 qbridge out --drain --cacert "$T/tls/other.pem" a "$TURL"
	assert_output --regexp "^qbridge: $TURL: connect: SSL handshake error: .* \(not signed by a CA of $T/tls/other.pem\)\$"
	assert_equal "${#lines[@]}" 1
	# nats:// goes TLS for a server that requires it, verified as well.
	expect_fail 78 qbridge out --drain a "nats://localhost:$NATS_PORT/S$S"
	assert_output --partial 'unable to get local issuer certificate'
	# The right CA, but the URL names a host the certificate does not.
	expect_fail 78 qbridge out --drain --cacert "$T/tls/ca.pem" a \
	    "tls://127.0.0.1:$NATS_PORT/S$S"
	assert_output --regexp "^qbridge: tls://127.0.0.1:$NATS_PORT/S$S: connect: SSL handshake error: .*mismatch.* \(the certificate does not name 127.0.0.1\)\$"
	assert_equal "${#lines[@]}" 1
	assert_count new a 2
	assert_count cur a 0
	# Trusted: the round trip.
	run qbridge out --drain --cacert "$T/tls/ca.pem" a "$TURL"
	assert_success
	assert_line "qbridge: a -> $TURL: 2 sent, 0 refused, 0 pending ${lines[0]##* }"
	assert_count new a 0
	qbridge in --drain -q --cacert "$T/tls/ca.pem" "$TURL" b
	assert_equal "$(bodies new b)" $'one\ntwo'
	expect_fail 78 qbridge out --cacert "$T/nosuch" a "$TURL"
	assert_output "qbridge: $T/nosuch: No such file or directory"
	qsend a three
	expect_fail 78 qbridge out --drain --cacert "$T/tls/ext" a "$TURL"
	assert_output --regexp "^qbridge: $TURL: options: Error loading trusted certificates '$T/tls/ext'"
	assert_equal "${#lines[@]}" 1
	assert_count new a 1
	nats_kill
}

@test "nats: a message's group (qsend -g) crosses the bridge as the header Spoolq-Group and holds in the inbox" {
	bridge_groups_check "$URL" "$URL"
}
