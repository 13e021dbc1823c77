#!/usr/bin/env bats
# qbridge with a real redis-server (Redis Streams): round trip, faults of
# the broker and of the bridge, errors.  One server per file, on a free
# port of 127.0.0.1; each test uses streams of its own.
# The bodies the three broker suites share are in qbridge_common.bash,
# run here with this file's server, URLs and hooks.

load helpers
load bridge
load qbridge_common

setup_file() {
	export RDIR="$BATS_FILE_TMPDIR/redis"
	if redis_start "$RDIR"; then
		export REDIS_PID REDIS_PORT
		echo "$REDIS_PID" >"$BATS_FILE_TMPDIR/redis.pid"
	else
		export BRIDGE_SKIP
	fi
}

teardown_file() {
	local pid
	pid=$(cat "$BATS_FILE_TMPDIR/redis.pid" 2>/dev/null) || return 0
	kill -9 "$pid" 2>/dev/null || true
}

setup() {
	spoolq_setup
	[[ -z ${BRIDGE_SKIP-} ]] || skip "$BRIDGE_SKIP"
	REDIS_PID=$(cat "$BATS_FILE_TMPDIR/redis.pid")
	redis_up || skip "redis-server stopped"
	S=$BATS_TEST_NUMBER
	URL=redis://127.0.0.1:$REDIS_PORT/s$S
	URL_IN="$URL?group=g&consumer=c"
	URL_KILL="$URL?consumer=c"
	AWAY_ERR='Connection refused'
	mkq a
	# The inbox commits its batches (each message with its dedup ID)
	# without fsync, so that the suite stays short.
	mkq b durability=none
}

teardown() {
	# A test that stopped the server (SIGSTOP) and failed.
	kill -CONT "$REDIS_PID" 2>/dev/null || true
	spoolq_teardown
}

broker_stop() {
	redis_kill
}

# broker_start: the shared server again, on its port.
broker_start() {
	redis_start "$RDIR" "$REDIS_PORT" || fail "restart: $BRIDGE_SKIP"
	echo "$REDIS_PID" >"$BATS_FILE_TMPDIR/redis.pid"
}

entries() {
	redis-cli -p "$REDIS_PORT" xlen "s$S"
}

# entries_are N: the test's stream holds N entries.
entries_are() {
	[[ $(entries) == "$1" ]]
}

round_trip_check() {
	assert_equal "$(entries)" "$BRIDGE_N"
	# The group has nothing pending: everything was acked.
	run redis-cli -p "$REDIS_PORT" xpending "s$S" g
	assert_line --index 0 0
}

away_drained() {
	entries_are 301
}

@test "redis: round trip of $BRIDGE_N messages, byte for byte with keys and attributes, in order" {
	qb_round_trip
}

@test "redis: a message whose dedup marker's name is taken by a non-file goes to dead/ with r=badmarker, the rest of its batch flows on" {
	qb_bad_marker
}

@test "redis: a batch held on a full queue sets its message of a planted marker name aside once, not at every try" {
	qb_bad_marker_held
}

@test "redis: a message set aside with r=badmarker and given again after the inbox gave up (not acked) is dropped as a duplicate by the next inbox: one dead letter" {
	qb_bad_marker_again
}

# out_calls N: qbridge out --drain of N messages of a fresh queue under
# strace; prints how many stat-family and statfs-family calls it made.
out_calls() {
	local q=c$1
	mkq "$q" durability=none
	seq "$1" | qsend -l "$q"
	strace -E "$(leakless_env)" -f -qq -o "$T/calls.$1" \
	    -e trace=newfstatat,fstat,stat,lstat,statx,fstatfs,statfs \
	    qbridge out --drain -q --batch 100 "$q" "$URL-$1" ||
	    fail "qbridge out failed"
	assert_count new "$q" 0
	assert_count cur "$q" 0
	# A call another thread interrupted is split: count its first line.
	grep -v ' resumed>' "$T/calls.$1" >"$T/calls"
	echo "$(grep -vc 'statfs(' "$T/calls") $(grep -c 'statfs(' "$T/calls")"
}

@test "redis: the outbox looks at each message's file twice (its body opened by the claim, its ack) and at no file system per batch" {
	command -v strace >/dev/null || skip "strace is not installed"
	strace -f -qq -o /dev/null true 2>/dev/null || skip "strace cannot trace here"
	local small large
	read -ra small < <(out_calls 100)
	read -ra large < <(out_calls 300)
	# What 200 messages more cost, apart from starting and stopping: two
	# a message, and a few for each of the 2 batches more (the queue's
	# hold marker and descriptors, looked at once a batch: a sanitized
	# run made 411 where 10 in all were allowed).
	(( large[0] - small[0] <= 2 * 200 + 2 * 10 )) ||
	    fail "stat calls: ${small[0]} for 100 messages, ${large[0]} for 300"
	(( large[1] - small[1] <= 2 )) ||
	    fail "statfs calls: ${small[1]} for 100 messages, ${large[1]} for 300"
}

