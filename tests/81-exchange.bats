#!/usr/bin/env bats
# Exchanges: qadmin exchange create/list/show, bind and unbind, and their
# errors; qsend through fanout, direct and topic exchanges (topic routing
# checked against RabbitMQ's own topic test table), the alternate queue,
# unroutable sends (exit 69), the hard links of fan-out and what consuming
# one queue's copy does to the others, -l and -f, --dedup-id through an
# exchange, and a bound queue on another file system (root only: a tmpfs
# bind-mounted into the spool root).

load helpers

setup() {
	spoolq_setup
	MOUNTS=()
}

teardown() {
	local m
	kill_jobs
	for m in ${MOUNTS[@]+"${MOUNTS[@]}"}; do
		umount "$m" 2>/dev/null || umount -l "$m"
	done
	spoolq_teardown
}

# mkqs QUEUE...: create queues.
mkqs() {
	local q
	for q; do
		mkq "$q"
	done
}

# mkx NAME TYPE [alternate=QUEUE]: create an exchange.
mkx() {
	qadmin exchange create "$@" 2>/dev/null
}

# X NAME: the path of an exchange's exchange.conf.
X() {
	printf '%s\n' "$SPOOLQ_DIR/$1/exchange.conf"
}

# ino QUEUE: "INODE LINKS" of the single ready message of QUEUE.
ino() {
	stat -c '%i %h' "$(qdir "$1")/new/$(only new "$1")"
}

# ids QUEUE: the IDs of the ready messages of QUEUE, sorted.
ids() {
	names new "$1" | sed 's/,.*//'
}

# assert_tmp_empty: no entry at all, dot files included, in the tmp/ of
# any queue under the spool root.
assert_tmp_empty() {
	local left
	left=$(find "$SPOOLQ_DIR" -mindepth 3 -maxdepth 3 -path "$SPOOLQ_DIR/*/tmp/*")
	[[ -z $left ]] || fail "left in tmp/:"$'\n'"$left"
}

# mount_elsewhere NAME: make queue NAME of the spool root live on a tmpfs
# of its own: it is created there, then bind-mounted into the root.
mount_elsewhere() {
	(( EUID == 0 )) || skip "mounting a tmpfs needs root"
	mkdir -p "$T/fs" "$SPOOLQ_DIR/$1"
	mount -t tmpfs -o size=8m,mode=0755 spoolq-test "$T/fs" 2>/dev/null ||
	    skip "cannot mount a tmpfs here"
	MOUNTS=("$T/fs")
	qadmin -d "$T/fs" create "$1" >/dev/null
	mount --bind "$T/fs/$1" "$SPOOLQ_DIR/$1" || fail "cannot bind-mount $T/fs/$1"
	MOUNTS=("$SPOOLQ_DIR/$1" "$T/fs")
	[[ $(stat -c %d "$SPOOLQ_DIR/$1") != "$(stat -c %d "$SPOOLQ_DIR")" ]] ||
	    fail "$1 is on the root's file system"
}

# ------------------------------------------------------------ qadmin

@test "qadmin exchange create: fanout, direct, topic; exchange.conf holds the type; list shows type and bindings, sorted" {
	mkqs a b
	run qadmin exchange create logs fanout
	assert_success
	assert_output ''
	qadmin exchange create orders topic
	qadmin exchange create mail direct
	assert_file_exists "$(X logs)"
	grep -qx '\[exchange\]' "$(X logs)" || fail "$(cat "$(X logs)")"
	grep -Eqx 'type *= *fanout' "$(X logs)" || fail "$(cat "$(X logs)")"
	grep -Eqx 'type *= *topic' "$(X orders)" || fail "$(cat "$(X orders)")"
	qadmin bind logs a
	qadmin bind logs b
	qadmin bind orders a 'orders.#'
	qadmin bind orders a 'refunds.*'
	run qadmin exchange list
	assert_success
	assert_lines_eq "$(printf 'EXCHANGE\tTYPE\tBINDINGS\nlogs\tfanout\t2\nmail\tdirect\t0\norders\ttopic\t2')" "$output"
	# Exchanges are not queues.
	run qadmin list
	assert_success
	refute_output --partial logs
	refute_output --partial orders
}

@test "qadmin exchange create: alternate=QUEUE is kept and shown; a missing alternate queue is only a warning" {
	mkq q
	run --separate-stderr qadmin exchange create x topic alternate=unrouted
	assert_success
	[[ $stderr == *unrouted*"does not exist"* ]] || fail "stderr: $stderr"
	run qadmin exchange show x
	assert_success
	assert_lines_eq "$(printf 'type: topic\nalternate: unrouted')" "$output"
	grep -Eqx 'alternate *= *unrouted' "$(X x)" || fail "$(cat "$(X x)")"
	run --separate-stderr qadmin exchange create y direct alternate=q
	assert_success
	assert_equal "$stderr" ''
}

