#!/usr/bin/env bats
# Delivery options of qsend and what consumers see of them: routing keys
# and attributes (the attr/ID sidecar and the h flag, qrecv --meta,
# qadmin cat --meta, a qworker job's environment, the sidecar's life through
# ack, dead letters and redrive), delayed sends (--delay, --at), per-message
# expiry (--ttl), and producer-side deduplication (--dedup-id): repeats
# within dedup_window, concurrent senders of one ID, and the retry of a
# sender that crashed or failed half-way.
#
# Crashes are simulated by planting what a crashed sender leaves behind
# (tmp/ID and a "pending" marker dedup/KEY); a failed publish is injected
# with strace(1) when it is available.

load helpers

setup() {
	spoolq_setup
	mkq q
	Q=$SPOOLQ_DIR/q
}

teardown() {
	spoolq_teardown
}

# now_ms: the epoch in milliseconds.
now_ms() {
	local t=$EPOCHREALTIME
	printf '%s\n' "$(( ${t%.*} * 1000 + 10#${t#*.} / 1000 ))"
}

# reached EPOCH: true once the clock has reached EPOCH (whole seconds),
# as the library compares deadlines: now_ms >= EPOCH * 1000.
reached() {
	(( $(now_ms) >= $1 * 1000 ))
}

# no_field NAME KEY: the name has no such field.
no_field() {
	! field "$1" "$2" >/dev/null || fail "unexpected field $2 in $1"
}

# plant_orphan QUEUE-DIR KEY ID BODY [AGE_MS]: what a sender of --dedup-id
# KEY leaves when it dies after writing its body and its "pending" marker
# but before publishing: tmp/ID and dedup/KEY "ID pending MS".
plant_orphan() {
	mkdir -p "$1/dedup"
	printf '%s' "$4" > "$1/tmp/$3"
	printf '%s pending %s\n' "$3" "$(( $(now_ms) - ${5:-0} ))" > "$1/dedup/$2"
}

# qrecv_to FILE: claim one message of q, its receipt into FILE.
qrecv_to() {
	qrecv q > "$1"
}

# synopsis_of_man PAGE TOOL: the SYNOPSIS of a man page, one line per form.
synopsis_of_man() {
	mandoc -Tascii -O width=1000 "$1" | col -b |
	    sed -n '/^SYNOPSIS/,/^DESCRIPTION/p' | sed '1d;$d' |
	    awk -v t="$2" '$1 == t { if (l != "") print l; l = $0; next }
		/^ *$/ { next } { l = l " " $0 } END { print l }' |
	    sed -E 's/^[[:space:]]+//' | tr -s ' '
}

# synopsis_of_usage TOOL: what `TOOL -h` prints, one line per form.
synopsis_of_usage() {
	"$1" -h | sed -n '/^$/q; p' | sed -E 's/^usage://; s/^[[:space:]]+//' |
	    awk -v t="$1" '$1 == t { if (l != "") print l; l = $0; next }
		{ l = l " " $0 } END { print l }' | tr -s ' '
}

# ------------------------------------------------------------ synopses

@test "qsend -h and qrecv -h: the synopsis is the SYNOPSIS of qsend(1) and qrecv(1)" {
	command -v mandoc >/dev/null || skip "mandoc is not installed"
	local t man
	for t in qsend qrecv; do
		man=$BATS_TEST_DIRNAME/../man/$t.1
		[[ -f $man ]] || fail "no man/$t.1"
		assert_lines_eq "$(synopsis_of_man "$man" "$t")" \
		    "$(synopsis_of_usage "$t")"
	done
}

# ------------------------------------------------- keys and attributes

@test "qsend -k -H: attr/ID holds the key and the attributes in order, the name gets h, the body stays pure" {
	local id
	id=$(qsend -p -k orders.eu.new -H content-type=text/plain \
	    -H note='  two  spaces = and=equals ' -H empty= -H Z_9-x=é q 'the body')
	assert_equal "$(names new q)" "$id,h"
	field "$id,h" h >/dev/null || fail "no h field"
	printf 'key orders.eu.new\nattr content-type text/plain\nattr note   two  spaces = and=equals \nattr empty \nattr Z_9-x é\n' > "$T/want"
	cmp "$T/want" "$Q/attr/$id" || fail "sidecar: $(cat -A "$Q/attr/$id")"
	printf 'the body' > "$T/body"
	cmp "$T/body" "$Q/new/$id,h"
	assert_equal "$(ls -A "$Q/attr")" "$id"
}