@test "redis: the stream's fields are body, id, key, attributes and expires" {
	qsend a -k r.k -H x=1 -H y='a b' --ttl 1h hello
	id=$(msgid "$(only new a)")
	qbridge out --drain -q a "$URL"
	run redis-cli -p "$REDIS_PORT" --no-raw xrange "s$S" - +
	assert_output --partial '"body"'
	assert_output --partial '"hello"'
	assert_output --partial "\"$id\""
	assert_output --partial '"r.k"'
	assert_output --partial '"x=1\ny=a b\n"'
	assert_output --partial '"expires"'
	# Entries written by other producers come in too: unknown fields
	# are attributes, the entry ID the dedup ID.
	redis-cli -p "$REDIS_PORT" xadd "s$S" '*' body other color red >/dev/null
	qbridge in --drain -q "$URL" b
	assert_count new b 2
	run qadmin cat b "$(msgid "$(names new b | tail -n 1)")"
	assert_output other
	run cat "$(qdir b)/attr/$(msgid "$(names new b | tail -n 1)")"
	assert_output 'attr color red'
}

@test "redis: the inbox's XACK goes out with its next read or when it stops: nothing pending after SIGTERM or --drain" {
	for i in $(seq 1 250); do
		redis-cli -p "$REDIS_PORT" xadd "s$S" '*' body "m$i" >/dev/null
	done
	qbridge in -q --batch 100 "$URL_IN" b &
	pid=$!
	wait_for -t 60 ready_over b 249
	kill -TERM "$pid"
	rc=0
	wait "$pid" || rc=$?
	assert_equal "$rc" 0
	assert_count new b 250
	run redis-cli -p "$REDIS_PORT" xpending "s$S" g
	assert_line --index 0 0
	# 50 more: the last batch is acked by the close of --drain.
	for i in $(seq 251 300); do
		redis-cli -p "$REDIS_PORT" xadd "s$S" '*' body "m$i" >/dev/null
	done
	run qbridge in --drain -q --batch 100 "$URL_IN" b
	assert_success
	assert_count new b 300
	run redis-cli -p "$REDIS_PORT" xpending "s$S" g
	assert_line --index 0 0
}

@test "redis: SIGTERM mid-stream takes in the batch read ahead before it stops: nothing pending, and the next inbox carries the rest in order" {
	local n=20000 got
	seq 1 "$n" | awk -v s="s$S" '{ print "XADD", s, "*", "body", "m" $1 }' |
	    redis-cli -p "$REDIS_PORT" >/dev/null
	qbridge in -q --batch 10 "$URL_IN" b &
	pid=$!
	wait_for -t 60 ready_over b 100
	kill -TERM "$pid"
	rc=0
	wait "$pid" || rc=$?
	assert_equal "$rc" 0
	got=$(find "$(qdir b)/new" -type f | wc -l)
	((got < n)) || fail "all $n came in before the stop: nothing read ahead"
	# Each entry given to the consumer is in b and acked.
	run redis-cli -p "$REDIS_PORT" xpending "s$S" g
	assert_line --index 0 0
	run qbridge in --drain -q --batch 100 "$URL_IN" b
	assert_success
	assert_equal "$(bodies new b)" "$(seq 1 "$n" | sed 's/^/m/')"
}

@test "redis: the server killed (kill -9) and restarted mid-way: nothing lost, nothing twice" {
	qb_server_killed
}

@test "redis: qbridge killed (kill -9) at random moments: nothing lost, nothing twice" {
	qb_bridge_killed
}

@test "redis: the server away: sends succeed locally, the backlog drains on its return" {
	qb_server_away
}

@test "redis: SIGHUP reloads and reconnects; SIGTERM stops at once, the lock file removed" {
	qbridge out a "$URL" 2>"$T/log" &
	pid=$!
	wait_for compgen -G "$(qdir a)/run/worker.*"
	kill -HUP "$pid"
	wait_for grep -q "^qbridge: $URL: reloaded\$" "$T/log"
	qsend a after-hup
	wait_for entries_are 1
	kill -TERM "$pid"
	rc=0
	wait "$pid" || rc=$?
	assert_equal "$rc" 0
	run ls "$(qdir a)/run"
	refute_output --partial worker.
}