@test "qadmin exchange create: a taken name exits 73; a bad type, name or alternate 64; nothing changes" {
	local before
	mkq q
	mkx x fanout
	before=$(snapshot "$SPOOLQ_DIR")
	expect_fail 73 qadmin exchange create x topic
	assert_output --partial exists
	expect_fail 73 qadmin exchange create q fanout
	expect_fail 64 qadmin exchange create y headers
	assert_output --partial 'unknown exchange type'
	expect_fail 64 qadmin exchange create y
	expect_fail 64 qadmin exchange create '.hidden' fanout
	expect_fail 64 qadmin exchange create y topic alternate=a/b
	expect_fail 64 qadmin exchange create y topic other=q
	expect_fail 64 qadmin exchange bogus
	assert_unchanged "$before"
}

@test "qadmin exchange show: type, then one line per binding in file order, the pattern after a tab" {
	mkqs eu us audit
	mkx orders topic
	qadmin bind orders eu 'orders.eu.#'
	qadmin bind orders us 'orders.us.*'
	qadmin bind orders eu 'refunds.*.eu'
	qadmin bind orders audit '#'
	run qadmin exchange show orders
	assert_success
	assert_lines_eq "$(printf 'type: topic\neu\torders.eu.#\neu\trefunds.*.eu\nus\torders.us.*\naudit\t#')" "$output"
	mkx logs fanout
	qadmin bind logs us
	qadmin bind logs audit
	run qadmin exchange show logs
	assert_lines_eq "$(printf 'type: fanout\nus\naudit')" "$output"
	expect_fail 66 qadmin exchange show nosuch
	assert_output --partial 'no such exchange'
	expect_fail 66 qadmin exchange show eu
	assert_output --partial 'not an exchange'
}

@test "qadmin bind: a missing queue, a missing exchange or a queue as exchange exits 66; exchange.conf untouched" {
	local before
	mkq q
	mkx x topic
	before=$(cat "$(X x)")
	expect_fail 66 qadmin bind x nosuch 'a.#'
	assert_output --partial 'nosuch: no such queue'
	expect_fail 66 qadmin bind nosuch q 'a.#'
	assert_output --partial 'no such exchange'
	expect_fail 66 qadmin bind q q 'a.#'
	assert_output --partial 'not an exchange'
	assert_equal "$(cat "$(X x)")" "$before"
	run qadmin exchange show x
	assert_output 'type: topic'
}

@test "qadmin bind: direct and topic need a pattern (64); bad names and patterns are refused (64); nothing changes" {
	local before p
	mkq q
	mkx d direct
	mkx t topic
	before=$(snapshot "$SPOOLQ_DIR")
	expect_fail 64 qadmin bind d q
	assert_output --partial 'binds with a pattern'
	expect_fail 64 qadmin bind t q
	assert_output --partial 'binds with a pattern'
	expect_fail 64 qadmin bind t 'a/b' 'x'
	expect_fail 64 qadmin bind t q a b
	for p in ' lead' 'trail ' ';x' 'a ;b' $'new\nline' $'tab\there' "$(printf 'w%.0s' {1..256})"; do
		expect_fail 64 qadmin bind t q "$p"
	done
	assert_unchanged "$before"
}

@test "qadmin bind: the longest pattern (255 bytes) is kept whole" {
	local p
	mkq q
	mkx t topic
	p=$(printf 'w%.0s' {1..255})
	qadmin bind t q "$p"
	run qadmin exchange show t
	assert_lines_eq "$(printf 'type: topic\nq\t%s' "$p")" "$output"
	qsend -k "$p" t body
	assert_equal "$(bodies new q)" body
}

@test "qadmin bind: binding again changes nothing (the file is not rewritten); fanout ignores a pattern" {
	local i1 c1
	mkqs q r
	mkx t topic
	qadmin bind t q 'a.*'
	i1=$(stat -c %i "$(X t)")
	c1=$(cat "$(X t)")
	run qadmin bind t q 'a.*'
	assert_success
	assert_equal "$(stat -c %i "$(X t)")" "$i1"
	assert_equal "$(cat "$(X t)")" "$c1"
	mkx f fanout
	qadmin bind f q
	qadmin bind f r ignored.key
	qadmin bind f q another
	run qadmin exchange show f
	assert_lines_eq "$(printf 'type: fanout\nq\nr')" "$output"
}

@test "qadmin unbind: one pattern at a time; the last one takes its [bind] section; a missing binding exits 66, file untouched" {
	local before i1
	mkqs q r
	mkx t topic
	qadmin bind t q 'a.*'
	qadmin bind t q 'b.#'
	qadmin bind t r '#'
	run qadmin unbind t q 'a.*'
	assert_success
	run qadmin exchange show t
	assert_lines_eq "$(printf 'type: topic\nq\tb.#\nr\t#')" "$output"
	qadmin unbind t q 'b.#'
	run qadmin exchange show t
	assert_lines_eq "$(printf 'type: topic\nr\t#')" "$output"
	# No key-less [bind "q"] is left behind: it would be a fanout binding.
	run grep -c 'bind "q"' "$(X t)"
	assert_output 0
	before=$(cat "$(X t)")
	i1=$(stat -c %i "$(X t)")
	expect_fail 66 qadmin unbind t q 'b.#'
	assert_output --partial 'not bound'
	expect_fail 66 qadmin unbind t r 'other'
	expect_fail 66 qadmin unbind t q
	expect_fail 66 qadmin unbind nosuch r '#'
	assert_equal "$(cat "$(X t)")" "$before"
	assert_equal "$(stat -c %i "$(X t)")" "$i1"
	# After unbinding, q gets nothing; r ('#') still gets everything.
	qsend -k b.x t body
	assert_count new q 0
	assert_equal "$(bodies new r)" body
	qadmin unbind t r
	expect_fail 69 qsend -k b.x t body
}

