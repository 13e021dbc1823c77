#!/usr/bin/env bats
# qbridge with a real rabbitmq-server (AMQP 0-9-1): round trip, faults of
# the server and of the bridge, errors.  The server is slow to start: one
# per file, on free ports of 127.0.0.1 with a private node, epmd and
# directory; each test uses queues of its own.

load helpers
load bridge

setup_file() {
	export RDIR="$BATS_FILE_TMPDIR/rabbit"
	# A TLS listener too, with a certificate of a throw-away CA.
	if tls_certs "$BATS_FILE_TMPDIR/tls"; then
		export RABBIT_TLS_PORT=$(free_port)
		rabbit_tls "$RDIR" "$BATS_FILE_TMPDIR/tls" "$RABBIT_TLS_PORT"
	else
		export TLS_SKIP=$BRIDGE_SKIP
	fi
	if rabbit_start "$RDIR"; then
		export RABBIT_PORT RABBIT_PORTS
	else
		export BRIDGE_SKIP
	fi
}

teardown_file() {
	[[ -n ${RABBIT_PORTS-} ]] && rabbit_stop "$RDIR"
}

setup() {
	spoolq_setup
	[[ -z ${BRIDGE_SKIP-} ]] || skip "$BRIDGE_SKIP"
	rabbit_up "$RDIR" || skip "rabbitmq-server stopped"
	S=$BATS_TEST_NUMBER
	URL="amqp://127.0.0.1:$RABBIT_PORT/?queue=q$S"
	mkq a
	# The inbox commits message by message (each has its dedup ID):
	# without fsync, so that the suite stays short.
	mkq b durability=none
}

teardown() {
	spoolq_teardown
}

# ready_over QUEUE N: more than N messages are ready in QUEUE.
ready_over() {
	(( $(count new "$1") > $2 ))
}

@test "rabbitmq: round trip of $BRIDGE_N messages, byte for byte with keys and attributes, in order" {
	bridge_fill a "$BRIDGE_N"
	want=$(bridge_digest a)
	run qbridge out --drain a "$URL"
	assert_success
	assert_line --regexp "^qbridge: a -> amqp://[^ ]+: 100 sent, 0 refused, 0 pending"
	assert_count new a 0
	assert_count cur a 0
	run qbridge in --drain "$URL" b
	assert_success
	assert_count new b "$BRIDGE_N"
	assert_lines_eq "$want" "$(bridge_digest b)"
	# Again: nothing new arrives, everything was acked.
	run qbridge in --drain "$URL" b
	assert_success
	assert_count new b "$BRIDGE_N"
}

@test "rabbitmq: the server killed (kill -9) mid-way and away a while: sends go on, nothing lost, nothing twice" {
	bridge_fill a "$BRIDGE_N"
	want=$( (bridge_bodies a; echo 6c617465) | sort)	# + "late"
	qbridge out a "$URL" 2>"$T/out.log" &
	out=$!
	qbridge in "$URL" b 2>"$T/in.log" &
	in=$!
	wait_for -t 120 ready_over b $((BRIDGE_N / 4))
	rabbit_kill "$RDIR"
	# Senders go on meanwhile; the outbox, done with the rest already
	# or not, finds the server gone when it carries this one.
	qsend a late
	wait_for grep -q 'retrying in' "$T/out.log"
	rabbit_start "$RDIR" "$RABBIT_PORTS" || fail "restart: $BRIDGE_SKIP"
	wait_for -t 240 ready_over b "$BRIDGE_N"
	kill -TERM "$out" "$in"
	wait "$out"
	wait "$in"
	assert_lines_eq "$want" "$(bridge_bodies b)"
	assert_count new a 0
	assert_count cur a 0
}

@test "rabbitmq: qbridge killed (kill -9) at random moments: nothing lost, nothing twice" {
	bridge_fill a "$BRIDGE_N"
	want=$(bridge_bodies a)
	bridge_kill_rounds "$URL" "$URL"
	qbridge out --drain -q a "$URL"
	qbridge in --drain -q "$URL" b
	assert_count new a 0
	assert_count cur a 0
	assert_lines_eq "$want" "$(bridge_bodies b)"
}