@test "redis: bad URLs and credentials: one line and the sysexits code" {
	qsend a x
	expect_fail 78 qbridge out a "redis://127.0.0.1:$REDIS_PORT/"
	assert_output "qbridge: redis://127.0.0.1:$REDIS_PORT/: no stream (redis://HOST:PORT/STREAM)"
	expect_fail 78 qbridge out a "bogus://x/y"
	assert_output 'qbridge: bogus://x/y: unknown scheme bogus://'
	expect_fail 78 qbridge out a "redis://u:secret@127.0.0.1:$REDIS_PORT/s"
	refute_output --partial secret
	expect_fail 78 qbridge in "$URL?group=g&nonsense=1" b
	assert_output 'qbridge: nonsense: unknown URL parameter'
	expect_fail 78 qbridge out a "rediss://127.0.0.1/s"
	assert_output --regexp '^qbridge: rediss://127.0.0.1/s: this build has no TLS for Redis \(hiredis [0-9.]+, without hiredis_ssl\); use redis:// through a TLS tunnel$'
	expect_fail 64 qbridge out --cacert /dev/null a "$URL"
	assert_output 'qbridge: --cacert: redis:// is not TLS (tls://, amqps://, nats://)'
	# Nothing listens there: --drain gives up after a few back-offs.
	expect_fail 69 qbridge out --drain a "redis://127.0.0.1:$(free_port)/s"
	assert_line --index 0 --regexp 'Connection refused; retrying in [0-9.]+s$'
	assert_line --regexp 'Connection refused; giving up$'
	assert_count new a 1
	# A password the server does not take.
	printf 'password = wrong\n' >"$T/cred"
	chmod 644 "$T/cred"
	expect_fail 77 qbridge out --drain a "$URL" --credentials "$T/cred"
	assert_output "qbridge: $T/cred: readable by others (mode 644); chmod 600 it"
	chmod 600 "$T/cred"
	redis-cli -p "$REDIS_PORT" config set requirepass right >/dev/null
	expect_fail 77 qbridge out --drain a "$URL" --credentials "$T/cred"
	assert_output --regexp '^qbridge: redis://[^ ]+: AUTH: WRONGPASS'
	assert_equal "${#lines[@]}" 1
	QBRIDGE_PASSWORD=right run qbridge out --drain a "$URL"
	redis-cli -p "$REDIS_PORT" -a right config set requirepass '' \
	    >/dev/null 2>&1
	assert_success
	assert_count new a 0
	assert_equal "$(entries)" 1
}

@test "redis: a refusal after the bridge has served is waited for: the password set and lifted, nothing lost" {
	qsend a one
	qbridge out a "$URL" 2>"$T/out.log" &
	out=$!
	wait_for entries_are 1
	# The server starts to want a password and drops every client.
	redis-cli -p "$REDIS_PORT" config set requirepass right >/dev/null
	redis-cli -p "$REDIS_PORT" -a right client kill type normal \
	    >/dev/null 2>&1
	qsend a two
	rc=0
	wait_until 30 grep -Eq '(NOAUTH|WRONGPASS).*; retrying in [0-9.]+s$' \
	    "$T/out.log" || rc=$?
	redis-cli -p "$REDIS_PORT" -a right config set requirepass '' \
	    >/dev/null 2>&1
	(( rc == 0 )) || fail "no wait: $(cat "$T/out.log")"
	wait_for entries_are 2
	kill -TERM "$out"
	wait "$out"
	assert_count new a 0
	assert_count dead a 0
}

# no_client_blocked: no client of the server waits in a blocking command,
# at two looks in a row.
no_client_blocked() {
	local look
	for look in 1 2; do
		redis-cli -p "$REDIS_PORT" client list | grep -q 'flags=[A-Za-z]*b' &&
		    return 1
		sleep 0.2
	done
}

# group_made KEY: the stream KEY has the consumer group g.
group_made() {
	redis-cli -p "$REDIS_PORT" --raw xinfo groups "$1" 2>/dev/null | grep -qx g
}