@test "qadmin unbind without a pattern removes every binding of the queue; fanout unbind" {
	mkqs q r
	mkx t topic
	qadmin bind t q 'a.*'
	qadmin bind t q 'b.*'
	qadmin bind t r 'a.*'
	qadmin unbind t q
	run qadmin exchange show t
	assert_lines_eq "$(printf 'type: topic\nr\ta.*')" "$output"
	mkx f fanout
	qadmin bind f q
	qadmin bind f r
	qadmin unbind f q
	run qadmin exchange show f
	assert_lines_eq "$(printf 'type: fanout\nr')" "$output"
	expect_fail 66 qadmin unbind f q
}

@test "qadmin bind and unbind keep the comments and other lines of exchange.conf" {
	mkqs q r
	mkdir "$SPOOLQ_DIR/x"
	cat > "$(X x)" <<-'EOF'
	# orders by region
	[exchange]
	type = topic   ; routed by AMQP rules

	; Europe
	[bind "q"]
	key = orders.eu.#
	EOF
	qadmin bind x r 'orders.us.#'
	qadmin unbind x q 'orders.eu.#'
	qadmin bind x q 'orders.eu.*'
	grep -qx '# orders by region' "$(X x)" || fail "$(cat "$(X x)")"
	grep -qx 'type = topic   ; routed by AMQP rules' "$(X x)" || fail "$(cat "$(X x)")"
	grep -qx '; Europe' "$(X x)" || fail "$(cat "$(X x)")"
	run qadmin exchange show x
	assert_same "$(printf 'type: topic\nr\torders.us.#\nq\torders.eu.*')" "$output"
}

@test "qadmin bind and unbind keep what indented headers and keys bind: no line joins the key line an edit puts or leaves before it" {
	mkqs q r s
	mkdir "$SPOOLQ_DIR/x"
	printf '%s\n' '[exchange]' 'type = direct' '[bind "q"]' \
	    '  [bind "r"]' '	key = r1' '[bind "s"]' '  key = s1' >"$(X x)"
	qadmin bind x q k
	run qadmin exchange show x
	assert_same "$(printf 'type: direct\nq\tk\nr\tr1\ns\ts1')" "$output"
	qadmin unbind x q k
	qadmin bind x s s2
	qadmin unbind x s s1
	run qadmin exchange show x
	assert_same "$(printf 'type: direct\nr\tr1\ns\ts2')" "$output"
}

@test "qadmin -n bind and unbind say what they would do and change nothing" {
	local before
	mkq q
	mkx t topic
	qadmin bind t q 'a.#'
	before=$(cat "$(X t)")
	run qadmin -n bind t q 'b.#'
	assert_success
	assert_output 'would bind t q b.#'
	run qadmin -n unbind t q 'a.#'
	assert_success
	assert_output 'would unbind t q a.#'
	assert_equal "$(cat "$(X t)")" "$before"
}

@test "qadmin bind: 10 concurrent binds to one exchange all land" {
	local i
	for i in $(seq 10); do
		mkq "q$i"
	done
	mkx t topic
	for i in $(seq 10); do
		qadmin bind t "q$i" "k.$i" &
	done
	wait
	run qadmin exchange show t
	assert_success
	assert_same "$(printf 'type: topic\n'; for i in $(seq 10); do printf 'q%s\tk.%s\n' "$i" "$i"; done)" "$output"
}

