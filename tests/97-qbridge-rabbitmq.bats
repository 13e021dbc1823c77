#!/usr/bin/env bats
# qbridge with a real rabbitmq-server (AMQP 0-9-1): round trip, faults of
# the server and of the bridge, errors.  The server is slow to start: one
# per file, on free ports of 127.0.0.1 with a private node, epmd and
# directory; each test uses queues of its own.
# The bodies the three broker suites share are in qbridge_common.bash,
# run here with this file's server, URLs and hooks.

load helpers
load bridge
load qbridge_common

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
	URL_IN=$URL
	URL_KILL=$URL
	# Until a bridge knows max_message_size, a body larger than any
	# confirmed waits for the confirms of those before it.
	HOLD_BACK=1
	TLS_CHAIN_RE='SSL peer cert verification failed: .*'
	TLS_HOST_RE='SSL hostname verification failed'
	mkq a
	# The inbox commits its batches (each message with its dedup ID)
	# without fsync, so that the suite stays short.
	mkq b durability=none
}

teardown() {
	# What a test changed in the server's settings goes back.
	[[ -z ${RABBIT_RESTORE-} ]] ||
	    rabbit_ctl "$RDIR" eval "$RABBIT_RESTORE" >/dev/null || true
	spoolq_teardown
}

# rabbit_set KEY VALUE ...: set rabbit's application settings in the
# running server (integers), put back by teardown as they were.
rabbit_set() {
	local keys=() sets=() k
	while (($# > 0)); do
		keys+=("$1")
		sets+=("ok = application:set_env(rabbit, $1, $2)")
		shift 2
	done
	k=$(IFS=,; echo "${keys[*]}")
	RABBIT_RESTORE='[case V of {ok, X} -> application:set_env(rabbit, K, X);
	    undefined -> application:unset_env(rabbit, K) end ||
	    {K, V} <- persistent_term:get(spoolq_saved)], ok.'
	rabbit_ctl "$RDIR" eval "persistent_term:put(spoolq_saved,
	    [{K, application:get_env(rabbit, K)} || K <- [$k]]),
	    $(IFS=,; echo "${sets[*]}"), ok." >/dev/null
}

# rabbit_queue_is QUEUE MESSAGES CONSUMERS: the server's count of QUEUE's
# messages (ready and unacknowledged) and consumers.
rabbit_queue_is() {
	[[ $(rabbit_ctl "$RDIR" list_queues name messages consumers |
	    awk -v q="$1" '$1 == q { print $2, $3 }') == "$2 $3" ]]
}

# take_into FILE N: take what is ready in b (at most once) into FILE;
# true once FILE holds N lines.
take_into() {
	qrecv -A b >>"$1" 2>/dev/null || true
	(($(wc -l <"$1") >= $2))
}

# tls_server: the TLS listener of the shared server (setup_file).
tls_server() {
	[[ -z ${TLS_SKIP-} ]] || skip "$TLS_SKIP"
	CA=$BATS_FILE_TMPDIR/tls
	TLS_URL="amqps://localhost:$RABBIT_TLS_PORT/?queue=q$S"
	TLS_IP_URL="amqps://127.0.0.1:$RABBIT_TLS_PORT/?queue=q$S"
}

@test "rabbitmq: round trip of $BRIDGE_N messages, byte for byte with keys and attributes, in order" {
	qb_round_trip
}

@test "rabbitmq: the server killed (kill -9) mid-way and away a while: sends go on, nothing lost, nothing twice" {
	bridge_fill a "$BRIDGE_N"
	want=$( (bridge_bodies a; echo 6c617465) | sort)	# + "late"
	# The queue declared, and its declaration on the server's disk, before
	# anything is sent: a server killed within 2 s of declaring a queue
	# may forget the queue, and all it confirmed into it (next test).
	qbridge in --drain -q "$URL" b
	rabbit_meta_sync "$RDIR"
	qbridge out a "$URL" 2>"$T/out.log" &
	out=$!
	qbridge in "$URL" b 2>"$T/in.log" &
	in=$!
	bridge_wait 120 ready_over b $((BRIDGE_N / 4))
	rabbit_kill "$RDIR"
	# Senders go on meanwhile; the outbox, done with the rest already
	# or not, finds the server gone when it carries this one.
	qsend a late
	wait_for grep -q 'retrying in' "$T/out.log"
	rabbit_start "$RDIR" "$RABBIT_PORTS" || fail "restart: $BRIDGE_SKIP"
	bridge_wait 240 ready_over b "$BRIDGE_N"
	kill -TERM "$out" "$in"
	wait "$out"
	wait "$in"
	assert_lines_eq "$want" "$(bridge_bodies b)"
	assert_count new a 0
	assert_count cur a 0
}