@test "qsend: -k alone or -H alone makes a sidecar; a plain send makes none and has no h" {
	local a b c
	a=$(qsend -p -k only.key q a)
	b=$(qsend -p -H only=attr q b)
	c=$(qsend -p q c)
	assert_same "$(printf '%s\n' "$a,h" "$b,h" "$c")" "$(names new q)"
	assert_equal "$(cat "$Q/attr/$a")" 'key only.key'
	assert_equal "$(cat "$Q/attr/$b")" 'attr only attr'
	assert_file_not_exists "$Q/attr/$c"
	no_field "$c" h
}

@test "qsend: the limits themselves are accepted: 64-byte name, 4096-byte value, 64 attributes, 255-byte key" {
	local name value key id i
	local -a args=()
	name=$(printf 'n%.0s' {1..64})
	value=$(printf 'v%.0s' {1..4096})
	key=$(printf 'k%.0s' {1..255})
	for i in $(seq 2 64); do
		args+=(-H "a$i=$i")
	done
	id=$(qsend -p -k "$key" -H "$name=$value" "${args[@]}" q body)
	assert_equal "$(names new q)" "$id,h"
	assert_equal "$(grep -c '^attr ' "$Q/attr/$id")" 64
	assert_equal "$(sed -n 1p "$Q/attr/$id")" "key $key"
	assert_equal "$(sed -n 2p "$Q/attr/$id")" "attr $name $value"
}

@test "qrecv --meta: after each receipt SPOOLQ_ID, SPOOLQ_ATTEMPT, SPOOLQ_KEY, SPOOLQ_ATTR_NAME lines, then an empty line" {
	local a b
	a=$(qsend -p -k k.1 -H content-type=text/plain -H x='y = z' q first)
	b=$(qsend -p q second)
	qrecv --meta -n 2 q > "$T/out"
	{
		printf '%s\n' "$Q/cur/$(names cur q | grep -F "$a")"
		printf 'SPOOLQ_ID=%s\nSPOOLQ_ATTEMPT=1\nSPOOLQ_KEY=k.1\n' "$a"
		printf 'SPOOLQ_ATTR_content-type=text/plain\nSPOOLQ_ATTR_x=y = z\n\n'
		printf '%s\n' "$Q/cur/$(names cur q | grep -F "$b")"
		printf 'SPOOLQ_ID=%s\nSPOOLQ_ATTEMPT=1\n\n' "$b"
	} > "$T/want"
	cmp "$T/want" "$T/out" || fail "got:"$'\n'"$(cat -A "$T/out")"
	assert_equal "$(cat "$(sed -n 1p "$T/out")")" first
}

@test "qrecv --meta -0: the same records, each ended by a NUL, and an empty record after each message" {
	local a r
	a=$(qsend -p -k route -H n=v q body)
	qrecv --meta -0 q > "$T/out"
	r=$Q/cur/$(only cur q)
	printf '%s\0SPOOLQ_ID=%s\0SPOOLQ_ATTEMPT=1\0SPOOLQ_KEY=route\0SPOOLQ_ATTR_n=v\0\0' \
	    "$r" "$a" > "$T/want"
	cmp "$T/want" "$T/out" || fail "got: $(od -c "$T/out")"
}

@test "qrecv --meta: SPOOLQ_ID stays the same on redelivery while SPOOLQ_ATTEMPT counts up" {
	local id r
	id=$(qsend -p -k k -H n=v q body)
	qrecv --meta --lease 1s q > "$T/one"
	r=$(sed -n 1p "$T/one")
	grep -qxF "SPOOLQ_ID=$id" "$T/one"
	grep -qx 'SPOOLQ_ATTEMPT=1' "$T/one"
	wait_lease_over "$r"
	qrecv --meta q > "$T/two"
	grep -qxF "SPOOLQ_ID=$id" "$T/two" || fail "$(cat "$T/two")"
	grep -qx 'SPOOLQ_ATTEMPT=2' "$T/two" || fail "$(cat "$T/two")"
	grep -qx 'SPOOLQ_ATTR_n=v' "$T/two" || fail "$(cat "$T/two")"
}

@test "qrecv --meta with -A is a usage error (64) and claims nothing" {
	qsend -k k q body
	expect_fail 64 qrecv --meta -A q
	assert_usage qrecv
	assert_count new q 1
}

@test "qadmin cat --meta: the key as key: and each attribute as attr: NAME=VALUE" {
	local id
	id=$(qsend -p -k a.b.c -H color=red -H x-y='v a=l' q body)
	run --separate-stderr qadmin cat --meta q "$id"
	assert_success
	assert_line 'key: a.b.c'
	assert_line 'attr: color=red'
	assert_line 'attr: x-y=v a=l'
	assert_line 'state: ready'
	# The body alone, without --meta.
	run --separate-stderr qadmin cat q "$id"
	assert_success
	assert_output body
}

