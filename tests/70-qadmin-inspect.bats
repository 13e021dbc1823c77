#!/usr/bin/env bats
# qadmin stats, ls/peek and cat: counts and bytes per state, the JSON and
# Prometheus forms (the exposition format as node_exporter's textfile
# collector reads it), atomic -o, the age histogram, listings per state,
# bodies byte for byte and --meta with failure records; none of them
# changes anything, follows a symlink or opens a FIFO.  Also: the synopsis
# of `qadmin -h` is the SYNOPSIS of qadmin(1), and usage errors exit 64.

load helpers

setup() {
	spoolq_setup
	mkq q
}

# body N CHAR: N bytes of CHAR, no newline.
body() {
	printf "%*s" "$1" "" | tr ' ' "$2"
}

# state_count QUEUE DIR / state_bytes QUEUE DIR: regular non-dot files of a
# state directory and the sum of their sizes, straight from the disk.
state_count() {
	find "$(qdir "$1")/$2" -mindepth 1 -maxdepth 1 -type f ! -name '.*' 2>/dev/null | grep -c . || true
}

state_bytes() {
	find "$(qdir "$1")/$2" -mindepth 1 -maxdepth 1 -type f ! -name '.*' -printf '%s\n' 2>/dev/null |
	    awk '{ s += $1 } END { print s + 0 }'
}

# hand_deliver QUEUE AGE [BODY] [SUFFIX]: put a message whose ID says it was
# sent AGE seconds ago into new/ by hand (tmp/ then rename); prints its ID.
hand_deliver() {
	local d id
	d=$(qdir "$1")
	id=$(printf '%010d.%09d.%d_%d_%08x.handmade' $(( $(now) - $2 )) $((RANDOM * 1000)) $$ "$RANDOM" "$RANDOM")
	printf '%s' "${3:-hand}" > "$d/tmp/$id"
	mv "$d/tmp/$id" "$d/new/$id${4:-}"
	printf '%s\n' "$id"
}

