#!/usr/bin/env bats
# Queues as logs (queue key archive): an ack with archive = yes renames
# the claim to archive/ID,a=k, body and attr/ID kept (qack, qrecv -A, a
# qworker job that exits 0); with archive = no it unlinks the message and
# its sidecars.  qadmin replay sends the archive again (all, --since,
# --to, -n) as new messages in ID order, with the original's key and
# attributes and the attribute original-id, and leaves the archive as it
# was.  qadmin gc trims the archive by retention (age since archiving)
# and retention_bytes (oldest archived first), and removes dedup/ markers
# older than dedup_window unless a sender holds them.  qadmin stats and
# check see an archive as neither messages nor damage.
#
# Ages are real: a file's ctime cannot be set, so the retention tests wait
# for the clock (about 2 s each).

load helpers

setup() {
	spoolq_setup
	mkq q archive=yes
	mkq plain
	Q=$SPOOLQ_DIR/q
	P=$SPOOLQ_DIR/plain
}

teardown() {
	[[ -z ${HOLDER:-} ]] || kill -9 "$HOLDER" 2>/dev/null || true
	spoolq_teardown
}

# body FILE N SEED: N bytes of binary data (every byte value), reproducible.
body() {
	perl -e 'srand($ARGV[1]); print map { chr(int(rand(256))) } 1 .. $ARGV[0]' \
	    "$2" "$3" > "$1"
}

# ctime_s PATH: the inode change time, whole seconds.
ctime_s() {
	stat -c %Z -- "$1"
}

# mtime_s PATH: the modification time, whole seconds.
mtime_s() {
	stat -c %Y -- "$1"
}

# ack_all QUEUE: claim every ready message and ack it with qack.
ack_all() {
	qrecv -n 1000 "$1" | qack -
}

# claim_of RECEIPTS ID: the receipt of message ID in a file of receipts.
claim_of() {
	grep -F "/$2," "$1" || fail "no receipt for $2 in $(cat "$1")"
}

# meta_table FILE: from `qrecv --meta` output, one line per message in
# claim order: "ORIGINAL-ID KEY NAME=VALUE;NAME=VALUE;..." of the
# attributes other than original-id, and the number of original-id lines.
meta_table() {
	awk '
	/^$/ { if (r != "") print o, k, a, n; r = o = k = a = ""; n = 0; next }
	r == "" { r = $0; next }
	/^SPOOLQ_KEY=/ { k = substr($0, 12); next }
	/^SPOOLQ_ATTR_original-id=/ { o = substr($0, 25); n++; next }
	/^SPOOLQ_ATTR_/ { a = a substr($0, 13) ";"; next }
	END { if (r != "") print o, k, a, n }' "$1"
}

# receipts_of FILE: the receipts in `qrecv --meta` output.
receipts_of() {
	awk '/^$/ { r = ""; next } r == "" { r = $0; print }' "$1"
}

# ids_of FILE: the SPOOLQ_ID lines of `qrecv --meta` output.
ids_of() {
	sed -n 's/^SPOOLQ_ID=//p' "$1"
}

# --------------------------------------------------------- archive = yes

@test "archive=yes: qack renames the claim (same inode) to archive/ID,a=1,h; body intact, attr/ID kept" {
	local id r ino side
	body "$T/in" 5000 1
	id=$(qsend -p -k route.a -H n=v -H m='x y' -f q "$T/in")
	side=$(cat "$Q/attr/$id")
	r=$(qrecv q)
	ino=$(stat -c %i "$r")
	run qack "$r"
	assert_success
	assert_equal "$(names archive q)" "$id,a=1,h"
	assert_equal "$(stat -c %i "$Q/archive/$id,a=1,h")" "$ino"
	cmp "$T/in" "$Q/archive/$id,a=1,h"
	assert_file_exists "$Q/attr/$id"
	assert_equal "$(cat "$Q/attr/$id")" "$side"
	assert_count new q 0
	assert_count cur q 0
	assert_count retry q 0
	assert_count dead q 0
}