@test "a bad exchange.conf exits 78 naming file, line and key: qsend, exchange show, bind, unbind; exchange list reports it" {
	local conf
	mkqs q
	mkx good fanout
	mkdir "$SPOOLQ_DIR/x"
	conf=$(X x)
	printf '[exchange]\ntype = fanout\nbogus = 1\n' > "$conf"
	expect_fail 78 qsend x body
	assert_output --partial "$conf:3: bogus: unknown key"
	expect_fail 78 qadmin exchange show x
	assert_output --partial "$conf:3: bogus"
	expect_fail 78 qadmin bind x q
	assert_output --partial "$conf:3: bogus"
	expect_fail 78 qadmin unbind x q
	run qadmin exchange list
	assert_equal "$status" 78
	assert_output --partial "$conf:3: bogus"
	assert_output --partial $'good\tfanout\t0'
	printf '[exchange]\n' > "$conf"
	expect_fail 78 qsend x body
	assert_output --partial "$conf: type: missing"
	printf '[exchange]\ntype = headers\n' > "$conf"
	expect_fail 78 qsend x body
	assert_output --partial "$conf:2: type: headers"
	printf '[exchange]\ntype = fanout\n[bind "a/b"]\n' > "$conf"
	expect_fail 78 qsend x body
	assert_output --partial "$conf:3:"
	printf '[exchange]\ntype = fanout\n[queue]\n' > "$conf"
	expect_fail 78 qsend x body
	assert_output --partial "$conf:3: [queue]: unknown section"
	printf '[exchange]\ntype = topic\n[bind "q"]\npattern = a.#\n' > "$conf"
	expect_fail 78 qsend -k a.b x body
	assert_output --partial "$conf:4: pattern: unknown key"
	printf '[exchange]\ntype = topic\nthis is not a line\n' > "$conf"
	expect_fail 78 qsend -k a.b x body
	assert_output --partial "$conf:3:"
	printf '[exchange]\ntype = topic\nalternate = a/b\n' > "$conf"
	expect_fail 78 qsend -k a.b x body
	assert_output --partial "$conf:3: alternate"
	assert_count new q 0
	assert_tmp_empty
}

# ------------------------------------------------------------ fanout

@test "fanout: every bound queue gets the message under one ID, as one inode (hard links)" {
	local id q i0
	mkqs a b c
	mkx logs fanout
	qadmin bind logs a
	qadmin bind logs b
	qadmin bind logs c
	run --separate-stderr qsend -p logs 'hello, world'
	assert_success
	id=$output
	[[ $id =~ ^$ID_RE$ ]] || fail "not an ID: $id"
	i0=$(stat -c %i "$SPOOLQ_DIR/a/new/$id")
	for q in a b c; do
		assert_equal "$(only new "$q")" "$id"
		assert_equal "$(cat "$SPOOLQ_DIR/$q/new/$id")" 'hello, world'
		assert_equal "$(ino "$q")" "$i0 3"
	done
	assert_tmp_empty
}

@test "fanout: the key is ignored (with or without -k every queue gets it), and it travels with each copy" {
	local q id
	mkqs a b
	mkx logs fanout
	qadmin bind logs a
	qadmin bind logs b
	qsend logs plain
	id=$(qsend -p -k any.key.at.all logs keyed)
	for q in a b; do
		assert_same "$(printf 'plain\nkeyed\n')" "$(bodies new "$q")"
		assert_equal "$(cat "$SPOOLQ_DIR/$q/new/$id,h")" keyed
		grep -qx 'key any.key.at.all' "$SPOOLQ_DIR/$q/attr/$id" ||
		    fail "attr/$id of $q: $(cat "$SPOOLQ_DIR/$q/attr/$id")"
	done
	qrecv -A b > /dev/null		# plain, the older one
	qrecv --meta b > "$T/meta"
	grep -qx 'SPOOLQ_KEY=any.key.at.all' "$T/meta" || fail "$(cat "$T/meta")"
}

@test "fanout -l: each line fans out to every queue, one inode per line, in order" {
	local q id
	mkqs a b c
	mkx logs fanout
	for q in a b c; do
		qadmin bind logs "$q"
	done
	printf 'one\ntwo\nthree\n' | qsend -l -p logs > "$T/ids"
	assert_equal "$(wc -l < "$T/ids")" 3
	for q in a b c; do
		assert_lines_eq "$(cat "$T/ids")" "$(ids "$q")"
		assert_lines_eq "$(printf 'one\ntwo\nthree')" "$(bodies new "$q")"
	done
	while read -r id; do
		assert_equal "$(stat -c %h "$SPOOLQ_DIR/a/new/$id")" 3
		assert_equal "$(stat -c %i "$SPOOLQ_DIR/b/new/$id")" "$(stat -c %i "$SPOOLQ_DIR/a/new/$id")"
		assert_equal "$(stat -c %i "$SPOOLQ_DIR/c/new/$id")" "$(stat -c %i "$SPOOLQ_DIR/a/new/$id")"
	done < "$T/ids"
	assert_equal "$(sort -u < <(cd "$SPOOLQ_DIR/a/new" && stat -c %i -- *) | wc -l)" 3
	assert_tmp_empty
}

@test "fanout -f and stdin: binary bodies byte for byte in every queue" {
	local q
	mkqs a b
	mkx logs fanout
	qadmin bind logs a
	qadmin bind logs b
	head -c 200000 /dev/urandom > "$T/bin"
	printf 'with\0nul\n' > "$T/nul"
	qsend -f logs "$T/bin" "$T/nul"
	qsend logs < "$T/bin"
	for q in a b; do
		assert_count new "$q" 3
		names new "$q" > "$T/names"
		cmp "$T/bin" "$SPOOLQ_DIR/$q/new/$(sed -n 1p "$T/names")"
		cmp "$T/nul" "$SPOOLQ_DIR/$q/new/$(sed -n 2p "$T/names")"
		cmp "$T/bin" "$SPOOLQ_DIR/$q/new/$(sed -n 3p "$T/names")"
	done
	assert_tmp_empty
}