# mix: in q, six messages of 100 to 600 bytes: the first in flight, the
# second in retry (due in 1 h), the third dead (rejected), the fourth dead
# (bad-input), the fifth and sixth ready.  IDs in ID1..ID6.
mix() {
	local -a ids
	local r
	mapfile -t ids < <(qsend -p q "$(body 100 a)" "$(body 200 b)" "$(body 300 c)" \
	    "$(body 400 d)" "$(body 500 e)" "$(body 600 f)")
	(( ${#ids[@]} == 6 )) || fail "qsend -p printed ${#ids[@]} IDs"
	ID1=${ids[0]} ID2=${ids[1]} ID3=${ids[2]} ID4=${ids[3]} ID5=${ids[4]} ID6=${ids[5]}
	R1=$(qrecv q)
	[[ $(msgid "$R1") == "$ID1" ]] || fail "claimed $R1, not $ID1"
	r=$(qrecv q)
	qack --retry --delay 1h "$r"
	qack --reject "$(qrecv q)"
	qack --reject=bad-input "$(qrecv q)"
	assert_count new q 2
	assert_count cur q 1
	assert_count retry q 1
	assert_count dead q 2
}

# prom_lint FILE: FILE is in the Prometheus text exposition format: HELP
# and TYPE lines once per metric, before its samples, samples of a metric
# together, every sample line matching the pattern below, every metric
# spoolq_*, every sample with a queue label, no series twice.
prom_lint() {
	perl -e '
	my (%help, %type, %seen, %done, $cur, $err);
	sub bad { print STDERR "line $.: $_[0]: $_"; $err = 1 }
	while (<STDIN>) {
		next if /^$/;
		if (/^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S/) {
			bad("second HELP") if $help{$1}++;
			next;
		}
		if (/^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (gauge|counter|untyped)$/) {
			bad("second TYPE") if $type{$1}++;
			bad("TYPE after samples") if $done{$1};
			next;
		}
		if (/^#/) { bad("bad comment line"); next }
		unless (/^[a-z_]+(\{[^}]*\})? [0-9.e+-]+$/) {
			bad("not a sample line");
			next;
		}
		my ($name, $labels) = /^([a-z_]+)(?:\{([^}]*)\})? /;
		bad("not a spoolq_ metric") unless $name =~ /^spoolq_/;
		bad("no HELP before") unless $help{$name};
		bad("no TYPE before") unless $type{$name};
		if (!defined $cur || $cur ne $name) {
			bad("samples of $name not together") if $done{$name}++;
			$cur = $name;
		}
		my @l = (defined $labels && $labels ne "") ?
		    split(/,(?=[a-zA-Z_][a-zA-Z0-9_]*=")/, $labels) : ();
		for my $l (@l) {
			bad("bad label $l") unless
			    $l =~ /^[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"$/;
		}
		bad("no queue label") unless grep { /^queue="/ } @l;
		my $key = $name . "{" . join(",", sort @l) . "}";
		bad("series twice") if $seen{$key}++;
	}
	exit($err ? 1 : 0);
	' < "$1" || fail "not in the exposition format (see above):"$'\n'"$(cat "$1")"
	[[ ! -s $1 || $(tail -c 1 "$1" | od -An -c | tr -d ' ') == '\n' ]] ||
	    fail "$1 does not end with a newline"
}

# prom_val FILE METRIC LABELS: the value of the sample of METRIC whose
# labels are exactly LABELS (k="v",... in any order); exit 1 when none.
prom_val() {
	perl -e '
	my ($metric, $want) = @ARGV;
	my $norm = sub { join(",", sort split(/,(?=[a-zA-Z_][a-zA-Z0-9_]*=")/, $_[0] // "")) };
	$want = $norm->($want);
	while (<STDIN>) {
		next if /^#/;
		next unless /^([a-z_]+)(?:\{([^}]*)\})? (\S+)$/;
		if ($1 eq $metric && $norm->($2) eq $want) { print "$3\n"; exit 0 }
	}
	exit 1;
	' "$2" "$3" < "$1"
}

# assert_prom FILE METRIC LABELS VALUE: that sample exists and equals VALUE
# (numerically).
assert_prom() {
	local v
	v=$(prom_val "$1" "$2" "$3") || fail "no sample $2{$3} in:"$'\n'"$(cat "$1")"
	awk -v a="$v" -v b="$4" 'BEGIN { exit !(a + 0 == b + 0) }' ||
	    fail "$2{$3}: expected $4, got $v"
}

# prom_between FILE METRIC LABELS LO HI
prom_between() {
	local v
	v=$(prom_val "$1" "$2" "$3") || fail "no sample $2{$3} in:"$'\n'"$(cat "$1")"
	float_between "$v" "$4" "$5"
}

# jqq QUEUE FILTER: FILTER applied to the object of QUEUE in the stats JSON
# held in $T/stats.json.
jqq() {
	jq -e --arg q "$1" ".queues[] | select(.name == \$q) | $2" "$T/stats.json"
}

# assert_json_state QUEUE STATE DIR: count and bytes of STATE in the stats
# JSON match the disk.
assert_json_state() {
	local c b
	c=$(jqq "$1" ".$2.count") || fail "no .$2.count for $1 in: $(cat "$T/stats.json")"
	b=$(jqq "$1" ".$2.bytes") || fail "no .$2.bytes for $1 in: $(cat "$T/stats.json")"
	assert_equal "$c" "$(state_count "$1" "$3")"
	assert_equal "$b" "$(state_bytes "$1" "$3")"
}

# ls_lines: the message lines of `qadmin ls` in $output (a header line
# starting with STATE, if any, left out).
ls_lines() {
	grep -Ev '^(STATE|state)([[:space:]]|$)' <<<"$output" || true
}

# ls_line STATE ID: the one line of $output for that message.
ls_line() {
	local l n
	l=$(ls_lines | awk -v s="$1" -v id="$2" '$1 == s && $2 == id')
	n=$(grep -c . <<<"$l") || true
	[[ $n == 1 ]] || fail "expected one ls line '$1 $2 ...', found $n in:"$'\n'"$output"
	printf '%s\n' "$l"
}

# ls_json: every message object of `qadmin ls --json` output in $output, one
# compact object per line (a document, an array or JSON lines).
ls_json() {
	jq -c '.. | objects | select(has("id") and has("state"))' <<<"$output" ||
	    fail "ls --json output is not JSON: $output"
}

# meta_val KEY: the value of the first "KEY: value" (or KEY=value) line of
# $output.
meta_val() {
	sed -nE "s/^$1[[:space:]]*[:=][[:space:]]*//p" <<<"$output" | head -n 1
}

# ------------------------------------------------------------------ usage

@test "qadmin -h: the synopsis is the SYNOPSIS of qadmin(1)" {
	command -v mandoc >/dev/null || skip "mandoc is not installed"
	local man=$BATS_TEST_DIRNAME/../man/qadmin.1 want got
	[[ -f $man ]] || skip "no man/qadmin.1 next to the tests"
	run --separate-stderr qadmin -h
	assert_success
	# One line per command: continuation lines joined, "usage:" dropped;
	# the option lines after the blank line are not the synopsis.
	got=$(sed -n '/^$/q; p' <<<"$output" |
	    sed -E 's/^usage://; s/^[[:space:]]+//' |
	    awk '/^qadmin / { if (l != "") print l; l = $0; next } { l = l " " $0 } END { print l }' |
	    tr -s ' ')
	want=$(mandoc -Tascii -O width=1000 "$man" | col -b |
	    sed -n '/^SYNOPSIS/,/^DESCRIPTION/p' | sed '1d;$d' |
	    awk '/^ *qadmin / { if (l != "") print l; l = $0; next } /^ *$/ { next } { l = l " " $0 } END { print l }' |
	    sed -E 's/^[[:space:]]+//' | tr -s ' ')
	assert_lines_eq "$want" "$got"
}

@test "qadmin: unknown commands and options of stats, ls, peek and cat exit 64 with the synopsis" {
	local -a c
	local i
	local cmds=(
		"frobnicate"
		"stats --bogus"
		"stats -x q"
		"stats --json --prometheus"
		"ls --bogus q"
		"ls"
		"ls q nostate"
		"ls -n many q"
		"peek --bogus q"
		"cat --bogus q x"
		"cat q"
		"cat"
		"cat q id extra"
	)
	for i in "${cmds[@]}"; do
		read -ra c <<<"$i"
		expect_fail 64 qadmin "${c[@]}"
		assert_usage qadmin
	done
}

@test "qadmin stats, ls, cat: a missing queue exits 66" {
	expect_fail 66 qadmin stats nope
	assert_output --partial nope
	expect_fail 66 qadmin ls nope
	assert_output --partial nope
	expect_fail 66 qadmin cat nope 1764425000.123456789.1_0_00000000.x
	assert_output --partial nope
}

# ------------------------------------------------------------------ stats

@test "qadmin stats --json: count and bytes per state after sends, claims, retries and rejects" {
	mix
	run --separate-stderr qadmin stats --json q
	assert_success
	printf '%s\n' "$output" > "$T/stats.json"
	jq -e . "$T/stats.json" >/dev/null || fail "not JSON: $output"
	assert_equal "$(jq '.queues | length' "$T/stats.json")" 1
	assert_equal "$(jqq q '.name')" '"q"'
	assert_json_state q ready new
	assert_json_state q inflight cur
	assert_json_state q retry retry
	assert_json_state q dead dead
	# The values themselves: 500+600 ready, 100 in flight, 200 waiting, 300+400 dead.
	assert_equal "$(jqq q '.ready.bytes')" 1100
	assert_equal "$(jqq q '.inflight.bytes')" 100
	assert_equal "$(jqq q '.retry.bytes')" 200
	assert_equal "$(jqq q '.dead.count')" 2
	assert_equal "$(jqq q '.dead.bytes')" 700
	# Nothing held: held is 0, present or not.
	assert_equal "$(jq --arg q q '.queues[] | select(.name == $q) | .held.count // 0' "$T/stats.json")" 0
}

@test "qadmin stats --json: every queue when none is named, each as named" {
	mix
	mkq other
	qsend other x yz
	mkq empty
	run --separate-stderr qadmin stats --json
	assert_success
	printf '%s\n' "$output" > "$T/stats.json"
	assert_equal "$(jq -r '[.queues[].name] | sort | join(" ")' "$T/stats.json")" "empty other q"
	assert_json_state other ready new
	assert_equal "$(jqq other '.ready.bytes')" 3
	assert_equal "$(jqq empty '.ready.count')" 0
	assert_equal "$(jqq empty '.dead.bytes')" 0
	assert_json_state q dead dead
	run --separate-stderr qadmin stats --json other
	assert_success
	printf '%s\n' "$output" > "$T/stats.json"
	assert_equal "$(jq -r '[.queues[].name] | join(" ")' "$T/stats.json")" "other"
	# A queue given as a path.
	run --separate-stderr qadmin stats --json "$SPOOLQ_DIR/other"
	assert_success
	printf '%s\n' "$output" > "$T/stats.json"
	assert_equal "$(jq '.queues | length' "$T/stats.json")" 1
	assert_equal "$(jq '.queues[0].ready.count' "$T/stats.json")" 2
}

@test "qadmin stats: held messages and a held queue are counted" {
	qsend q one twotwo three
	mkdir -p "$SPOOLQ_DIR/q/hold"
	local n
	n=$(names new q | head -n 1)
	mv "$SPOOLQ_DIR/q/new/$n" "$SPOOLQ_DIR/q/hold/$n"
	run --separate-stderr qadmin stats --json q
	assert_success
	printf '%s\n' "$output" > "$T/stats.json"
	assert_json_state q held hold
	assert_json_state q ready new
	assert_equal "$(jqq q '.held.count')" 1
	run --separate-stderr qadmin stats --prometheus q
	assert_success
	printf '%s\n' "$output" > "$T/p"
	prom_lint "$T/p"
	assert_prom "$T/p" spoolq_messages 'queue="q",state="held"' 1
	assert_prom "$T/p" spoolq_messages 'queue="q",state="ready"' 2
}

@test "qadmin stats: the default table names each queue and its states" {
	mix
	mkq other
	run --separate-stderr qadmin stats
	assert_success
	assert_output --partial q
	assert_output --partial other
	local s
	for s in ready inflight retry dead; do
		assert_output --partial "$s"
	done
	[[ -z $stderr ]] || fail "stderr: $stderr"
}

@test "qadmin stats --prometheus: the exposition format, metrics spoolq_* with a queue label" {
	mix
	mkq other
	qsend other abc
	run --separate-stderr qadmin stats --prometheus
	assert_success
	printf '%s\n' "$output" > "$T/p"
	prom_lint "$T/p"
	local m
	for m in spoolq_messages spoolq_bytes spoolq_oldest_ready_age_seconds \
	    spoolq_dead_letters spoolq_dead_lettered_last_hour \
	    spoolq_dead_lettered_last_day spoolq_attempts spoolq_workers; do
		grep -qE "^# HELP $m " "$T/p" || fail "no HELP for $m"
		grep -qE "^# TYPE $m gauge$" "$T/p" || fail "no 'TYPE $m gauge'"
		grep -qE "^$m\{" "$T/p" || fail "no sample of $m"
	done
	local st dir
	for st in ready:new inflight:cur retry:retry dead:dead; do
		dir=${st#*:} st=${st%%:*}
		assert_prom "$T/p" spoolq_messages "queue=\"q\",state=\"$st\"" "$(state_count q "$dir")"
		assert_prom "$T/p" spoolq_bytes "queue=\"q\",state=\"$st\"" "$(state_bytes q "$dir")"
	done
	assert_prom "$T/p" spoolq_messages 'queue="other",state="ready"' 1
	assert_prom "$T/p" spoolq_bytes 'queue="other",state="ready"' 3
	assert_prom "$T/p" spoolq_messages 'queue="other",state="dead"' 0
	assert_prom "$T/p" spoolq_dead_letters 'queue="q",reason="rejected"' 1
	assert_prom "$T/p" spoolq_dead_letters 'queue="q",reason="bad-input"' 1
	assert_prom "$T/p" spoolq_dead_lettered_last_hour 'queue="q"' 2
	assert_prom "$T/p" spoolq_dead_lettered_last_day 'queue="q"' 2
	assert_prom "$T/p" spoolq_dead_lettered_last_hour 'queue="other"' 0
	# Attempts: two ready at 0, the four others at 1.
	assert_prom "$T/p" spoolq_attempts 'queue="q",attempts="0"' 2
	assert_prom "$T/p" spoolq_attempts 'queue="q",attempts="1"' 4
	assert_prom "$T/p" spoolq_workers 'queue="q"' 0
	# Only the named queue.
	run --separate-stderr qadmin stats --prometheus other
	assert_success
	printf '%s\n' "$output" > "$T/p"
	prom_lint "$T/p"
	! grep -q 'queue="q"' "$T/p" || fail "queue q reported though not named"
}

@test "qadmin stats --prometheus and --json: a queue path with a quote, a backslash and a newline is escaped" {
	local p=$T/we\"ird\\dir$'\n'line/q
	mkdir -p "${p%/q}"
	qadmin create "$p" >/dev/null
	qsend "$p" x
	run --separate-stderr qadmin stats --prometheus "$p"
	assert_success
	printf '%s\n' "$output" > "$T/p"
	prom_lint "$T/p"
	assert_prom "$T/p" spoolq_messages "queue=\"$(sed 's/[\\"]/\\&/g' <<<"${p%%$'\n'*}")\\n${p#*$'\n'}\",state=\"ready\"" 1
	run --separate-stderr qadmin stats --json "$p"
	assert_success
	assert_equal "$(jq -r '.queues[0].name' <<<"$output")" "$p"
}

@test "qadmin stats --prometheus: oldest ready age, next retry, earliest lease, 5+ attempts" {
	local a b c d ra rb t0
	t0=$(now)
	mkq t
	a=$(qsend -p t a) b=$(qsend -p t b) c=$(qsend -p t c) d=$(qsend -p t d)
	ra=$(qrecv --lease 2h t)
	rb=$(qrecv --lease 10m t)
	qack --retry --delay 2h "$(qrecv t)"
	qack --retry --delay 1h "$(qrecv t)"
	hand_deliver t 900 ready-old >/dev/null
	hand_deliver t 30 ready-new ',a=9' >/dev/null
	run --separate-stderr qadmin stats --prometheus t
	assert_success
	printf '%s\n' "$output" > "$T/p"
	prom_lint "$T/p"
	prom_between "$T/p" spoolq_oldest_ready_age_seconds 'queue="t"' 899 $(( $(now) - t0 + 905 ))
	assert_prom "$T/p" spoolq_earliest_lease_deadline_timestamp_seconds 'queue="t"' "$(field "$rb" l)"
	local due
	due=$(names retry t | while read -r n; do field "$n" t; done | sort -n | head -n 1)
	assert_prom "$T/p" spoolq_next_retry_due_timestamp_seconds 'queue="t"' "$due"
	# Attempts: ready-old 0, ready-new 9 (5+), and four at 1.
	assert_prom "$T/p" spoolq_attempts 'queue="t",attempts="0"' 1
	assert_prom "$T/p" spoolq_attempts 'queue="t",attempts="1"' 4
	assert_prom "$T/p" spoolq_attempts 'queue="t",attempts="5+"' 1
}

@test "qadmin stats: a live qworker is counted as a worker" {
	mkq w
	qworker w -- true >/dev/null 2>"$T/wlog" 3>&- &
	local pid=$!
	wait_for compgen -G "$SPOOLQ_DIR/w/run/worker.*"
	run --separate-stderr qadmin stats --prometheus w q
	assert_success
	printf '%s\n' "$output" > "$T/p"
	assert_prom "$T/p" spoolq_workers 'queue="w"' 1
	assert_prom "$T/p" spoolq_workers 'queue="q"' 0
	run --separate-stderr qadmin stats --json w
	printf '%s\n' "$output" > "$T/stats.json"
	kill -TERM "$pid"
	wait "$pid" || true
	jq -e '.queues[0] | .. | numbers' "$T/stats.json" >/dev/null || fail "bad JSON"
	# A dead worker's lock file does not count.
	: > "$SPOOLQ_DIR/w/run/worker.deadbeef0000"
	run --separate-stderr qadmin stats --prometheus w
	assert_success
	printf '%s\n' "$output" > "$T/p"
	assert_prom "$T/p" spoolq_workers 'queue="w"' 0
}

@test "qadmin stats --prometheus -o FILE: written whole by a rename, no temporary left" {
	mix
	mkdir "$T/textfile"
	local f=$T/textfile/spoolq.prom ino1 ino2
	printf 'stale\n' > "$f"
	ino1=$(stat -c %i "$f")
	run --separate-stderr qadmin stats --prometheus -o "$f"
	assert_success
	prom_lint "$f"
	assert_prom "$f" spoolq_messages 'queue="q",state="ready"' 2
	ino2=$(stat -c %i "$f")
	[[ $ino1 != "$ino2" ]] || fail "$f was rewritten in place, not replaced by a rename"
	assert_equal "$(ls -A "$T/textfile")" spoolq.prom
	# Options after the queue operand work too (getopt permutes).
	run --separate-stderr qadmin stats q --prometheus -o "$f"
	assert_success
	prom_lint "$f"
	assert_equal "$(ls -A "$T/textfile")" spoolq.prom
}

@test "qadmin stats -o: a reader never sees a partial file" {
	mix
	local i f=$T/spoolq.prom n want
	qadmin stats --prometheus -o "$f"
	want=$(wc -l < "$f")
	(( want > 10 )) || fail "only $want lines: $(cat "$f")"
	(for i in $(seq 1 60); do qadmin stats --prometheus -o "$f" || exit 1; done) 3>&- &
	local pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		n=$(wc -l < "$f")
		[[ $n == "$want" ]] || fail "read $n lines, not $want"
		[[ $(tail -c 1 "$f" | od -An -c | tr -d ' ') == '\n' ]] || fail "read a file cut short"
	done
	wait "$pid" || fail "qadmin stats -o failed"
	assert_equal "$(ls -A "$T" | grep -c 'spoolq\.prom')" 1
}

@test "qadmin stats -o: an unwritable place fails cleanly and leaves nothing" {
	mix
	expect_fail 73 qadmin stats --prometheus -o "$T/no/such/dir/spoolq.prom"
	# The directory is named with the reason, not the temporary file.
	assert_output "qadmin: stats: $T/no/such/dir: No such file or directory"
	assert_dir_not_exists "$T/no"
	touch "$T/plain"
	expect_fail 73 qadmin stats --prometheus -o "$T/plain/spoolq.prom"
	assert_output "qadmin: stats: $T/plain: Not a directory"
	mkdir "$T/ro"
	chmod 555 "$T/ro"
	if [[ $(id -u) != 0 ]]; then
		expect_fail 73 qadmin stats --prometheus -o "$T/ro/spoolq.prom"
		assert_output "qadmin: stats: $T/ro: Permission denied"
	fi
	assert_equal "$(ls -A "$T/ro")" ""
}

@test "qadmin stats --age: ready messages per age bucket, qshape style" {
	local i
	for i in 1 2; do hand_deliver q 60 >/dev/null; done
	hand_deliver q 420 >/dev/null
	for i in 1 2 3; do hand_deliver q 900 >/dev/null; done
	hand_deliver q 10800 >/dev/null
	# Not ready: not counted.
	qack --retry --delay 1h "$(qrecv q)"
	run --separate-stderr qadmin stats --age q
	assert_success
	[[ $output =~ 0-5m.*5-10m.*10-20m.*20-40m.*40-80m.*80-160m.*160m\+ ]] ||
	    fail "no header with the buckets 0-5m ... 160m+ in: $output"
	local row
	row=$(awk '$1 == "q"' <<<"$output")
	[[ -n $row ]] || fail "no row for queue q in: $output"
	# 7 ready... minus the one claimed above: the oldest (3 h) went to retry.
	assert_equal "$(awk '{ for (i = NF - 6; i <= NF; i++) printf "%s%s", $i, i < NF ? " " : "\n" }' <<<"$row")" \
	    "2 1 3 0 0 0 0"
	assert_equal "$(awk '{ print $(NF - 7) }' <<<"$row")" 6
}

@test "qadmin stats and ls: a symlink and a FIFO in state directories are neither followed nor opened" {
	qsend q small
	head -c 1000000 /dev/zero > "$T/big"
	ln -s "$T/big" "$SPOOLQ_DIR/q/new/1764425000.000000001.1_0_00000000.link"
	mkfifo "$SPOOLQ_DIR/q/cur/1764425000.000000002.1_0_00000000.fifo,a=1,l=9999999999"
	run --separate-stderr timeout 10 qadmin stats --json q
	(( status != 124 )) || fail "qadmin stats hung on a FIFO"
	refute_crash
	assert_success
	printf '%s\n' "$output" > "$T/stats.json"
	local b
	b=$(jqq q '.ready.bytes')
	(( b < 1000000 )) || fail "the symlink was followed: ready bytes $b"
	run --separate-stderr timeout 10 qadmin stats --prometheus q
	(( status != 124 )) || fail "qadmin stats --prometheus hung on a FIFO"
	assert_success
	run --separate-stderr timeout 10 qadmin ls q
	(( status != 124 )) || fail "qadmin ls hung on a FIFO"
	refute_crash
	run --separate-stderr timeout 10 qadmin ls --json q
	(( status != 124 )) || fail "qadmin ls --json hung on a FIFO"
	refute_crash
	assert_file_exists "$T/big"
}

@test "qadmin stats: a queue with a bad queue.conf is reported on stderr, the others still" {
	mkq good
	qsend good x
	mkq bad
	printf '[queue]\nlease = 5 minutes\n' > "$SPOOLQ_DIR/bad/queue.conf"
	run --separate-stderr qadmin stats --json
	refute_crash
	(( status != 0 )) || fail "exit 0 although queue bad could not be read"
	[[ $stderr == *bad/queue.conf:2:*lease* ]] || fail "stderr does not name the error: $stderr"
	printf '%s\n' "$output" > "$T/stats.json"
	assert_equal "$(jqq good '.ready.count')" 1
	# The textfile is still written, with the readable queues.
	run --separate-stderr qadmin stats --prometheus -o "$T/spoolq.prom"
	refute_crash
	prom_lint "$T/spoolq.prom"
	assert_prom "$T/spoolq.prom" spoolq_messages 'queue="good",state="ready"' 1
	[[ ! -e $T/spoolq.prom.tmp ]] || fail "spoolq.prom.tmp left behind"
}

@test "qadmin stats: no queues at all" {
	rm -rf "$SPOOLQ_DIR"
	mkdir "$SPOOLQ_DIR"
	run --separate-stderr qadmin stats --json
	assert_success
	assert_equal "$(jq -c '.queues' <<<"$output")" '[]'
	run --separate-stderr qadmin stats --prometheus
	assert_success
	printf '%s\n' "$output" > "$T/p"
	prom_lint "$T/p"
}

@test "qadmin stats and ls: memory does not grow with the queue" {
	[[ -x /usr/bin/time ]] || skip "no /usr/bin/time"
	mkq small durability=none
	mkq big durability=none
	seq 1 100 | qsend -l small
	seq 1 100000 | qsend -l big
	local s b c
	for c in "stats --json" "stats --prometheus" "ls" "ls --json"; do
		/usr/bin/time -f %M -o "$T/rss.s" qadmin $c small >/dev/null
		/usr/bin/time -f %M -o "$T/rss.b" qadmin $c big >/dev/null
		s=$(tail -n 1 "$T/rss.s") b=$(tail -n 1 "$T/rss.b")
		(( b - s < 3072 )) || fail "qadmin $c: max RSS ${s} KB at 100 messages, ${b} KB at 100000"
	done
	run --separate-stderr qadmin stats --json big
	printf '%s\n' "$output" > "$T/stats.json"
	assert_equal "$(jqq big '.ready.count')" 100000
}

@test "qadmin stats, ls, cat change nothing" {
	mix
	local before
	before=$(snapshot "$SPOOLQ_DIR")
	qadmin stats >/dev/null
	qadmin stats --json >/dev/null
	qadmin stats --prometheus >/dev/null
	qadmin stats --age >/dev/null
	qadmin ls q >/dev/null
	qadmin ls --json q >/dev/null
	qadmin cat q "$ID1" >/dev/null
	qadmin cat --meta q "$ID3" >/dev/null
	assert_unchanged "$before"
}

# --------------------------------------------------------------------- ls

@test "qadmin ls: one line per message: STATE ID ATTEMPTS AGE SIZE INFO" {
	mix
	run --separate-stderr qadmin ls q
	assert_success
	assert_equal "$(ls_lines | grep -c .)" 6
	local l
	l=$(ls_line ready "$ID5")
	assert_equal "$(awk '{ print $3, $5, $6, NF }' <<<"$l")" "0 500 - 6"
	[[ -n $(awk '{ print $4 }' <<<"$l") ]] || fail "no AGE in: $l"
	l=$(ls_line ready "$ID6")
	assert_equal "$(awk '{ print $3, $5, $6 }' <<<"$l")" "0 600 -"
	l=$(ls_line inflight "$ID1")
	assert_equal "$(awk '{ print $3, $5 }' <<<"$l")" "1 100"
	[[ $(awk '{ print $6 }' <<<"$l") != - ]] || fail "no lease deadline in: $l"
	l=$(ls_line retry "$ID2")
	assert_equal "$(awk '{ print $3, $5 }' <<<"$l")" "1 200"
	[[ $(awk '{ print $6 }' <<<"$l") != - ]] || fail "no due time in: $l"
	l=$(ls_line dead "$ID3")
	assert_equal "$(awk '{ print $3, $5, $6, NF }' <<<"$l")" "1 300 rejected 6"
	l=$(ls_line dead "$ID4")
	assert_equal "$(awk '{ print $3, $5, $6 }' <<<"$l")" "1 400 bad-input"
}

@test "qadmin ls: the worker token of a qworker claim is shown" {
	qsend q x
	local r
	r=$(qrecv q)
	mv "$r" "$r,w=Tok3nAbc9xyz"
	run --separate-stderr qadmin ls q inflight
	assert_success
	assert_output --partial Tok3nAbc9xyz
	assert_output --partial "$(field "$r" l)"
}

@test "qadmin ls STATE...: only those states; directory names work too" {
	mix
	run --separate-stderr qadmin ls q dead
	assert_success
	assert_equal "$(ls_lines | awk '{ print $1 }' | sort | uniq -c | awk '{ print $2 ":" $1 }')" "dead:2"
	run --separate-stderr qadmin ls q ready retry
	assert_success
	assert_equal "$(ls_lines | awk '{ print $1 }' | sort | uniq -c | awk '{ print $2 ":" $1 }' | tr '\n' ' ')" "ready:2 retry:1 "
	run --separate-stderr qadmin ls q cur new
	assert_success
	assert_equal "$(ls_lines | awk '{ print $1 }' | sort | uniq -c | awk '{ print $2 ":" $1 }' | tr '\n' ' ')" "inflight:1 ready:2 "
	run --separate-stderr qadmin ls q held
	assert_success
	assert_equal "$(ls_lines | grep -c .)" 0
}

@test "qadmin ls: held messages (hold/) are listed as held" {
	local id
	id=$(qsend -p q parked)
	mkdir -p "$SPOOLQ_DIR/q/hold"
	mv "$SPOOLQ_DIR/q/new/$id" "$SPOOLQ_DIR/q/hold/$id"
	run --separate-stderr qadmin ls q
	assert_success
	ls_line held "$id" >/dev/null
	assert_equal "$(ls_lines | grep -c .)" 1
}

@test "qadmin ls -n N: at most N lines per state" {
	seq 1 10 | qsend -l q
	local i
	for i in 1 2 3 4; do qack --reject "$(qrecv q)"; done
	run --separate-stderr qadmin ls -n 3 q
	assert_success
	assert_equal "$(ls_lines | awk '$1 == "ready"' | grep -c .)" 3
	assert_equal "$(ls_lines | awk '$1 == "dead"' | grep -c .)" 3
	run --separate-stderr qadmin ls -n 1 q dead
	assert_success
	assert_equal "$(ls_lines | grep -c .)" 1
	run --separate-stderr qadmin ls -n 100 q
	assert_success
	assert_equal "$(ls_lines | grep -c .)" 10
	run --separate-stderr qadmin peek -n 2 q ready
	assert_success
	assert_equal "$(ls_lines | grep -c .)" 2
}

@test "qadmin ls --json: one object per message with state, id, attempts, size" {
	mix
	run --separate-stderr qadmin ls --json q
	assert_success
	local objs
	objs=$(ls_json)
	assert_equal "$(grep -c . <<<"$objs")" 6
	assert_same "$(printf '%s\n' "ready $ID5 0 500" "ready $ID6 0 600" "inflight $ID1 1 100" \
	    "retry $ID2 1 200" "dead $ID3 1 300" "dead $ID4 1 400")" \
	    "$(jq -r '"\(.state) \(.id) \(.attempts) \(.size)"' <<<"$objs")"
	# Numbers are numbers.
	jq -e 'select((.attempts | type) != "number" or (.size | type) != "number")' <<<"$objs" >/dev/null &&
	    fail "attempts or size not a number: $objs"
	run --separate-stderr qadmin ls --json q dead
	assert_success
	assert_equal "$(ls_json | jq -r .state | sort -u)" dead
	run --separate-stderr qadmin ls --json -n 1 q
	assert_success
	assert_equal "$(ls_json | grep -c .)" 4
	# An empty queue is valid JSON too.
	mkq e
	run --separate-stderr qadmin ls --json e
	assert_success
	jq . <<<"$output" >/dev/null || fail "not JSON: $output"
	assert_equal "$(ls_json | grep -c .)" 0
}

@test "qadmin peek is ls" {
	mix
	run --separate-stderr qadmin ls q
	local a=$output
	run --separate-stderr qadmin peek q
	assert_success
	assert_same "$(awk '{ $4 = ""; print }' <<<"$a")" "$(awk '{ $4 = ""; print }' <<<"$output")"
}

# -------------------------------------------------------------------- cat

@test "qadmin cat: the body byte for byte (binary, NULs) in every state" {
	local s id r
	for s in inflight retry dead held ready; do
		{ head -c 70000 /dev/urandom; printf '\0\0%s\n\0' "$s"; } > "$T/body.$s"
	done
	id=$(qsend -p -f q "$T/body.inflight") && ids_inflight=$id
	qrecv q >/dev/null
	ids_retry=$(qsend -p -f q "$T/body.retry")
	qack --retry --delay 1h "$(qrecv q)"
	ids_dead=$(qsend -p -f q "$T/body.dead")
	qack --reject "$(qrecv q)"
	ids_held=$(qsend -p -f q "$T/body.held")
	mkdir -p "$SPOOLQ_DIR/q/hold"
	mv "$SPOOLQ_DIR/q/new/$ids_held" "$SPOOLQ_DIR/q/hold/$ids_held"
	ids_ready=$(qsend -p -f q "$T/body.ready")
	for s in new cur retry dead hold; do assert_count "$s" q 1; done
	for s in inflight retry dead held ready; do
		id=$(eval echo "\$ids_$s")
		qadmin cat q "$id" > "$T/got.$s" || fail "qadmin cat q $id ($s) failed"
		cmp "$T/body.$s" "$T/got.$s" || fail "the body of the $s message differs"
	done
}

@test "qadmin cat: a large body, and an empty one" {
	head -c 5000000 /dev/urandom > "$T/big"
	local id
	id=$(qsend -p -f q "$T/big")
	qadmin cat q "$id" > "$T/got"
	cmp "$T/big" "$T/got"
	: > "$T/empty"
	id=$(qsend -p -f q "$T/empty")
	qadmin cat q "$id" > "$T/got"
	[[ ! -s $T/got ]] || fail "empty body printed as $(od -c "$T/got" | head -n 2)"
}

@test "qadmin cat: an unknown ID exits 66; a path or a full name is not an ID" {
	local id r
	id=$(qsend -p q x)
	expect_fail 66 qadmin cat q 1764425000.123456789.1_0_00000000.nosuch
	assert_output --regexp '^qadmin: '
	expect_fail '64|65|66' qadmin cat q "new/$id"
	expect_fail '64|65|66' qadmin cat q "$SPOOLQ_DIR/q/new/$id"
	r=$(qrecv q)
	expect_fail '64|65|66' qadmin cat q "${r##*/}"
	run --separate-stderr qadmin cat q "$id"
	assert_success
	assert_output x
}

@test "qadmin cat --meta: state, name, id, attempts, size, sent and fields" {
	mix
	local sent
	sent=${ID5%%.*}
	run --separate-stderr qadmin cat --meta q "$ID5"
	assert_success
	assert_equal "$(meta_val state)" ready
	assert_equal "$(meta_val id)" "$ID5"
	assert_equal "$(meta_val name)" "$ID5"
	assert_equal "$(meta_val attempts)" 0
	assert_equal "$(meta_val size)" 500
	[[ $(meta_val sent) =~ ^$sent(\.[0-9]+)?$ ]] || fail "sent: expected $sent, got '$(meta_val sent)'"
	# In flight: the lease deadline.
	run --separate-stderr qadmin cat --meta q "$ID1"
	assert_success
	assert_equal "$(meta_val state)" inflight
	assert_equal "$(meta_val name)" "${R1##*/}"
	assert_equal "$(meta_val attempts)" 1
	assert_equal "$(meta_val size)" 100
	assert_output --partial "$(field "$R1" l)"
	# Retry: the due time.
	run --separate-stderr qadmin cat --meta q "$ID2"
	assert_success
	assert_equal "$(meta_val state)" retry
	assert_output --partial "$(field "$(only retry q)" t)"
	# Dead: the reason.
	run --separate-stderr qadmin cat --meta q "$ID4"
	assert_success
	assert_equal "$(meta_val state)" dead
	assert_output --partial bad-input
	# --meta after the operands.
	run --separate-stderr qadmin cat q "$ID4" --meta
	assert_success
	assert_equal "$(meta_val state)" dead
}

@test "qadmin cat --meta: a job's stderr, the key and attributes are shown made safe (\\ooo), the body stays raw" {
	mkq f
	local id out
	id=$(printf 'raw\033[2J\000body' | qsend -p -k $'k\e[1m' -H $'a=\e]0;t\a' f)
	run timeout 30 qworker -q --drain f -- sh -c \
	    'printf "bad\033[31m red\000nul\tok\n" >&2; exit 100'
	run --separate-stderr qadmin cat --meta f "$id"
	assert_success
	out=$(cat -v <<<"$output")
	[[ $out != *'^['* && $out != *'^@'* && $out != *'^G'* ]] ||
	    fail "raw control bytes in: $out"
	assert_line 'key: k\033[1m'
	assert_line 'attr: a=\033]0;t\007'
	assert_line $'bad\\033[31m red\\000nul\tok'
	# The body, without --meta, byte for byte.
	qadmin cat f "$id" > "$T/body"
	assert_equal "$(od -An -c "$T/body" | tr -s ' ')" \
	    "$(printf 'raw\033[2J\000body' | od -An -c | tr -s ' ')"
}

@test "qadmin cat --meta: the failure record of qworker under 'failure:'" {
	mkq f
	local id name
	id=$(qsend -p f payload)
	run timeout 30 qworker --drain f -- sh -c 'echo boom >&2; exit 100'
	name=$(only dead f)
	assert_equal "$(field "$name" r)" rejected
	assert_file_exists "$SPOOLQ_DIR/f/attr/$id.failure"
	run --separate-stderr qadmin cat --meta f "$id"
	assert_success
	assert_equal "$(meta_val state)" dead
	assert_equal "$(meta_val attempts)" 1
	assert_output --partial rejected
	assert_line --regexp '^failure:'
	# The record follows that line, whole.
	local rest
	rest=$(sed -n '/^failure:/,$p' <<<"$output" | sed 1d)
	[[ $rest == *'status=exit 100'* ]] || fail "no 'status=exit 100' after failure: in: $output"
	[[ $rest == *boom* ]] || fail "no 'boom' (the job's stderr) after failure: in: $output"
	[[ $rest == *'attempt=1'* ]] || fail "no 'attempt=1' after failure: in: $output"
	# Without --meta: the body only.
	run --separate-stderr qadmin cat f "$id"
	assert_success
	assert_output payload
}