@test "archive=yes: a plain message is archived without h and gets no sidecar; a second attempt is archived as a=2" {
	local a b r
	a=$(qsend -p q first)
	b=$(qsend -p q second)
	qack "$(qrecv q)"
	assert_equal "$(names archive q)" "$a,a=1"
	assert_file_not_exists "$Q/attr/$a"
	qack --retry --delay 0 "$(qrecv q)"
	wait_for -t 5 eval 'qrecv q > "$T/r"'
	r=$(cat "$T/r")
	[[ ${r##*/} == "$b,a=2,l="* ]] || fail "receipt $r"
	qack "$r"
	assert_same "$(printf '%s\n' "$a,a=1" "$b,a=2")" "$(names archive q)"
	assert_equal "$(cat "$Q/archive/$b,a=2")" second
}

@test "archive=yes: qrecv -A prints each body and archives it with its sidecar" {
	local a b c
	body "$T/b" 300 2
	a=$(qsend -p -H n=1 q one)
	b=$(qsend -p -f q "$T/b")
	c=$(qsend -p -k k.c q three)
	run --separate-stderr qrecv -A -0 -n 2 q
	assert_success
	assert_count archive q 2
	assert_same "$(printf '%s\n' "$a,a=1,h" "$b,a=1")" "$(names archive q)"
	cmp "$T/b" "$Q/archive/$b,a=1"
	assert_equal "$(cat "$Q/archive/$a,a=1,h")" one
	assert_file_exists "$Q/attr/$a"
	qrecv -A --raw q > "$T/out"
	assert_equal "$(cat "$T/out")" three
	assert_file_exists "$Q/archive/$c,a=1,h"
	assert_equal "$(cat "$Q/attr/$c")" "key k.c"
	assert_count new q 0
	assert_count cur q 0
}

@test "archive=yes: qworker's ack of a job that exits 0 archives the message (no w=, no l=), sidecar kept" {
	local id
	body "$T/in" 2000 3
	id=$(qsend -p -k k -H n=v -f q "$T/in")
	run qworker -q -n 1 q -- sh -c 'cat > "$0/job.out"' "$T"
	assert_success
	cmp "$T/in" "$T/job.out"
	assert_equal "$(names archive q)" "$id,a=1,h"
	cmp "$T/in" "$Q/archive/$id,a=1,h"
	assert_equal "$(cat "$Q/attr/$id")" "key k"$'\n'"attr n v"
	assert_count cur q 0
}

@test "archive=yes: a failed job is retried, not archived; its later success is archived as a=2" {
	local id
	id=$(qsend -p -H n=v q body)
	run qworker -q -n 1 q -- false
	assert_count archive q 0
	assert_count retry q 1
	qadmin -q retry-now q
	run qworker -q -n 1 q -- true
	assert_success
	assert_equal "$(names archive q)" "$id,a=2,h"
	assert_file_exists "$Q/attr/$id"
}

@test "archive=yes: qack --retry and --reject do not archive" {
	local a b
	a=$(qsend -p q a)
	b=$(qsend -p q b)
	qrecv -n 2 q > "$T/r"
	qack --retry --delay 1h "$(claim_of "$T/r" "$a")"
	qack --reject "$(claim_of "$T/r" "$b")"
	assert_count archive q 0
	[[ $(only retry q) == "$a,a=1,t="* ]] || fail "retry: $(names retry q)"
	assert_equal "$(names dead q)" "$b,a=1,r=rejected"
}

# ---------------------------------------------------------- archive = no

@test "archive=no: qack unlinks the message and removes attr/ID and the failure record; no archive/ appears" {
	local id r
	id=$(qsend -p -k k -H n=v plain body)
	run qworker -q -n 1 plain -- sh -c 'echo boom >&2; exit 1'
	assert_file_exists "$P/attr/$id"
	assert_file_exists "$P/attr/$id.failure"
	qadmin -q retry-now plain
	r=$(qrecv plain)
	qack "$r"
	assert_file_not_exists "$r"
	assert_file_not_exists "$P/attr/$id"
	assert_file_not_exists "$P/attr/$id.failure"
	assert_file_not_exists "$P/archive"
	assert_equal "$(ls -A "$P/attr")" ''
}

@test "archive=no: qrecv -A removes the message and its sidecars" {
	local a b
	a=$(qsend -p -k k -H n=v plain one)
	b=$(qsend -p -H m=w plain two)
	run qworker -q -n 1 plain -- false
	assert_file_exists "$P/attr/$a.failure"
	qadmin -q retry-now plain
	qrecv -A -n 2 plain > "$T/out"
	assert_equal "$(cat "$T/out")" $'one\ntwo'
	assert_count new plain 0
	assert_count cur plain 0
	assert_equal "$(ls -A "$P/attr")" ''
	assert_file_not_exists "$P/archive"
}

@test "archive=no: the failure record goes with the ack of a message redriven after failing (attempts reset to 0)" {
	local a b r
	mkq once max_attempts=1
	a=$(qsend -p once one)
	b=$(qsend -p once two)
	run qworker -q -n 2 once -- false
	assert_count dead once 2
	assert_file_exists "$SPOOLQ_DIR/once/attr/$a.failure"
	assert_file_exists "$SPOOLQ_DIR/once/attr/$b.failure"
	qadmin -q redrive once
	r=$(qrecv once)
	[[ ${r##*/} == "$a,a=1,l="* ]] || fail "receipt $r"
	qack "$r"
	assert_file_not_exists "$SPOOLQ_DIR/once/attr/$a.failure"
	assert_equal "$(qrecv -A once)" two
	assert_file_not_exists "$SPOOLQ_DIR/once/attr/$b.failure"
}

# ---------------------------------------------------------------- replay

@test "qadmin replay: all archived messages again, in ID order, new IDs, original key, attributes and original-id; archive unchanged" {
	local a b c ids i arch attrs n
	body "$T/a" 1000 11
	body "$T/b" 1 12
	body "$T/c" 70000 13
	a=$(qsend -p -k k.a -H n=1 -H m='x y' -f q "$T/a")
	b=$(qsend -p -f q "$T/b")
	c=$(qsend -p -k k.c -f q "$T/c")
	qrecv -n 3 q > "$T/r"
	# Archived in reverse: the archive's own order is not ID order.
	for i in "$c" "$b" "$a"; do
		qack "$(claim_of "$T/r" "$i")"
		sleep 0.02
	done
	arch=$(cd "$Q/archive" && ls -l --time-style=+%s.%N && md5sum -- *)
	attrs=$(cd "$Q/attr" && md5sum -- *)
	run --separate-stderr qadmin replay q
	assert_success
	assert_lines_eq "replay $a archive -> ready
replay $b archive -> ready
replay $c archive -> ready" "$output"
	assert_equal "$(cd "$Q/archive" && ls -l --time-style=+%s.%N && md5sum -- *)" "$arch"
	assert_count new q 3
	qrecv --meta -n 3 q > "$T/meta"
	ids=$(ids_of "$T/meta")
	for i in "$a" "$b" "$c"; do
		! grep -qxF "$i" <<<"$ids" || fail "replayed under its old ID $i"
	done
	assert_equal "$(sort <<<"$ids")" "$ids"
	assert_lines_eq "$a k.a n=1;m=x y; 1
$b   1
$c k.c  1" "$(meta_table "$T/meta")"
	mapfile -t n < <(receipts_of "$T/meta")
	cmp "$T/a" "${n[0]}"
	cmp "$T/b" "${n[1]}"
	cmp "$T/c" "${n[2]}"
	[[ ${n[1]##*/} == *",h" ]] || fail "no h on ${n[1]}"
	# The originals' sidecars are the archive's: still there, unchanged.
	assert_equal "$(cd "$Q/attr" && md5sum -- "$a" "$c")" "$attrs"
}

@test "qadmin replay: a replayed message archived and replayed again has one original-id, its latest ID" {
	local a b
	a=$(qsend -p -k k -H n=v q body)
	ack_all q
	qadmin -q replay q
	b=$(names new q)
	b=${b%%,*}
	ack_all q
	rm -- "$Q/archive/$a,a=1,h"
	qadmin -q replay q
	qrecv --meta q > "$T/meta"
	assert_equal "$(meta_table "$T/meta")" "$b k n=v; 1"
}

@test "qadmin replay --since @EPOCH: only messages whose ID was sent at or after that second" {
	local a b c since
	a=$(qsend -p q a)
	since=$(( $(now) + 1 ))
	wait_for -t 3 eval '(( $(now) >= since ))'
	b=$(qsend -p q b)
	c=$(qsend -p q c)
	ack_all q
	run --separate-stderr qadmin replay --since "@$since" q
	assert_success
	assert_lines_eq "replay $b archive -> ready
replay $c archive -> ready" "$output"
	assert_equal "$(bodies new q)" $'b\nc'
	qrecv -n 2 q | qack -
	# The same second as local time, and one that takes in a's second.
	run --separate-stderr qadmin -n replay --since "$(date -d "@$since" +%Y-%m-%dT%H:%M:%S)" q
	assert_success
	assert_equal "$(grep -c '^would replay' <<<"$output")" 4
	! grep -qF "$a" <<<"$output" || fail "a replayed: $output"
	run --separate-stderr qadmin -n replay --since "@${a%%.*}" q
	assert_success
	assert_line "would replay $a archive -> ready"
	run --separate-stderr qadmin -n replay --since "@$(( since + 3600 ))" q
	assert_success
	assert_output ''
}

@test "qadmin replay --to other: the messages go to the other queue; q's states and archive stay" {
	local a b arch
	a=$(qsend -p -k k.a q a)
	b=$(qsend -p -H n=v q b)
	ack_all q
	arch=$(names archive q)
	run --separate-stderr qadmin replay --to plain q
	assert_success
	assert_equal "${#lines[@]}" 2
	assert_count new q 0
	assert_equal "$(names archive q)" "$arch"
	assert_count new plain 2
	assert_equal "$(bodies new plain)" $'a\nb'
	qrecv --meta -n 2 plain > "$T/meta"
	assert_lines_eq "$a k.a  1
$b  n=v; 1" "$(meta_table "$T/meta")"
	# plain has archive = no: acking the replayed messages removes them.
	receipts_of "$T/meta" | qack -
	assert_count cur plain 0
	assert_file_not_exists "$P/archive"
	assert_equal "$(ls -A "$P/attr")" ''
}

@test "qadmin replay --to other: each line names the target queue (archive -> other/ready), as move and redrive --to do" {
	local a
	a=$(qsend -p q a)
	ack_all q
	run --separate-stderr qadmin replay --to plain q
	assert_success
	assert_output "replay $a archive -> plain/ready"
}

@test "qadmin -n replay: prints 'would replay' lines in ID order and changes nothing; -q prints nothing" {
	local a b before
	a=$(qsend -p -k k q a)
	b=$(qsend -p q b)
	qrecv -n 2 q > "$T/r"
	qack "$(claim_of "$T/r" "$b")"
	qack "$(claim_of "$T/r" "$a")"
	before=$(snapshot "$SPOOLQ_DIR")
	run --separate-stderr qadmin -n replay q
	assert_success
	assert_lines_eq "would replay $a archive -> ready
would replay $b archive -> ready" "$output"
	run --separate-stderr qadmin -n replay --to plain q
	assert_success
	assert_equal "${#lines[@]}" 2
	run --separate-stderr qadmin --dry-run replay --since "@${a%%.*}" q
	assert_success
	assert_equal "${#lines[@]}" 2
	assert_unchanged "$before"
	run --separate-stderr qadmin -q replay q
	assert_success
	assert_output ''
	assert_count new q 2
}

@test "qadmin replay: no archive (archive=no, or nothing acked yet) replays nothing and exits 0" {
	qsend plain x
	ack_all plain
	run --separate-stderr qadmin replay plain
	assert_success
	assert_output ''
	run --separate-stderr qadmin -v replay q
	assert_success
	assert_output ''
	assert_count new q 0
}

@test "qadmin replay: usage errors exit 64, a missing queue or --to queue 66; nothing is sent" {
	qsend q x
	ack_all q
	expect_fail 64 qadmin replay
	assert_usage qadmin
	expect_fail 64 qadmin replay q plain
	expect_fail 64 qadmin replay --bogus q
	expect_fail 64 qadmin replay --since yesterday q
	expect_fail 64 qadmin replay --since q
	expect_fail 66 qadmin replay nosuch
	expect_fail 66 qadmin replay --to nosuch q
	assert_count new q 0
	assert_count new plain 0
}

# -------------------------------------------------------------------- gc

@test "qadmin gc: retention=4s removes what was archived over 4s ago, with its sidecar; the newer stays; no retention keeps all" {
	local a b c0 before
	a=$(qsend -p -k k.a q a)
	b=$(qsend -p -k k.b q b)
	qrecv -n 2 q > "$T/r"
	qack "$(claim_of "$T/r" "$a")"
	# The age is the time since archiving (ctime, which cannot be set):
	# a retention far above any scheduling delay keeps the newer one
	# safely younger while the gc runs.
	c0=$(ctime_s "$Q/archive/$a,a=1,h")
	wait_for -t 15 eval '(( $(now) > c0 + 4 ))'
	# Without retention the archive is kept, whatever its age.
	run --separate-stderr qadmin gc q
	assert_success
	assert_output ''
	assert_file_exists "$Q/archive/$a,a=1,h"
	qadmin -q config q set retention=4s
	qack "$(claim_of "$T/r" "$b")"
	before=$(snapshot "$SPOOLQ_DIR")
	run --separate-stderr qadmin -n gc q
	assert_success
	assert_output "would gc archive/$a,a=1,h removed (older than retention)"
	assert_unchanged "$before"
	run --separate-stderr qadmin gc q
	assert_success
	assert_output "gc archive/$a,a=1,h removed (older than retention)"
	assert_equal "$(names archive q)" "$b,a=1,h"
	assert_file_not_exists "$Q/attr/$a"
	assert_file_exists "$Q/attr/$b"
	# Replay after the trim: only what is left.
	run --separate-stderr qadmin replay q
	assert_output "replay $b archive -> ready"
}

@test "qadmin gc: retention and retention_bytes set but nothing archived (no archive/, or an empty one): exit 0, nothing said" {
	mkq r archive=yes retention=1s retention_bytes=1k
	run --separate-stderr qadmin gc r
	assert_success
	assert_output ''
	mkdir "$SPOOLQ_DIR/r/archive"
	run --separate-stderr qadmin gc r
	assert_success
	assert_output ''
	assert_dir_exists "$SPOOLQ_DIR/r/archive"
}

@test "qadmin gc: a trimmed archived message leaves no failure record behind" {
	local id c0
	mkq r archive=yes retention=1s
	id=$(qsend -p r body)
	run qworker -q -n 1 r -- false
	qadmin -q retry-now r
	run qworker -q -n 1 r -- true
	assert_equal "$(names archive r)" "$id,a=2"
	c0=$(ctime_s "$SPOOLQ_DIR/r/archive/$id,a=2")
	wait_for -t 5 eval '(( $(now) > c0 + 1 ))'
	run --separate-stderr qadmin gc r
	assert_success
	assert_line "gc archive/$id,a=2 removed (older than retention)"
	assert_count archive r 0
	assert_equal "$(ls -A "$SPOOLQ_DIR/r/attr")" ''
}

@test "qadmin gc: retention_bytes keeps the most recently archived within the bound, oldest archived go first" {
	local -a id
	local i x
	x=$(printf '%0100d' 0)
	for i in 0 1 2 3 4; do
		id[i]=$(qsend -p q "$x")
	done
	qrecv -n 5 q > "$T/r"
	# Archived in the order 2 0 3 4 1, apart enough for distinct ctimes.
	for i in 2 0 3 4 1; do
		qack "$(claim_of "$T/r" "${id[i]}")"
		sleep 0.05
	done
	qadmin -q config q set retention_bytes=250
	run --separate-stderr qadmin gc q
	assert_success
	assert_lines_eq "gc archive/${id[2]},a=1 removed (over retention_bytes)
gc archive/${id[0]},a=1 removed (over retention_bytes)
gc archive/${id[3]},a=1 removed (over retention_bytes)" "$output"
	assert_same "$(printf '%s,a=1\n' "${id[4]}" "${id[1]}")" "$(names archive q)"
	# A bound met exactly is within it.
	qadmin -q config q set retention_bytes=100
	run --separate-stderr qadmin gc q
	assert_output "gc archive/${id[4]},a=1 removed (over retention_bytes)"
	run --separate-stderr qadmin gc q
	assert_output ''
	assert_equal "$(names archive q)" "${id[1]},a=1"
}

@test "qadmin gc: dedup markers older than dedup_window go, fresh ones and one a sender holds stay" {
	local n
	mkq d dedup_window=1h
	qsend --dedup-id old d a
	qsend --dedup-id held d b
	# gc goes by the marker's modification time: set it.
	touch -d '2 hours ago' "$SPOOLQ_DIR/d/dedup/old" "$SPOOLQ_DIR/d/dedup/held"
	perl -e 'use Fcntl ":flock"; open(my $f, "<", $ARGV[0]) or die "$!";
		flock($f, LOCK_EX) or die "$!"; open(my $o, ">", $ARGV[1]);
		close($o); sleep 60' "$SPOOLQ_DIR/d/dedup/held" "$T/locked" 3>&- &
	HOLDER=$!
	wait_for -t 5 test -e "$T/locked"
	qsend --dedup-id fresh d c
	run --separate-stderr qadmin gc d
	assert_success
	assert_output "gc dedup/old removed (older than dedup_window)"
	assert_file_not_exists "$SPOOLQ_DIR/d/dedup/old"
	assert_file_exists "$SPOOLQ_DIR/d/dedup/fresh"
	assert_file_exists "$SPOOLQ_DIR/d/dedup/held"
	kill "$HOLDER"
	wait "$HOLDER" || true
	HOLDER=
	run --separate-stderr qadmin gc d
	assert_line "gc dedup/held removed (older than dedup_window)"
	# The expired ID sends again; the marker is made anew.
	n=$(count new d)
	qsend --dedup-id old d again
	assert_count new d $(( n + 1 ))
	assert_file_exists "$SPOOLQ_DIR/d/dedup/old"
}

@test "qadmin gc -n: dedup markers and archive trims are only reported" {
	local m0 before
	mkq d dedup_window=1s archive=yes retention=1s
	qsend --dedup-id k d a
	ack_all d
	m0=$(mtime_s "$SPOOLQ_DIR/d/dedup/k")
	wait_for -t 5 eval '(( $(now) > m0 + 1 ))'
	before=$(snapshot "$SPOOLQ_DIR")
	run --separate-stderr qadmin -n gc d
	assert_success
	assert_line "would gc dedup/k removed (older than dedup_window)"
	assert_line --regexp '^would gc archive/.+ removed \(older than retention\)$'
	assert_unchanged "$before"
}

# --------------------------------------------------------- stats, check

@test "qadmin stats and check: archived messages are neither messages nor problems" {
	local before
	qsend -k k -H n=v q a
	qsend q b
	qsend q c
	ack_all q
	qsend q ready
	assert_count archive q 3
	run --separate-stderr qadmin stats --json q
	assert_success
	jq -e '.queues[0] | .ready.count == 1 and .inflight.count == 0 and
	    .retry.count == 0 and .dead.count == 0 and .held.count == 0 and
	    .stray == 0' <<<"$output" >/dev/null || fail "$output"
	run --separate-stderr qadmin stats --prometheus q
	assert_success
	assert_line 'spoolq_stray_entries{queue="q"} 0'
	before=$(snapshot "$SPOOLQ_DIR")
	run qadmin check q
	assert_success
	assert_output ''
	run qadmin check --repair q
	assert_success
	assert_output ''
	assert_unchanged "$before"
	run --separate-stderr qadmin gc q
	assert_success
	assert_output ''
	assert_count archive q 3
	assert_equal "$(ls -A "$Q/attr")" "$(ls -A "$Q/archive" | grep ',h$' | cut -d, -f1)"
}