@test "fanout: each queue's copy is consumed on its own; acking one leaves the others and drops the link count" {
	local id r
	mkqs a b c
	mkx logs fanout
	qadmin bind logs a
	qadmin bind logs b
	qadmin bind logs c
	id=$(qsend -p logs job)
	# A claim in one queue hides nothing in the others.
	r=$(qrecv a)
	[[ $r == "$SPOOLQ_DIR/a/cur/$id,a=1,l="* ]] || fail "receipt: $r"
	assert_equal "$(only new b)" "$id"
	assert_equal "$(stat -c %h "$r")" 3
	qack "$r"
	assert_count cur a 0
	assert_count new a 0
	assert_equal "$(only new b)" "$id"
	assert_equal "$(only new c)" "$id"
	assert_equal "$(stat -c %h "$SPOOLQ_DIR/b/new/$id")" 2
	run qrecv -A b
	assert_success
	assert_output job
	assert_equal "$(ino c | cut -d' ' -f2)" 1
	assert_equal "$(cat "$SPOOLQ_DIR/c/new/$id")" job
	# Dead-lettering in one queue is that queue's business too.
	qsend logs second
	r=$(qrecv c)
	qack --reject "$r"
	assert_count dead c 1
	assert_equal "$(bodies new a)" second
	assert_equal "$(bodies new b)" second
}

# ------------------------------------------------------------ direct

@test "direct: only a byte-for-byte key match delivers; a queue bound twice gets one copy" {
	local k
	mkqs eu us both
	mkx mail direct
	qadmin bind mail eu orders.eu
	qadmin bind mail us orders.us
	qadmin bind mail both orders.eu
	qadmin bind mail both 'orders.*'
	qsend -k orders.eu mail m1
	qsend -k 'orders.*' mail m2
	qsend -k orders.us mail m3
	for k in orders.EU orders.eu. orders orders.eu.x .orders.eu 'orders.e*' 'orders.#' ''; do
		expect_fail 69 qsend -k "$k" mail never
	done
	expect_fail 69 qsend mail never
	assert_equal "$(bodies new eu)" m1
	assert_equal "$(bodies new us)" m3
	assert_lines_eq "$(printf 'm1\nm2')" "$(bodies new both)"
	assert_equal "$(stat -c %h "$SPOOLQ_DIR/eu/new/$(only new eu)")" 2
	assert_tmp_empty
}

# ------------------------------------------------------------ topic

# RabbitMQ's topic exchange test (rabbitmq-server test_topic_matching):
# bindings t1..t26, then the bindings each routing key must reach.  The
# empty key is zero words there, so "*" (t25) and "*.#" (t21) miss it.
RABBIT_PATTERNS=("a.b.c" "a.*.c" "a.#.b" "a.b.b.c" "#" "#.#" "#.b" "*.*"
	"a.*" "*.b.c" "a.#" "a.#.#" "b.b.c" "a.b.b" "a.b" "b.c" ""
	"*.*.*" "vodka.martini" "a.b.c" "*.#" "#.*.#" "*.#.#" "#.#.#" "*"
	"#.b.#")

RABBIT_ROUTES='a.b.c|1 2 5 6 10 11 12 18 20 21 22 23 24 26
a.b|3 5 6 7 8 9 11 12 15 21 22 23 24 26
a.b.b|3 5 6 7 11 12 14 18 21 22 23 24 26
|5 6 17 24
b.c.c|5 6 18 21 22 23 24 26
a.a.a.a.a|5 6 11 12 21 22 23 24
vodka.gin|5 6 8 21 22 23 24
vodka.martini|5 6 8 19 21 22 23 24
b.b.c|5 6 10 13 18 21 22 23 24 26
nothing.here.at.all|5 6 21 22 23 24
oneword|5 6 21 22 23 24 25'

# The same after removing the bindings t1, t5, t11, t19 and t21.
RABBIT_ROUTES_AFTER='a.b.c|2 6 10 12 18 20 22 23 24 26
a.b|3 6 7 8 9 12 15 22 23 24 26
a.b.b|3 6 7 12 14 18 22 23 24 26
|6 17 24
b.c.c|6 18 22 23 24 26
a.a.a.a.a|6 12 22 23 24
vodka.gin|6 8 22 23 24
vodka.martini|6 8 22 23 24
b.b.c|6 10 13 18 22 23 24 26
nothing.here.at.all|6 22 23 24
oneword|6 22 23 24 25'

# rabbit_setup: queues t1..t26 bound to topic exchange "rx" with
# RabbitMQ's patterns.
rabbit_setup() {
	local i
	mkx rx topic
	for i in "${!RABBIT_PATTERNS[@]}"; do
		mkq "t$((i + 1))"
		qadmin bind rx "t$((i + 1))" "${RABBIT_PATTERNS[$i]}"
	done
}