@test "redis: a server's error that echoes a name with an escape sequence is logged made visible, never raw" {
	# The stream's name holds ESC [31m, percent-encoded in the URL; the
	# server's NOGROUP reply echoes it.
	local key="s$S"$'\033[31mx'
	qbridge in "redis://127.0.0.1:$REDIS_PORT/s$S%1B%5B31mx?group=g" b \
	    2>"$T/err" &
	pid=$!
	wait_for -t 30 group_made "$key"
	# A first message goes through, so the bridge has served.
	redis-cli -p "$REDIS_PORT" xadd "$key" '*' body one >/dev/null
	wait_for -t 30 eval '[[ $(count new b) == 1 ]]'
	# Stopped between two reads, the bridge finds the stream gone.
	kill -STOP "$pid"
	wait_for -t 30 no_client_blocked
	assert_equal "$(redis-cli -p "$REDIS_PORT" del "$key")" 1
	kill -CONT "$pid"
	# It has served: the refusal is waited for, one line per wait.
	wait_for -t 30 grep -q 'NOGROUP.*; retrying in' "$T/err"
	kill -TERM "$pid"
	wait "$pid"
	run cat "$T/err"
	assert_line --regexp "^qbridge: redis://[^ ]+: XREADGROUP: NOGROUP No such key 's$S\\\\033\\[31mx' or consumer group 'g' in XREADGROUP with GROUP option; retrying in [0-9.]+s\$"
	refute_output --partial $'\033'
}

# connections: how many connections the server has taken since it started
# (this call's own included).
connections() {
	redis-cli -p "$REDIS_PORT" info stats |
	    sed -n 's/^total_connections_received:\([0-9]*\).*/\1/p'
}

@test "redis: a body over the server's proto-max-bulk-len is dead-lettered with r=refused and never sent: the connection stays, the rest go once, in order" {
	redis-cli -p "$REDIS_PORT" config set proto-max-bulk-len 1mb >/dev/null
	qsend a before1 before2
	head -c 1200000 /dev/zero | qsend a
	qsend a after1 after2
	c0=$(connections)
	run qbridge out --drain a "$URL"
	c1=$(connections)
	redis-cli -p "$REDIS_PORT" config set proto-max-bulk-len 512mb >/dev/null
	assert_success
	assert_count dead a 1
	[[ $(only dead a) == *,r=refused ]] || fail "$(only dead a)"
	# Sent, it would have closed the connection: a second one, and the
	# XADDs pipelined with it published again.
	assert_equal "$((c1 - c0))" 2	# the bridge's one, and c1's
	assert_equal "$(entries)" 4
	run redis-cli -p "$REDIS_PORT" --raw xrange "s$S" - +
	assert_equal "$(grep -cx 'before[12]\|after[12]' <<<"$output")" 4
	assert_equal "$(grep -x 'before[12]\|after[12]' <<<"$output" |
	    tr '\n' ' ')" "before1 before2 after1 after2 "
}

@test "redis: a server out of memory (OOM) is waited for, nothing dead-lettered" {
	qsend a one two
	redis-cli -p "$REDIS_PORT" config set maxmemory 1 >/dev/null
	expect_fail 69 qbridge out --drain a "$URL"
	redis-cli -p "$REDIS_PORT" config set maxmemory 0 >/dev/null
	assert_line --index 0 --regexp "^qbridge: $URL: XADD: OOM .*; retrying in [0-9.]+s$"
	assert_count dead a 0
	assert_count new a 2
	run qbridge out --drain a "$URL"
	assert_success
	assert_equal "$(entries)" 2
}

@test "redis: a message's group (qsend -g) crosses the bridge as the stream field group and holds in the inbox" {
	qb_groups
}

@test "redis: one outbox with --drain carries all 100 messages of a group, in order, each freed by the ack of the one before" {
	qb_group_drain
}

@test "redis: queue b full: the inbox holds its batch and waits, one line per wait, and --drain gives up after 4 waits with 75; emptied, the rest comes in order" {
	qb_inbox_full_drain
	run redis-cli -p "$REDIS_PORT" xpending "s$S" g
	assert_line --index 0 0
}

@test "redis: queue b full under a running inbox: once a consumer takes from b, the rest flows in, in order" {
	qb_inbox_full_flows
}