@test "qworker: the job gets SPOOLQ_KEY and SPOOLQ_ATTR_<NAME> with '-' as '_'; none is inherited or left over" {
	qsend -k orders.eu -H content-type=text/plain -H n='a b=c' q first
	qsend q second
	run --separate-stderr env SPOOLQ_KEY=stale SPOOLQ_ATTR_old=x \
	    timeout 30 qworker --drain -j 1 q -- \
	    sh -c 'b=$(cat); env | grep ^SPOOLQ_ | sort > "$0.$b"' "$T/env"
	refute_crash
	assert_success
	grep -qx 'SPOOLQ_KEY=orders.eu' "$T/env.first" || fail "$(cat "$T/env.first")"
	grep -qx 'SPOOLQ_ATTR_content_type=text/plain' "$T/env.first" || fail "$(cat "$T/env.first")"
	grep -qx 'SPOOLQ_ATTR_n=a b=c' "$T/env.first" || fail "$(cat "$T/env.first")"
	! grep -q 'stale\|SPOOLQ_ATTR_old' "$T/env.first" || fail "inherited: $(cat "$T/env.first")"
	! grep -q '^SPOOLQ_KEY=\|^SPOOLQ_ATTR_' "$T/env.second" || fail "second job: $(cat "$T/env.second")"
	# Acked: the sidecar is gone with the message.
	assert_equal "$(ls -A "$Q/attr")" ''
}