# route_all EXCHANGE TABLE: send one message per key of TABLE ("KEY|N N..."
# lines) through EXCHANGE with body "k=KEY"; then print "KEY tN" for every
# message found in queues t1..t26 (got) into $T/got and the expected lines
# into $T/want.
route_all() {
	local key ts t i b
	: > "$T/want"
	while IFS='|' read -r key ts; do
		qsend -k "$key" "$1" "k=$key" || fail "qsend -k '$key' $1: exit $?"
		for t in $ts; do
			printf '%s t%s\n' "$key" "$t" >> "$T/want"
		done
	done <<< "$2"
	: > "$T/got"
	for i in $(seq 26); do
		bodies new "t$i" | while IFS= read -r b; do
			printf '%s t%s\n' "${b#k=}" "$i"
		done >> "$T/got"
	done
}

@test "topic: RabbitMQ's topic test table, through qsend into 26 bound queues" {
	rabbit_setup
	route_all rx "$RABBIT_ROUTES"
	assert_same "$(cat "$T/want")" "$(cat "$T/got")"
	assert_tmp_empty
}

@test "topic: RabbitMQ's table after unbinding t1, t5, t11, t19 and t21" {
	local i
	rabbit_setup
	for i in 1 5 11 19 21; do
		qadmin unbind rx "t$i" "${RABBIT_PATTERNS[$((i - 1))]}"
	done
	route_all rx "$RABBIT_ROUTES_AFTER"
	assert_same "$(cat "$T/want")" "$(cat "$T/got")"
}

@test "topic: '#', '*', 'a.#.b', '#.#', empty words; '*' does not match the empty key" {
	local q key want got
	# queue=pattern
	local -A pat=([hash]='#' [star]='*' [ahb]='a.#.b' [hh]='#.#'
	    [asb]='a.*.b' [ss]='*.*' [as]='a.*' [sh]='*.#' [empty]=''
	    [dotdot]='a..b')
	# key|queues, by AMQP 0-9-1 as RabbitMQ splits keys: words at every
	# '.', the empty key is zero words, "a." is "a" and an empty word.
	local table='|hash hh empty
a|hash hh sh star
b|hash hh sh star
a.b|hash hh ahb ss as sh
a.x.b|hash hh ahb asb sh
a.x.y.b|hash hh ahb sh
a..b|hash hh ahb asb sh dotdot
.|hash hh ss sh
a.|hash hh ss as sh
.a|hash hh ss sh
a.b.c|hash hh sh'
	mkx tx topic
	for q in "${!pat[@]}"; do
		mkq "$q"
		qadmin bind tx "$q" "${pat[$q]}"
	done
	want=
	while IFS='|' read -r key q; do
		qsend -k "$key" tx "k=$key"
		for q in $q; do
			want+="$key $q"$'\n'
		done
	done <<< "$table"
	got=
	for q in "${!pat[@]}"; do
		while IFS= read -r b; do
			[[ -n $b ]] && got+="${b#k=} $q"$'\n'
		done < <(bodies new "$q")
	done
	assert_same "$want" "$got"
}

@test "topic: qsend without -k routes the empty key: '#' and '' match, '*' does not" {
	mkqs hash star empty
	mkx tx topic
	qadmin bind tx hash '#'
	qadmin bind tx star '*'
	qadmin bind tx empty ''
	qsend tx no-key
	assert_equal "$(bodies new hash)" no-key
	assert_equal "$(bodies new empty)" no-key
	assert_count new star 0
	qadmin unbind tx hash
	qadmin unbind tx empty
	expect_fail 69 qsend tx no-key
	expect_fail 69 qsend -k '' tx empty-key
	assert_count new star 0
}

@test "topic: a queue whose several patterns match gets one copy" {
	mkqs q other
	mkx tx topic
	qadmin bind tx q 'orders.#'
	qadmin bind tx q 'orders.*.eu'
	qadmin bind tx q '#'
	qadmin bind tx other 'orders.*.eu'
	qsend -k orders.new.eu tx one
	assert_equal "$(bodies new q)" one
	assert_equal "$(bodies new other)" one
	assert_equal "$(ino q)" "$(ino other)"
}

# ------------------------------------------------------------ alternate, unroutable

@test "alternate: keys that match no binding go to the alternate queue, and only those" {
	mkqs eu unrouted
	mkx orders topic alternate=unrouted
	qadmin bind orders eu 'orders.eu.#'
	qsend -k orders.eu.new orders routed
	qsend -k orders.us.new orders not-routed
	qsend orders no-key
	assert_equal "$(bodies new eu)" routed
	assert_lines_eq "$(printf 'not-routed\nno-key')" "$(bodies new unrouted)"
	# A direct exchange, and a fanout without bindings, the same.
	mkx d direct alternate=unrouted
	qadmin bind d eu eu
	qsend -k us d direct-miss
	qsend -k eu d direct-hit
	mkx f fanout alternate=unrouted
	qsend f fanout-empty
	assert_lines_eq "$(printf 'routed\ndirect-hit')" "$(bodies new eu)"
	assert_lines_eq "$(printf 'not-routed\nno-key\ndirect-miss\nfanout-empty')" "$(bodies new unrouted)"
}