@test "redis: queue b full: SIGTERM during a long wait stops the inbox within a slice, the batch left pending; SIGHUP after the bound is raised lets it in, duplicates dropped" {
	local t0
	inbox_full_fill
	qbridge in "$URL_IN" b 2>"$T/in.log" &
	in=$!
	# A wait of 6.4 s less up to a fifth: the seventh (0.1 s doubled).
	bridge_wait 60 grep -Eq 'retrying in [5-9]\.[0-9]{3}s$' "$T/in.log"
	t0=$(now_f)
	kill -TERM "$in"
	rc=0
	wait "$in" || rc=$?
	assert_equal "$rc" 0
	# Slices of 0.5 s: far less than the wait that was under way.
	float_between "$(elapsed_since "$t0")" 0 4
	assert_equal "$(grep -Ec "$FULL_WAIT_RE" "$T/in.log")" 7
	assert_equal "$(wc -l <"$T/in.log")" 7
	# Nothing acked: all 20 are still pending for the consumer.
	run redis-cli -p "$REDIS_PORT" xpending "s$S" g
	assert_line --index 0 20
	assert_equal "$(bodies new b)" "$(seq 1 5)"
	qbridge in "$URL_IN" b 2>"$T/in2.log" &
	in=$!
	bridge_wait 60 grep -Eq "$FULL_WAIT_RE" "$T/in2.log"
	qadmin config b set max_messages=100 >/dev/null
	kill -HUP "$in"
	bridge_wait 60 ready_over b 19
	kill -TERM "$in"
	wait "$in"
	assert_equal "$(bodies new b)" "$(seq 1 20)"
	grep -q ' -> b: 20 received, 5 duplicates ' "$T/in2.log" ||
	    fail "$(cat "$T/in2.log")"
	run redis-cli -p "$REDIS_PORT" xpending "s$S" g
	assert_line --index 0 0
}

@test "redis: an outbox of a queue with a 3 s lease beats through an outage whose waits outgrow the lease: its claims are never recovered, each message goes out once" {
	qb_outage_heartbeat
}

@test "redis: queue b full with overflow = block: the inbox waits for room in slices, one line per wait; SIGTERM stops it at once, --drain gives up with 75, and the rest comes in order once there is room" {
	qb_inbox_block
	run redis-cli -p "$REDIS_PORT" xpending "s$S" g
	assert_line --index 0 0
}

@test "redis: a message larger than queue b's max_bytes goes to b's dead letters with r=toolarge and one line, acked; the rest flows on in order, and a batch held behind it does not set it aside twice" {
	qb_inbox_toolarge
	run redis-cli -p "$REDIS_PORT" xpending "s$S" g
	assert_line --index 0 0
}

@test "redis: an outbox of a queue with a 3 s lease beats through broker calls that wait out --timeout on a stopped server: its claims are never recovered, each message goes out once" {
	local t0
	qadmin config a set lease=3s >/dev/null
	seq 1 5 | qsend -l a
	kill -STOP "$REDIS_PID"
	qbridge out a "$URL" 2>"$T/out.log" &
	out=$!
	wait_for -t 30 ready_cur a
	# The default --timeout, 10 s, is three leases.
	: >"$T/stolen"
	t0=$(now_f)
	until float_past "$t0" 12; do
		took_none a ||
		    fail "recovered from a live bridge: $(cat "$T/stolen")"
		sleep 0.2
	done
	kill -CONT "$REDIS_PID"
	bridge_wait 120 outbox_empty a
	kill -TERM "$out"
	wait "$out"
	run qbridge in --drain -q "$URL" b
	assert_success
	assert_equal "$(bodies new b)" "$(seq 1 5)"
}

# tries_closed N: the fake server of the test below closed N connections.
tries_closed() {
	[[ -f $T/conns ]] && (( $(wc -l <"$T/conns") >= $1 ))
}

@test "redis: a server that closes the connection on CONFIG GET: each try's connection is closed, none left open" {
	# It answers PING, then closes on CONFIG GET proto-max-bulk-len.
	perl -MIO::Socket::INET -e '
		my $l = IO::Socket::INET->new(Listen => 5, ReuseAddr => 1,
		    LocalAddr => "127.0.0.1", LocalPort => 0) or die;
		open(my $p, ">", "$ARGV[0].tmp") or die;
		print $p $l->sockport, "\n";
		close $p;
		rename "$ARGV[0].tmp", $ARGV[0];
		while (my $c = $l->accept) {
			my $b = "";
			while ($b !~ /PING/i) { sysread($c, $b, 4096, length $b) or last }
			syswrite $c, "+PONG\r\n";
			while ($b !~ /CONFIG/i) { sysread($c, $b, 4096, length $b) or last }
			close $c;
			open(my $n, ">>", $ARGV[1]) or die;
			print $n "closed\n";
			close $n;
		}' "$T/port" "$T/conns" &
	fake=$!
	wait_for test -s "$T/port"
	qsend a one
	qbridge out a "redis://127.0.0.1:$(cat "$T/port")/s" 2>"$T/log" &
	pid=$!
	wait_for -t 60 tries_closed 4
	# At most the try under way holds one.
	socks=$(find "/proc/$pid/fd" -lname 'socket:*' | wc -l)
	kill -TERM "$pid"
	wait "$pid" || true
	kill "$fake"
	wait "$fake" || true
	int_between "$socks" 0 1
	assert_count new a 1
}