@test "rabbitmq: a queue declared by the outbox right before the server is killed (kill -9) keeps what it confirmed once rabbit_meta_sync put its declaration on disk" {
	local rc=0
	# The "committed" decision of the declaration held back, as a busy
	# server's can be for up to 2 s (RABBIT_SYNC_ERL in bridge.bash).
	rabbit_ctl "$RDIR" eval 'sys:suspend(mnesia_recover).' >/dev/null
	qsend a one two
	qbridge out --drain -q a "$URL" || rc=$?
	# Then logged, synced as rabbit_meta_sync does, and the server killed
	# at once, with the decision in the log's cache but for the sync.
	rabbit_ctl "$RDIR" eval "sys:resume(mnesia_recover), $RABBIT_SYNC_ERL,
	    os:cmd(\"kill -9 \" ++ os:getpid())." >/dev/null 2>&1 || true
	rabbit_kill "$RDIR"
	assert_equal "$rc" 0
	assert_count new a 0
	rabbit_start "$RDIR" "$RABBIT_PORTS" || fail "restart: $BRIDGE_SKIP"
	assert_equal "$(rabbit_ctl "$RDIR" list_queues name messages |
	    awk -v q="q$S" '$1 == q { print $1, $2 }')" "q$S 2"
	qbridge in --drain -q "$URL" b
	assert_equal "$(bodies new b)" $'one\ntwo'
}

@test "rabbitmq: a batch held past the server's consumer_timeout: the channel it closes is named, the bridge comes back, nothing lost, nothing twice" {
	# RabbitMQ closes the channel of a delivery left unacknowledged past
	# consumer_timeout (30 min by default), looked at each channel tick
	# (1 min): here 1 s and 0.2 s, for the channels opened from now on.
	rabbit_set consumer_timeout 1000 channel_tick_interval 200
	qsend a one two three
	qbridge out --drain -q a "$URL"
	qadmin config b set max_messages=1 overflow=reject >/dev/null
	qbridge in "$URL" b 2>"$T/in.log" &
	in=$!
	# One goes in, the batch is held for the rest, and the server ends
	# the channel that holds it: its deliveries are ready again.
	wait_for grep -q 'queue full' "$T/in.log"
	wait_for rabbit_queue_is "q$S" 3 0
	# Room, one message at a time: the batch goes in whole, and its ack
	# is lost with the channel; the bridge says why, connects again and
	# drops the same three given again as duplicates.
	: >"$T/got"
	wait_for take_into "$T/got" 3
	wait_for rabbit_queue_is "q$S" 0 1
	kill -TERM "$in"
	wait "$in"
	assert_equal "$(sort "$T/got")" $'one\nthree\ntwo'
	assert_count new b 0
	assert_count dead b 0
	grep -q ': channel closed: PRECONDITION_FAILED - delivery acknowledgement on channel 1 timed out' "$T/in.log" ||
	    fail "$(cat "$T/in.log")"
	refute grep -q 'unexpected protocol state' "$T/in.log"
	grep -q ' -> b: 3 received, 3 duplicates' "$T/in.log" ||
	    fail "$(cat "$T/in.log")"
}

@test "rabbitmq: qbridge killed (kill -9) at random moments: nothing lost, nothing twice" {
	qb_bridge_killed
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

# rabbit_received: how many messages the server has taken from publishers
# since it started (those a closed channel dropped unread not counted).
rabbit_received() {
	rabbit_ctl "$RDIR" eval 'maps:get(messages_received_total,
	    maps:get([{protocol, amqp091}], rabbit_global_counters:overview())).'
}

