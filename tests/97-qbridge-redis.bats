#!/usr/bin/env bats
# qbridge with a real redis-server (Redis Streams): round trip, faults of
# the broker and of the bridge, errors.  One server per file, on a free
# port of 127.0.0.1; each test uses streams of its own.

load helpers
load bridge

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
	redis_kill
	redis_start "$RDIR" "$REDIS_PORT" || fail "restart: $BRIDGE_SKIP"
	echo "$REDIS_PID" >"$BATS_FILE_TMPDIR/redis.pid"
}

entries() {
	redis-cli -p "$REDIS_PORT" xlen "s$S"
}

# ready_over QUEUE N: more than N messages are ready in QUEUE.
ready_over() {
	(( $(count new "$1") > $2 ))
}

# entries_are N: the test's stream holds N entries.
entries_are() {
	[[ $(entries) == "$1" ]]
}

@test "redis: round trip of $BRIDGE_N messages, byte for byte with keys and attributes, in order" {
	bridge_fill a "$BRIDGE_N"
	want=$(bridge_digest a)
	run qbridge out --drain a "$URL"
	assert_success
	assert_line --regexp "^qbridge: a -> $URL: 100 sent, 0 refused, 0 pending"
	assert_count new a 0
	assert_count cur a 0
	assert_equal "$(entries)" "$BRIDGE_N"
	run qbridge in --drain "$URL?group=g&consumer=c" b
	assert_success
	assert_count new b "$BRIDGE_N"
	assert_lines_eq "$want" "$(bridge_digest b)"
	# The group has nothing pending: everything was acked.
	run redis-cli -p "$REDIS_PORT" xpending "s$S" g
	assert_line --index 0 0
	# Again: nothing new arrives.
	run qbridge in --drain "$URL?group=g&consumer=c" b
	assert_success
	assert_count new b "$BRIDGE_N"
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

@test "redis: the server killed (kill -9) and restarted mid-way: nothing lost, nothing twice" {
	bridge_fill a "$BRIDGE_N"
	want=$(bridge_bodies a)
	qbridge out a "$URL" 2>"$T/out.log" &
	out=$!
	qbridge in "$URL?consumer=c" b 2>"$T/in.log" &
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

@test "redis: qbridge killed (kill -9) at random moments: nothing lost, nothing twice" {
	bridge_fill a "$BRIDGE_N"
	want=$(bridge_bodies a)
	bridge_kill_rounds "$URL" "$URL?consumer=c"
	qbridge out --drain -q a "$URL"
	qbridge in --drain -q "$URL?consumer=c" b
	assert_count new a 0
	assert_count cur a 0
	assert_lines_eq "$want" "$(bridge_bodies b)"
}

@test "redis: the server away: sends succeed locally, the backlog drains on its return" {
	redis_kill
	bridge_fill a 300
	want=$( (bridge_bodies a; echo 6c617465) | sort)	# + "late"
	qbridge out a "$URL" 2>"$T/out.log" &
	out=$!
	wait_for grep -q 'Connection refused; retrying in' "$T/out.log"
	# Senders go on meanwhile.
	qsend a late
	redis_start "$RDIR" "$REDIS_PORT" || fail "restart: $BRIDGE_SKIP"
	echo "$REDIS_PID" >"$BATS_FILE_TMPDIR/redis.pid"
	wait_for -t 180 entries_are 301
	kill -TERM "$out"
	wait "$out"
	qbridge in --drain -q "$URL" b
	assert_lines_eq "$want" "$(bridge_bodies b)"
	# The worker lock is gone with the bridge.
	run ls "$(qdir a)/run"
	refute_output --partial worker.
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
	assert_output 'qbridge: --cacert: redis:// is not TLS (tls://, amqps://)'
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

@test "redis: a body the server refuses is dead-lettered with r=refused, the rest go" {
	redis-cli -p "$REDIS_PORT" config set proto-max-bulk-len 1mb >/dev/null
	qsend a before
	head -c 1200000 /dev/zero | qsend a
	qsend a after
	run qbridge out --drain a "$URL"
	redis-cli -p "$REDIS_PORT" config set proto-max-bulk-len 512mb >/dev/null
	assert_success
	assert_count dead a 1
	[[ $(only dead a) == *,r=refused ]] || fail "$(only dead a)"
	assert_equal "$(entries)" 2
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
	bridge_groups_check "$URL" "$URL"
}