@test "ack removes the sidecar with its message (qack)" {
	local id r
	id=$(qsend -p -k k -H n=v q body)
	r=$(qrecv q)
	[[ ${r##*/} == "$id,a=1,l="*",h" ]] || fail "receipt $r"
	assert_file_exists "$Q/attr/$id"
	qack "$r"
	assert_file_not_exists "$r"
	assert_file_not_exists "$Q/attr/$id"
}

@test "the sidecar stays through retry and dead-lettering, and comes back with redrive" {
	local id r
	id=$(qsend -p -k route.x -H n=v q body)
	qack --retry --delay 0 "$(qrecv q)"
	[[ $(only retry q) == "$id,a=1,t="*",h" ]] || fail "retry: $(names retry q)"
	assert_file_exists "$Q/attr/$id"
	wait_for -t 5 qrecv_to "$T/r"
	qack --reject "$(cat "$T/r")"
	assert_equal "$(names dead q)" "$id,a=2,r=rejected,h"
	assert_file_exists "$Q/attr/$id"
	run --separate-stderr qadmin cat --meta q "$id"
	assert_success
	assert_line 'state: dead'
	assert_line 'key: route.x'
	assert_line 'attr: n=v'
	run --separate-stderr qadmin redrive q
	assert_success
	assert_equal "$(names new q)" "$id,h"
	qrecv --meta q > "$T/out"
	grep -qx 'SPOOLQ_KEY=route.x' "$T/out" || fail "$(cat "$T/out")"
	grep -qx 'SPOOLQ_ATTR_n=v' "$T/out" || fail "$(cat "$T/out")"
	qack "$(sed -n 1p "$T/out")"
	assert_file_not_exists "$Q/attr/$id"
}

@test "qsend -H: bad names are refused (64) and nothing is written" {
	local before a long
	before=$(snapshot "$SPOOLQ_DIR")
	long=$(printf 'n%.0s' {1..65})
	for a in 'bad name=x' '=x' 'novalue' 'a.b=x' 'a/b=x' 'é=x' "$long=x"; do
		expect_fail 64 qsend -H "$a" q body
		assert_output --partial -- '-H'
	done
	assert_unchanged "$before"
}

@test "qsend -H/-k: values over the limits, newlines and 65 attributes are refused (64) and nothing is written" {
	local before i
	local -a many=()
	before=$(snapshot "$SPOOLQ_DIR")
	for i in $(seq 65); do
		many+=(-H "n$i=v")
	done
	expect_fail 64 qsend -H "ok=$(printf 'v%.0s' {1..4097})" q body
	expect_fail 64 qsend -H $'ok=two\nlines' q body
	expect_fail 64 qsend "${many[@]}" q body
	expect_fail 64 qsend -k "$(printf 'k%.0s' {1..256})" q body
	expect_fail 64 qsend -k $'two\nlines' q body
	assert_unchanged "$before"
}

@test "qsend -H: a refused value or attribute count is reported as an -H error" {
	local i
	local -a many=()
	for i in $(seq 65); do
		many+=(-H "n$i=v")
	done
	# The error names -H, not another option.
	expect_fail 64 qsend -H "ok=$(printf 'v%.0s' {1..4097})" q body
	refute_output --partial '(null)'
	# Its first line, before the synopsis, names -H and no other option.
	refute_line --index 0 --partial -- '--dedup-id'
	assert_line --index 0 --partial -- '-H'
	expect_fail 64 qsend -H $'ok=two\nlines' q body
	refute_output --partial '(null)'
	assert_output --partial -- '-H'
	expect_fail 64 qsend "${many[@]}" q body
	refute_output --partial '(null)'
	assert_output --partial -- '-H'
}

@test "qsend -c: a refused -H value or --dedup-id creates no queue" {
	# Options are checked before -c creates anything.
	expect_fail 64 qsend -c -H $'ok=two\nlines' newq body
	assert_dir_not_exists "$SPOOLQ_DIR/newq"
	expect_fail 64 qsend -c --dedup-id .bad newq2 body
	assert_dir_not_exists "$SPOOLQ_DIR/newq2"
}

# ------------------------------------------------------------ delays

@test "qsend --delay 1h: retry/ID,t=now+3600 with no a=, not claimable" {
	local before after id n t
	before=$(now)
	id=$(qsend -p --delay 1h q later)
	after=$(now)
	assert_count new q 0
	n=$(only retry q)
	[[ $n == "$id,t="* ]] || fail "name $n"
	no_field "$n" a
	no_field "$n" h
	t=$(field "$n" t)
	int_between "$t" $((before + 3600)) $((after + 3601))
	assert_equal "$(cat "$Q/retry/$n")" later
	expect_fail 1 qrecv q
	expect_fail 1 qrecv -w 1s q
	assert_equal "$(names retry q)" "$n"
	assert_count cur q 0
}

@test "qsend --delay with -k: retry/ID,t=...,h, the sidecar written" {
	local id
	id=$(qsend -p --delay 1h -k k q body)
	[[ $(only retry q) == "$id,t="*",h" ]] || fail "$(only retry q)"
	assert_equal "$(cat "$Q/attr/$id")" 'key k'
}

@test "qsend --delay 4s: claimable once due, not before, as attempt 1" {
	local before id r t
	before=$(now)
	# A delay far above any scheduling delay, for the "not before" step.
	id=$(qsend -p --delay 4s -k k q soon)
	t=$(field "$(only retry q)" t)
	int_between "$t" $((before + 4)) $(( $(now) + 5 ))
	expect_fail 1 qrecv q
	wait_for -t 10 qrecv_to "$T/r"
	(( $(now) >= t )) || fail "claimed before its due time $t"
	r=$(cat "$T/r")
	[[ ${r##*/} == "$id,a=1,l="*",h" ]] || fail "receipt $r"
	assert_equal "$(cat "$r")" soon
}

@test "qrecv -w: a waiting consumer gets a delayed message when it falls due" {
	local t
	qsend --delay 1s q soon
	t=$(field "$(only retry q)" t)
	run --separate-stderr timeout 10 qrecv -w 5 q
	assert_success
	(( $(now) >= t )) || fail "claimed before its due time $t"
	assert_equal "$(cat "$output")" soon
}

@test "qsend --at @EPOCH: due at that second; a time already past sends at once" {
	local e id
	e=$(( $(now) + 500 ))
	id=$(qsend -p --at "@$e" q at)
	assert_equal "$(only retry q)" "$id,t=$e"
	id=$(qsend -p --at @1000 q past)
	assert_equal "$(only new q)" "$id"
}

@test "qsend --at: local YYYY-MM-DDTHH:MM:SS, 'YYYY-MM-DD HH:MM:SS', and minutes-only forms" {
	local e id
	e=$(( $(now) + 7200 ))
	id=$(qsend -p --at "$(date -d "@$e" '+%Y-%m-%dT%H:%M:%S')" q a)
	assert_equal "$(names retry q | grep -F "$id")" "$id,t=$e"
	id=$(qsend -p --at "$(date -d "@$e" '+%Y-%m-%d %H:%M:%S')" q b)
	assert_equal "$(names retry q | grep -F "$id")" "$id,t=$e"
	id=$(qsend -p --at "$(date -d "@$e" '+%Y-%m-%dT%H:%M')" q c)
	assert_equal "$(names retry q | grep -F "$id")" "$id,t=$(( e - e % 60 ))"
	id=$(qsend -p --at "$(date -d "@$e" '+%Y-%m-%d %H:%M')" q d)
	assert_equal "$(names retry q | grep -F "$id")" "$id,t=$(( e - e % 60 ))"
	# Local time: the same wall-clock time is a different instant per TZ.
	id=$(TZ=UTC0 qsend -p --at 2030-01-01T00:00:00 q utc)
	assert_equal "$(names retry q | grep -F "$id")" "$id,t=1893456000"
	id=$(TZ=JST-9 qsend -p --at '2030-01-01 00:00' q tokyo)
	assert_equal "$(names retry q | grep -F "$id")" "$id,t=1893423600"
	assert_count retry q 6
}

@test "qsend --at: what is not a time is refused (64) and nothing is written" {
	local before a
	before=$(snapshot "$SPOOLQ_DIR")
	for a in tomorrow 2030-01-01 '2030-01-01T25:00' '2030-13-01T00:00' \
	    '2030-01-01T00:00:00Z' @ @abc @-5 @99999999999 ''; do
		expect_fail 64 qsend --at "$a" q body
	done
	assert_unchanged "$before"
}

@test "qsend: --delay with --at is refused (64), and so are bad durations; nothing is written" {
	local before
	before=$(snapshot "$SPOOLQ_DIR")
	expect_fail 64 qsend --delay 1h --at "@$(( $(now) + 60 ))" q body
	assert_output --partial -- '--delay'
	assert_output --partial -- '--at'
	expect_fail 64 qsend --at "@$(( $(now) + 60 ))" --delay 1h q body
	expect_fail 64 qsend --delay soon q body
	expect_fail 64 qsend --delay -1s q body
	expect_fail 64 qsend --ttl forever q body
	expect_fail 64 qsend --ttl 0 q body
	assert_unchanged "$before"
}

# ------------------------------------------------------------ expiry

@test "qsend --ttl 1s: e= in the name; the next qrecv after expiry dead-letters it r=expired, sidecar kept" {
	local before after id n e
	before=$(now)
	id=$(qsend -p --ttl 1s -k k -H n=v q short)
	after=$(now)
	n=$(only new q)
	[[ $n == "$id,e="*",h" ]] || fail "name $n"
	e=$(field "$n" e)
	int_between "$e" $((before + 1)) $((after + 2))
	wait_for -t 5 reached "$e"
	expect_fail 1 qrecv q
	assert_count new q 0
	assert_count cur q 0
	assert_equal "$(only dead q)" "$id,e=$e,r=expired,h"
	assert_equal "$(cat "$Q/dead/$id,e=$e,r=expired,h")" short
	assert_file_exists "$Q/attr/$id"
}

@test "qsend --ttl 1h: claimed normally, e= carried into cur/" {
	local id r
	id=$(qsend -p --ttl 1h q long)
	r=$(qrecv q)
	[[ ${r##*/} == "$id,a=1,l="*",e="* ]] || fail "receipt $r"
	int_between "$(field "$r" e)" $(( $(now) + 3590 )) $(( $(now) + 3602 ))
}

@test "qsend --ttl: an expired message is skipped for the next ready one" {
	local a b e
	a=$(qsend -p --ttl 1s q old)
	b=$(qsend -p q fresh)
	e=$(field "$(names new q | grep -F "$a")" e)
	wait_for -t 5 reached "$e"
	run --separate-stderr qrecv q
	assert_success
	[[ ${output##*/} == "$b,a=1,"* ]] || fail "claimed $output"
	assert_equal "$(only dead q)" "$a,e=$e,r=expired"
}

# ------------------------------------------------------------ dedup

@test "qsend --dedup-id: a repeat is accepted and dropped (exit 0, no ID printed); -v reports it" {
	local id1
	id1=$(qsend -p --dedup-id order-17 q first)
	run --separate-stderr qsend -p --dedup-id order-17 q second
	assert_success
	assert_output ''
	assert_equal "$stderr" ''
	run --separate-stderr qsend -p -v --dedup-id order-17 q third
	assert_success
	assert_output ''
	[[ $stderr == *"dropped 1 duplicate"*"order-17"* ]] || fail "stderr: $stderr"
	assert_equal "$(only new q)" "$id1"
	assert_equal "$(cat "$Q/new/$id1")" first
	assert_equal "$(ls -A "$Q/tmp")" ''
	[[ $(cat "$Q/dedup/order-17") =~ ^"$id1 sent "[0-9]{13}$ ]] ||
	    fail "marker: $(cat "$Q/dedup/order-17")"
}

@test "qsend --dedup-id: a marker that is not a regular file is named with its kind, exit 65, nothing sent, check --repair clears it" {
	local kind
	mkdir -p "$Q/dedup"
	mkfifo "$Q/dedup/f1"
	ln -s /etc/passwd "$Q/dedup/s1"
	mkdir "$Q/dedup/d1"
	for kind in f1:FIFO s1:symlink d1:directory; do
		run --separate-stderr timeout 20 qsend --dedup-id "${kind%%:*}" q body
		assert_equal "$status" 65
		assert_equal "${stderr_lines[0]}" "qsend: q/dedup/${kind%%:*}: not a regular file (${kind#*:}); qadmin check --repair moves it to quarantine/"
		assert_equal "${stderr_lines[1]}" "qsend: q: 0 messages sent before the error"
	done
	assert_count new q 0
	assert_equal "$(ls -A "$Q/tmp")" ""
	qadmin check --repair q >/dev/null || true
	qsend --dedup-id f1 q body
	assert_count new q 1
}

@test "qsend --dedup-id: still dropped after the first was consumed and acked (the window counts sends)" {
	qsend --dedup-id job-1 q first
	qack "$(qrecv q)"
	qsend --dedup-id job-1 q again
	assert_count new q 0
	assert_count cur q 0
}

@test "qsend --dedup-id: different IDs send; each has its own marker" {
	local a b
	a=$(qsend -p --dedup-id a q one)
	b=$(qsend -p --dedup-id b q two)
	qsend --dedup-id a q one-again
	assert_same "$(printf '%s\n' "$a" "$b")" "$(names new q)"
	assert_same "$(printf '%s\n' a b)" "$(ls -A "$Q/dedup")"
}

@test "qsend --dedup-id: with -k and --delay, the duplicate leaves no sidecar and no retry entry" {
	local id
	id=$(qsend -p --dedup-id d -k k --delay 1h q first)
	qsend --dedup-id d -k k --delay 1h q second
	[[ $(only retry q) == "$id,t="*",h" ]] || fail "$(names retry q)"
	assert_equal "$(ls -A "$Q/attr")" "$id"
	assert_equal "$(ls -A "$Q/tmp")" ''
}

@test "qsend --dedup-id: after dedup_window the same ID sends again" {
	local a b m line
	mkq w dedup_window=1h
	a=$(qsend -p --dedup-id A w first)
	qsend --dedup-id A w dropped
	assert_count new w 1
	# The marker says when it was written (MS): make that two hours ago.
	m=$SPOOLQ_DIR/w/dedup/A
	line=$(awk -v ms=$(( ($(now) - 7200) * 1000 )) '{ $3 = ms; print }' "$m")
	printf '%s\n' "$line" >"$m"
	b=$(qsend -p --dedup-id A w second)
	[[ -n $b && $b != "$a" ]] || fail "not sent again"
	assert_same "$(printf '%s\n' "$a" "$b")" "$(names new w)"
}

# concurrent_senders QUEUE ID N: N senders of --dedup-id ID at once; their
# exit statuses are appended to $T/rc.ID, their stderr to $T/err.ID.
concurrent_senders() {
	local i
	for i in $(seq "$3"); do
		( set +e
		  qsend --dedup-id "$2" "$1" "body $i" 2>>"$T/err.$2"
		  echo $? >> "$T/rc.$2" ) &
	done
	wait
}

@test "qsend --dedup-id: 10 concurrent senders of one ID make exactly one message, and all exit 0" {
	local k
	qsend --dedup-id warm-up q first	# dedup/ exists: only the lock is tested
	for k in 1 2 3 4 5; do
		concurrent_senders q "race-$k" 10
		assert_equal "$(sort -u "$T/rc.race-$k")" 0
		assert_equal "$(wc -l < "$T/rc.race-$k")" 10
	done
	assert_count new q 6
	assert_equal "$(ls -A "$Q/tmp")" ''
	for k in 1 2 3 4 5; do
		[[ $(cat "$Q/dedup/race-$k") == *" sent "* ]] || fail "marker race-$k"
	done
}

@test "qsend --dedup-id: a sender stopped between the create of its marker and its lock does not deliver after another sender went through it" {
	command -v strace >/dev/null || skip "strace is not installed"
	strace -o /dev/null true 2>/dev/null || skip "strace cannot trace here"
	local pid
	# The first flock(2) of qsend --dedup-id locks the marker it has just
	# made; held back there, a second sender finds the marker empty and
	# goes through it while the first still waits to lock it.
	strace -E "$(leakless_env)" -f -qq -o /dev/null \
	    -e inject=flock:delay_enter=2000000:when=1 \
	    qsend --dedup-id same q first 2>"$T/err.first" &
	pid=$!
	for _ in $(seq 1000); do
		[[ -e $Q/dedup/same ]] && break
		sleep 0.05
	done
	assert_file_exists "$Q/dedup/same"
	qsend --dedup-id same q second
	wait "$pid" || fail "first sender: $(cat "$T/err.first")"
	assert_equal "$(cat "$T/err.first")" ''
	# Exactly one of the two was delivered (which one depends on whether
	# the second was done before the first took the lock); the marker
	# names it.
	assert_count new q 1
	assert_equal "$(ls -A "$Q/tmp")" ''
	[[ $(cat "$Q/dedup/same") =~ ^"$(only new q) sent "[0-9]{13}$ ]] || fail "marker: $(cat "$Q/dedup/same")"
}

@test "qsend --dedup-id: the first concurrent senders on a queue without dedup/ all succeed" {
	# The first senders on a queue race to make dedup/; losing that race
	# is no error.  50 fresh queues make the race all but certain.
	local k
	for k in $(seq 50); do
		mkq "f$k"
		concurrent_senders "f$k" same 10
		assert_count new "f$k" 1
	done
	assert_equal "$(wc -l < "$T/rc.same")" 500
	assert_equal "$(sort "$T/rc.same" | uniq -c | sed 's/^ *//')" '500 0'
	assert_equal "$(cat "$T/err.same")" ''
}

@test "qsend --dedup-id: a crashed sender's complete body in tmp/ is published by the retry; the retry's own body is dropped" {
	local id=1764425000.000000001.999_0_deadbeef.crashed
	plant_orphan "$Q" K1 "$id" 'first body'
	run --separate-stderr qsend -v -p --dedup-id K1 q 'second body'
	assert_success
	[[ $stderr == *"dropped 1 duplicate"* ]] || fail "stderr: $stderr"
	assert_equal "$(only new q)" "$id"
	assert_equal "$(cat "$Q/new/$id")" 'first body'
	assert_equal "$(ls -A "$Q/tmp")" ''
	[[ $(cat "$Q/dedup/K1") =~ ^"$id sent "[0-9]{13}$ ]] || fail "marker: $(cat "$Q/dedup/K1")"
	# A third send is a plain duplicate.
	qsend --dedup-id K1 q third
	assert_equal "$(only new q)" "$id"
}

@test "qsend --dedup-id: a crashed sender's sidecar goes with its published body (h)" {
	local id=1764425000.000000002.999_1_deadbeef.crashed
	plant_orphan "$Q" K2 "$id" body
	printf 'key crashed.key\nattr n v\n' > "$Q/attr/$id"
	qsend --dedup-id K2 -k other q mine
	assert_equal "$(only new q)" "$id,h"
	assert_equal "$(ls -A "$Q/attr")" "$id"
	qrecv --meta q > "$T/out"
	grep -qx 'SPOOLQ_KEY=crashed.key' "$T/out" || fail "$(cat "$T/out")"
}

@test "qsend --dedup-id: a pending marker whose body is gone from tmp/ (it was published) drops the send" {
	plant_orphan "$Q" K3 1764425000.000000003.999_2_deadbeef.gone body
	rm "$Q/tmp/1764425000.000000003.999_2_deadbeef.gone"
	run --separate-stderr qsend -v -p --dedup-id K3 q mine
	assert_success
	assert_output ''
	[[ $stderr == *"dropped 1 duplicate"* ]] || fail "stderr: $stderr"
	assert_count new q 0
	assert_count retry q 0
	assert_equal "$(ls -A "$Q/tmp")" ''
	[[ $(cat "$Q/dedup/K3") == "1764425000.000000003.999_2_deadbeef.gone sent "* ]] ||
	    fail "marker: $(cat "$Q/dedup/K3")"
}

@test "qsend --dedup-id: a marker its sender made but never wrote (it crashed) lets the retry through" {
	local id
	mkdir -p "$Q/dedup"
	: > "$Q/dedup/K5"
	printf 'lost' > "$Q/tmp/1764425000.000000005.999_4_deadbeef.crashed"
	id=$(qsend -p --dedup-id K5 q retried)
	assert_equal "$(only new q)" "$id"
	assert_equal "$(cat "$Q/new/$id")" retried
	[[ $(cat "$Q/dedup/K5") =~ ^"$id sent "[0-9]{13}$ ]] || fail "marker: $(cat "$Q/dedup/K5")"
	qsend --dedup-id K5 q again
	assert_equal "$(only new q)" "$id"
}

@test "qsend --dedup-id: on a local file system a void marker, however old, is judged at once: no settle wait, the send goes and the marker says sent" {
	command -v strace >/dev/null || skip "strace is not installed"
	strace -o /dev/null true 2>/dev/null || skip "strace cannot trace here"
	local id old k
	old=$(( $(now_ms) - 3600 * 1000 ))
	mkdir -p "$Q/dedup"
	# Left empty by a sender that crashed an hour ago, and written an
	# hour ago, past dedup_window: both let the send through.
	: > "$Q/dedup/V1"
	printf '1764425000.000000006.999_5_deadbeef.old sent %s\n' "$old" > "$Q/dedup/V2"
	touch -d '1 hour ago' "$Q/dedup/V1" "$Q/dedup/V2"
	for k in V1 V2; do
		strace -E "$(leakless_env)" -f -o "$T/strace.$k" \
		    -e trace=nanosleep,clock_nanosleep qsend -p --dedup-id "$k" q "body $k" >"$T/id.$k" ||
		    fail "qsend --dedup-id $k failed"
		id=$(cat "$T/id.$k")
		assert_equal "$(cat "$Q/new/$id")" "body $k"
		[[ $(cat "$Q/dedup/$k") =~ ^"$id sent "[0-9]{13}$ ]] || fail "marker $k: $(cat "$Q/dedup/$k")"
		(( $(cut -d' ' -f3 "$Q/dedup/$k") > old )) || fail "marker $k not written anew"
		assert_equal "$(grep -c 'nanosleep(' "$T/strace.$k")" 0
	done
	assert_count new q 2
}

@test "qsend --dedup-id: the retry of a crashed delayed send keeps it delayed" {
	# The crashed sender's body keeps the delay (and a --ttl) of the send
	# it completes.
	local id=1764425000.000000004.999_3_deadbeef.crashed
	plant_orphan "$Q" K4 "$id" later
	qsend --dedup-id K4 --delay 1h q later
	assert_count new q 0
	expect_fail 1 qrecv q
	[[ $(only retry q) == "$id,t="* ]] || fail "$(names retry q)"
}

@test "qsend --dedup-id: a send refused as the queue is full (75) does not make its retry a duplicate" {
	mkq full max_messages=1 overflow=reject
	qsend full filler
	expect_fail 75 qsend --dedup-id pay-41 full payment
	assert_count new full 1
	qack "$(qrecv full)"
	# No marker may stay "pending" for an ID that was never published:
	# the producer's retry must be sent, not dropped as a duplicate.  It
	# is removed, so the retry makes it anew.
	[[ ! -e $Q/../full/dedup/pay-41 ]] || fail "marker left: $(cat "$Q/../full/dedup/pay-41")"
	run --separate-stderr qsend -v --dedup-id pay-41 full payment
	assert_success
	assert_equal "$stderr" ''
	assert_count new full 1
	assert_equal "$(bodies new full)" payment
}

@test "qsend --dedup-id: a send whose publish failed (disk full, 75) does not make its retry a duplicate" {
	command -v strace >/dev/null || skip "strace is not installed"
	strace -o /dev/null true 2>/dev/null || skip "strace cannot trace here"
	# The publishing rename fails as on a full disk.
	run --separate-stderr env ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0" \
	    strace -E "$(leakless_env)" -o "$T/strace" -e trace=renameat2 \
	    -e inject=renameat2:error=ENOSPC qsend --dedup-id pay-42 q payment
	refute_crash
	assert_equal "$status" 75
	assert_count new q 0
	assert_equal "$(ls -A "$Q/tmp")" ''
	[[ ! -e $Q/dedup/pay-42 ]] || fail "marker left: $(cat "$Q/dedup/pay-42")"
	# As above: the retry is sent.
	run --separate-stderr qsend -v --dedup-id pay-42 q payment
	assert_success
	assert_count new q 1
	assert_equal "$(bodies new q)" payment
}

@test "qsend --dedup-id: one message per send; -l, -0, several messages or files and bad IDs are refused (64)" {
	local before id
	printf 'x\n' > "$T/f1"
	printf 'y\n' > "$T/f2"
	before=$(snapshot "$SPOOLQ_DIR")
	expect_fail 64 qsend -l --dedup-id x q < <(printf 'a\nb\n')
	assert_output --partial 'one message per send'
	expect_fail 64 qsend -0 --dedup-id x q < /dev/null
	expect_fail 64 qsend --dedup-id x q a b
	expect_fail 64 qsend --dedup-id x -f q "$T/f1" "$T/f2"
	for id in '' .hidden a/b 'has space' $'new\nline' "$(printf 'i%.0s' {1..129})"; do
		expect_fail 64 qsend --dedup-id "$id" q body
	done
	assert_unchanged "$before"
	# One file, or stdin, is one message: accepted.
	qsend --dedup-id f -f q "$T/f1"
	printf 'from stdin' | qsend --dedup-id s q
	qsend --dedup-id "$(printf 'i%.0s' {1..128})" q longest
	qsend --dedup-id 'A-z_0.9:@+=' q chars
	assert_count new q 4
}