@test "rabbitmq: a body over the server's max_message_size is dead-lettered with r=refused and one line, the next one without being sent: the rest go once, in order, and the outbox ends" {
	# 1 MiB instead of 128 MiB, for the channels opened from now on.
	rabbit_set max_message_size 1048576
	qsend a before1 before2
	head -c 1200000 /dev/zero | qsend a
	qsend a middle
	head -c 1100000 /dev/zero | qsend a
	qsend a after1 after2
	r0=$(rabbit_received)
	# Refused for good each time it went out, the first would hold up the
	# queue: --drain would give up after its 4 waits, a bridge would
	# never end.
	run timeout 60 qbridge out --drain a "$URL"
	r1=$(rabbit_received)
	assert_success
	assert_count new a 0
	assert_count dead a 2
	assert_equal "$(names dead a | grep -c ',r=refused$')" 2
	assert_equal "$(grep -c ' a dead:refused$' <<<"$output")" 2
	refute_output --partial 'retrying'
	# The server took the five once and the first large body; the second
	# one, over the limit learned from the first, never went out.
	assert_equal "$((r1 - r0))" 6
	# Nothing twice at the server (the inbox would drop a duplicate).
	wait_for rabbit_queue_is "q$S" 5 0
	qbridge in --drain -q "$URL" b
	assert_equal "$(bodies new b)" \
	    $'before1\nbefore2\nmiddle\nafter1\nafter2'
	# A limit under one frame (128 KiB), with a body between the two,
	# from a bridge that has not learned it: the small ones before it
	# are confirmed before it goes out, so none goes twice.
	rabbit_ctl "$RDIR" eval \
	    'application:set_env(rabbit, max_message_size, 100000).' >/dev/null
	mkq c
	U2="amqp://127.0.0.1:$RABBIT_PORT/?queue=q${S}x"
	qsend c s1 s2 s3
	head -c 110000 /dev/zero | qsend c
	qsend c s4 s5
	r0=$(rabbit_received)
	run timeout 60 qbridge out --drain c "$U2"
	r1=$(rabbit_received)
	assert_success
	assert_count new c 0
	assert_count dead c 1
	assert_equal "$(names dead c | grep -c ',r=refused$')" 1
	assert_equal "$(grep -c ' c dead:refused$' <<<"$output")" 1
	refute_output --partial 'retrying'
	assert_equal "$((r1 - r0))" 6
	wait_for rabbit_queue_is "q${S}x" 5 0
	qbridge in --drain -q "$U2" b
	assert_equal "$(bodies new b)" \
	    $'before1\nbefore2\nmiddle\nafter1\nafter2\ns1\ns2\ns3\ns4\ns5'
}

@test "rabbitmq: a message whose dedup marker's name is taken by a non-file goes to dead/ with r=badmarker, the rest of its batch flows on" {
	qb_bad_marker
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
	qb_tls
	expect_fail 64 qbridge out --cacert "$CA/ca.pem" a "$URL"
	assert_output 'qbridge: --cacert: amqp:// is not TLS (tls://, amqps://, nats://)'
}

@test "rabbitmq: a message's group (qsend -g) crosses the bridge as the header Spoolq-Group and holds in the inbox" {
	qb_groups
}

@test "rabbitmq: one outbox with --drain carries all 100 messages of a group, in order, each freed by the ack of the one before" {
	qb_group_drain
}

@test "rabbitmq: queue b full: the inbox holds its batch and waits, one line per wait, and --drain gives up after 4 waits with 75; the batch requeued, the rest comes in order" {
	qb_inbox_full_drain
}

@test "rabbitmq: queue b full under a running inbox: once a consumer takes from b, the rest flows in, in order" {
	qb_inbox_full_flows
}

@test "rabbitmq: queue b full with overflow = block: the inbox waits for room in slices, one line per wait; SIGTERM stops it at once, --drain gives up with 75, and the rest comes in order once there is room" {
	qb_inbox_block
}

@test "rabbitmq: a message larger than queue b's max_bytes goes to b's dead letters with r=toolarge and one line, acked; the rest flows on in order, and a batch held behind it does not set it aside twice" {
	qb_inbox_toolarge
}