@test "alternate: a missing alternate queue fails the send (66), nothing written" {
	local before
	mkq eu
	mkx orders topic alternate=unrouted
	qadmin bind orders eu 'orders.eu.#'
	before=$(snapshot "$SPOOLQ_DIR")
	expect_fail 66 qsend -k orders.us orders body
	assert_output --partial 'unrouted'
	assert_unchanged "$before"
}

@test "unroutable: exit 69 with a message naming the key; nothing written anywhere, no file left in any tmp/" {
	local before
	mkqs a b
	mkx tx topic
	qadmin bind tx a 'a.#'
	qadmin bind tx b 'b.*'
	before=$(snapshot "$SPOOLQ_DIR")
	expect_fail 69 qsend -k c.d tx body
	assert_output --partial 'tx: unroutable'
	assert_output --partial '"c.d"'
	run --separate-stderr qsend -p -k b.c.d tx body
	assert_equal "$status" 69
	assert_output ''
	printf 'x\ny\n' > "$T/lines"
	expect_fail 69 qsend -l -k z tx < "$T/lines"
	expect_fail 69 qsend -k z -f tx "$T/lines"
	expect_fail 69 qsend --dedup-id once -k z tx body
	assert_unchanged "$before"
	assert_tmp_empty
	# An exchange without bindings or alternate routes nothing.
	mkx empty fanout
	before=$(snapshot "$SPOOLQ_DIR")
	expect_fail 69 qsend empty body
	assert_unchanged "$before"
}

@test "a missing bound queue fails the send (66) and nothing is written into the others" {
	local before
	mkqs a c
	mkx logs fanout
	qadmin bind logs a
	mkq b
	qadmin bind logs b
	qadmin bind logs c
	qadmin destroy b
	before=$(snapshot "$SPOOLQ_DIR")
	expect_fail 66 qsend logs body
	assert_output --partial 'b: no such queue'
	assert_unchanged "$before"
	assert_tmp_empty
}

# ------------------------------------------------------------ dedup

@test "--dedup-id through an exchange: a repeat is dropped by every queue" {
	local id q
	mkqs a b c
	mkx logs fanout
	for q in a b c; do
		qadmin bind logs "$q"
	done
	id=$(qsend -p --dedup-id order-1 logs first)
	run --separate-stderr qsend -p -v --dedup-id order-1 logs second
	assert_success
	assert_output ''
	[[ $stderr == *"dropped 3 duplicates"* ]] || fail "stderr: $stderr"
	for q in a b c; do
		assert_equal "$(only new "$q")" "$id"
		assert_equal "$(cat "$SPOOLQ_DIR/$q/new/$id")" first
		[[ $(cat "$SPOOLQ_DIR/$q/dedup/order-1") == "$id sent "* ]] ||
		    fail "marker of $q: $(cat "$SPOOLQ_DIR/$q/dedup/order-1")"
	done
	assert_tmp_empty
}

@test "--dedup-id through an exchange: a marker name taken by a non-file in one queue fails the send whole (65), no copy in any queue" {
	local kind q
	mkqs a b c
	mkx logs fanout
	for q in a b c; do
		qadmin bind logs "$q"
	done
	mkdir -p "$SPOOLQ_DIR/c/dedup"
	ln -s /etc/passwd "$SPOOLQ_DIR/c/dedup/s1"
	mkfifo "$SPOOLQ_DIR/c/dedup/f1"
	mkdir "$SPOOLQ_DIR/c/dedup/d1"
	for kind in s1:symlink f1:FIFO d1:directory; do
		run --separate-stderr timeout 20 qsend --dedup-id "${kind%%:*}" logs body
		assert_equal "$status" 65
		assert_equal "${stderr_lines[0]}" "qsend: $SPOOLQ_DIR/c/dedup/${kind%%:*}: not a regular file (${kind#*:}); qadmin check --repair moves it to quarantine/"
		for q in a b c; do
			assert_count new "$q" 0
		done
	done
	assert_tmp_empty
	for q in a b; do
		[[ ! -e $SPOOLQ_DIR/$q/dedup/s1 ]] || fail "a marker of $q made"
	done
	# The entries moved away, the same ID goes to all three.
	run qadmin check --repair c
	qsend --dedup-id s1 logs body
	for q in a b c; do
		assert_count new "$q" 1
	done
}