@test "rabbitmq: unroutable messages are dead-lettered with r=unroutable, the rest go" {
	qsend a first
	qbridge out --drain -q a "$URL"
	qsend a lost
	run qbridge out --drain a "amqp://127.0.0.1:$RABBIT_PORT/?exchange=amq.direct&key=nobody"
	assert_success
	assert_line --regexp " a dead:unroutable$"
	[[ $(only dead a) == *,r=unroutable ]] || fail "$(only dead a)"
	qsend a after
	qbridge out --drain -q a "$URL"
	qbridge in --drain -q "$URL" b
	assert_equal "$(bodies new b)" $'first\nafter'
}

@test "rabbitmq: bad URLs and credentials: one line and the sysexits code" {
	qsend a x
	expect_fail 78 qbridge in "amqp://127.0.0.1:$RABBIT_PORT/" b
	assert_output "qbridge: amqp://127.0.0.1:$RABBIT_PORT/: no queue (amqp://HOST/VHOST?queue=QUEUE)"
	expect_fail 78 qbridge out --drain a "amqp://127.0.0.1:$RABBIT_PORT/?exchange=nosuch"
	assert_output --regexp "^qbridge: amqp://[^ ]+: channel closed: NOT_FOUND - no exchange 'nosuch'"
	assert_equal "${#lines[@]}" 1
	QBRIDGE_USER=guest QBRIDGE_PASSWORD=wrong expect_fail 77 \
	    qbridge out --drain a "$URL"
	assert_output --regexp "^qbridge: amqp://[^ ]+: login: ACCESS_REFUSED"
	assert_equal "${#lines[@]}" 1
	expect_fail 69 qbridge out --drain a "amqp://127.0.0.1:$(free_port)/"
	assert_line --regexp 'connect: .*; giving up$'
	assert_count new a 1
}

@test "rabbitmq: amqps:// verifies the server: a CA of --cacert is trusted; an unknown CA or another host name is refused (78), nothing lost" {
	[[ -z ${TLS_SKIP-} ]] || skip "$TLS_SKIP"
	CA=$BATS_FILE_TMPDIR/tls
	TURL="amqps://localhost:$RABBIT_TLS_PORT/?queue=q$S"
	qsend a one two
	# Not signed by a CA of the system's.
	expect_fail 78 qbridge out --drain a "$TURL"
	assert_output --regexp "^qbridge: amqps://[^ ]+: connect: SSL peer cert verification failed: .* \(not signed by a CA the system trusts; --cacert FILE names others\)\$"
	assert_equal "${#lines[@]}" 1
	# Nor by the CA named.
	expect_fail 78 qbridge out --drain --cacert "$CA/other.pem" a "$TURL"
	assert_output --regexp "^qbridge: amqps://[^ ]+: connect: SSL peer cert verification failed: .* \(not signed by a CA of $CA/other.pem\)\$"
	assert_equal "${#lines[@]}" 1
	# The right CA, but the URL names a host the certificate does not.
	expect_fail 78 qbridge out --drain --cacert "$CA/ca.pem" a \
	    "amqps://127.0.0.1:$RABBIT_TLS_PORT/?queue=q$S"
	assert_output "qbridge: amqps://127.0.0.1:$RABBIT_TLS_PORT/?queue=q$S: connect: SSL hostname verification failed (the certificate does not name 127.0.0.1)"
	assert_count new a 2
	assert_count cur a 0
	# Trusted: the round trip.
	run qbridge out --drain --cacert "$CA/ca.pem" a "$TURL"
	assert_success
	assert_line --regexp "^qbridge: a -> amqps://[^ ]+: 2 sent, 0 refused, 0 pending"
	assert_count new a 0
	qbridge in --drain -q --cacert "$CA/ca.pem" "$TURL" b
	assert_equal "$(bodies new b)" $'one\ntwo'
	expect_fail 64 qbridge out --cacert "$CA/ca.pem" a "$URL"
	assert_output 'qbridge: --cacert: amqp:// is not TLS (tls://, amqps://)'
}

@test "rabbitmq: a message's group (qsend -g) crosses the bridge as the header Spoolq-Group and holds in the inbox" {
	bridge_groups_check "$URL" "$URL"
}