@test "--dedup-id through an exchange: a retried send completes the set without duplicates" {
	local id q
	mkqs a b c
	mkx logs fanout
	for q in a b c; do
		qadmin bind logs "$q"
	done
	id=$(qsend -p --dedup-id pay-7 logs payment)
	# As if the first send had died before reaching b.
	rm "$SPOOLQ_DIR/b/new/$id" "$SPOOLQ_DIR/b/dedup/pay-7"
	run --separate-stderr qsend -v --dedup-id pay-7 logs payment
	assert_success
	[[ $stderr == *"dropped 2 duplicates"* ]] || fail "stderr: $stderr"
	assert_equal "$(only new a)" "$id"
	assert_equal "$(only new c)" "$id"
	assert_equal "$(bodies new b)" payment
	assert_equal "$(stat -c %h "$SPOOLQ_DIR/a/new/$id")" 2
	[[ $(cat "$SPOOLQ_DIR/b/dedup/pay-7") == *" sent "* ]] ||
	    fail "marker of b: $(cat "$SPOOLQ_DIR/b/dedup/pay-7")"
	# And a third send changes nothing anywhere.
	qsend --dedup-id pay-7 logs payment
	assert_count new a 1
	assert_count new b 1
	assert_count new c 1
	assert_tmp_empty
}

@test "--dedup-id through an exchange: -p prints the ID of the copy a retry committed" {
	# When the first queue drops the retry as a duplicate, the message
	# committed into b is still printed.
	local id q
	mkqs a b c
	mkx logs fanout
	for q in a b c; do
		qadmin bind logs "$q"
	done
	id=$(qsend -p --dedup-id pay-8 logs payment)
	rm "$SPOOLQ_DIR/b/new/$id" "$SPOOLQ_DIR/b/dedup/pay-8"
	run --separate-stderr qsend -p --dedup-id pay-8 logs payment
	assert_success
	assert_equal "$(bodies new b)" payment
	assert_output "$(ids b)"
}

# ------------------------------------------------------------ file systems

@test "a bound queue on another file system gets a copy, not a link; the others share one inode" {
	local id
	mkqs a c
	mount_elsewhere far
	mkx logs fanout
	qadmin bind logs a
	qadmin bind logs far
	qadmin bind logs c
	id=$(qsend -p logs 'across file systems')
	assert_equal "$(only new far)" "$id"
	assert_equal "$(cat "$SPOOLQ_DIR/far/new/$id")" 'across file systems'
	assert_equal "$(stat -c %h "$SPOOLQ_DIR/far/new/$id")" 1
	assert_equal "$(ino a)" "$(ino c)"
	assert_equal "$(ino a | cut -d' ' -f2)" 2
	assert_tmp_empty
	qrecv -A far > /dev/null
	assert_equal "$(cat "$SPOOLQ_DIR/a/new/$id")" 'across file systems'
}

@test "a bound queue on another file system first in the bindings: the others still share one inode" {
	# The first routed queue is on another file system: the queues that
	# share one file system still share one inode.
	local id
	mkqs a c
	mount_elsewhere far
	mkx logs fanout
	qadmin bind logs far
	qadmin bind logs a
	qadmin bind logs c
	id=$(qsend -p logs 'first elsewhere')
	assert_equal "$(only new far)" "$id"
	assert_equal "$(cat "$SPOOLQ_DIR/a/new/$id")" 'first elsewhere'
	assert_equal "$(cat "$SPOOLQ_DIR/c/new/$id")" 'first elsewhere'
	assert_tmp_empty
	assert_equal "$(ino a)" "$(ino c)"
}

@test "qadmin exchange destroy: what takes the exchange's name between its look and its rename (a queue, once the exchange was destroyed) is put back whole, and it fails as for no such exchange" {
	command -v strace >/dev/null || skip "strace is not installed"
	strace -f -qq -o /dev/null true 2>/dev/null || skip "strace cannot trace here"
	local status=0
	qadmin exchange create x fanout
	# Held 4 s at its rename aside, past its look at the exchange.
	strace -E "$(leakless_env)" -f -qq -o "$T/trace" \
	    -e trace=rename,renameat,renameat2 \
	    -e inject=rename,renameat,renameat2:delay_enter=4000000:when=1 \
	    qadmin exchange destroy x >"$T/out" 2>&1 &
	wait_for grep -q 'rename' "$T/trace"
	run -0 qadmin exchange destroy x
	mkq x
	qsend x precious
	wait $! || status=$?
	assert_equal "$status" 66 "$(cat "$T/out")"
	[[ $(cat "$T/out") == *'x: no such exchange' ]] || fail "$(cat "$T/out")"
	assert_count new x 1
	run -0 qadmin check x
	run -0 qrecv -A x
	assert_output precious
	run ls -A "$SPOOLQ_DIR"
	assert_output x
}

@test "qadmin exchange destroy: the exchange goes, its queues and their messages stay" {
	mkqs a b
	qadmin exchange create gone fanout
	qadmin bind gone a
	qadmin bind gone b
	qsend gone hello
	run qadmin exchange destroy gone
	assert_success
	assert_output "destroy gone $SPOOLQ_DIR/gone -> -"
	assert_dir_not_exists "$SPOOLQ_DIR/gone"
	expect_fail 66 qsend gone again
	assert_count new a 1
	assert_count new b 1
	expect_fail 66 qadmin exchange destroy gone
	assert_output --partial 'gone: no such exchange'
	expect_fail 66 qadmin exchange destroy a
	assert_dir_exists "$SPOOLQ_DIR/a/new"
}
