#!/usr/bin/env bats
# qrecv: claiming messages; binary-safe round trips.

load helpers

setup() {
	spoolq_setup
	mkq q
}

teardown() {
	spoolq_teardown
}

@test "qrecv: claims in FIFO order and prints receipts QUEUE/cur/ID,a=1,l=..." {
	local -a ids
	mapfile -t ids < <(qsend -p q first; qsend -p q second; qsend -p q third)
	local k r
	for k in 0 1 2; do
		run --separate-stderr qrecv q
		assert_success
		[ "${#lines[@]}" -eq 1 ]
		r=$output
		[[ $r == "$SPOOLQ_DIR/q/cur/${ids[k]},a=1,l="* ]] || fail "unexpected receipt $r for ${ids[k]}"
		assert_regex "${r##*/}" "^${ids[k]//./\\.},a=1,l=[0-9]{10},c=[0-9a-f]{8}\$"
		assert_file_exists "$r"
	done
	[[ $(cat "$SPOOLQ_DIR/q/cur/${ids[0]},"*) == first ]]
	[[ $(cat "$SPOOLQ_DIR/q/cur/${ids[2]},"*) == third ]]
	assert_count new q 0
	assert_count cur q 3
}

@test "qrecv -n: claims up to N in ID order" {
	seq 1 5 | qsend -l q
	run --separate-stderr qrecv -n 3 q
	assert_success
	[ "${#lines[@]}" -eq 3 ]
	local r
	run bash -c 'for r; do cat "$r"; echo; done' _ "${lines[@]}"
	assert_output $'1\n2\n3'
	assert_count new q 2
	assert_count cur q 3
	# Fewer ready than asked for: what is there, exit 0.
	run --separate-stderr qrecv -n 10 q
	assert_success
	[ "${#lines[@]}" -eq 2 ]
	assert_count cur q 5
	expect_fail 1 qrecv q
}

# calls N: the system calls of one qrecv -n N of queue q, under strace.
calls() {
	strace -E "$(leakless_env)" -qq -o "$T/calls.$1" qrecv -n "$1" q >"$T/got.$1" ||
	    fail "qrecv -n $1 failed"
	[[ $(wc -l <"$T/got.$1") == "$1" ]] || fail "qrecv -n $1: $(wc -l <"$T/got.$1") claims"
	wc -l <"$T/calls.$1"
}

@test "qrecv -n: a claim costs its rename and a look at the claimed file, no system call for its nonce" {
	command -v strace >/dev/null || skip "strace is not installed"
	strace -f -qq -o /dev/null true 2>/dev/null || skip "strace cannot trace here"
	seq 400 | qsend -l q
	# The first claim lists new/ into the claim index.
	qrecv q >/dev/null
	local small large
	small=$(calls 100)
	large=$(calls 200)
	# What 100 claims more cost, apart from starting and stopping.
	(( large - small <= 100 * 2 + 20 )) ||
	    fail "qrecv -n 100: $small system calls; qrecv -n 200: $large"
	# Nonces come 64 at a time in each claim call: a few getpid calls
	# (libbsd's arc4random asks at each draw), not one a claim.
	[[ $(grep -c '^getpid(' "$T/calls.200") -le 12 ]] ||
	    fail "getpid: $(grep -c '^getpid(' "$T/calls.200") calls"
}

@test "qrecv -0: receipts NUL-terminated" {
	qsend q a b
	qrecv -0 -n 2 q > "$T/out"
	[[ $(tr -cd '\0' < "$T/out" | wc -c) -eq 2 ]]
	[[ $(tr -cd '\n' < "$T/out" | wc -c) -eq 0 ]]
	local -a r
	mapfile -d '' -t r < "$T/out"
	[ "${#r[@]}" -eq 2 ]
	[[ $(cat "${r[0]}") == a ]]
	[[ $(cat "${r[1]}") == b ]]
}

@test "qrecv: an empty queue exits 1 and prints nothing" {
	run --separate-stderr qrecv q
	refute_crash
	assert_failure 1
	assert_output ''
	run --separate-stderr qrecv -A q
	refute_crash
	assert_failure 1
	assert_output ''
	run --separate-stderr qrecv -n 5 q
	assert_failure 1
}

@test "qrecv: a missing queue exits 66 with 'qrecv: NAME: no such queue'" {
	expect_fail 66 qrecv nope
	assert_output --partial 'qrecv: nope: no such queue'
	assert_dir_not_exists "$SPOOLQ_DIR/nope"
}

@test "qrecv: bad options exit 64 with the usage" {
	expect_fail 64 qrecv --bogus q
	assert_usage qrecv
	expect_fail 64 qrecv
	assert_usage qrecv
	expect_fail '64|65' qrecv -n x q
	expect_fail '64|65' qrecv -w soon q
	expect_fail '64|65' qrecv --lease 5parsecs q
	run --separate-stderr qrecv --help
	assert_success
	assert_usage qrecv
	run --separate-stderr qrecv --version
	assert_success
	assert_output --regexp '^qrecv \(spoolq\) [0-9]'
}

@test "qrecv -w: returns a message sent while waiting, at once" {
	(sleep 0.3; qsend q late) 3>&- &
	local start
	start=$(now_f)
	run --separate-stderr qrecv -w 10 q
	assert_success
	[[ $(cat "$output") == late ]]
	# Woken by the send, not by the end of the wait: bounds far above
	# scheduling delays, far below the 10 s wait.
	float_between "$(elapsed_since "$start")" 0.2 8
	wait
}

@test "qrecv -w: a ready message is returned without waiting" {
	qsend q ready
	local start
	start=$(now_f)
	run --separate-stderr qrecv -w 5 q
	assert_success
	float_between "$(elapsed_since "$start")" 0 4
}

@test "qrecv -w: times out with exit 1 after about the timeout" {
	local start
	start=$(now_f)
	run --separate-stderr qrecv -w 1 q
	refute_crash
	assert_failure 1
	assert_output ''
	float_between "$(elapsed_since "$start")" 0.9 6
	start=$(now_f)
	run --separate-stderr qrecv -w 500ms q
	assert_failure 1
	float_between "$(elapsed_since "$start")" 0.4 5
	# Waiting is event-driven: a 2 s wait burns almost no CPU.
	local TIMEFORMAT='%U %S' cpu
	cpu=$( { time qrecv -w 2 q > /dev/null 2>&1; } 2>&1 ) || true
	[[ $cpu =~ ^[0-9.]+\ [0-9.]+$ ]] || fail "cannot measure CPU time: '$cpu'"
	cpu=$(awk '{ print $1 + $2 }' <<<"$cpu")
	float_between "$cpu" 0 0.3
}

@test "qrecv -w: wakes for a retry that becomes due" {
	local t
	qsend q later
	qack --retry --delay 1s "$(qrecv q)"
	t=$(field "$(only retry q)" t)
	run --separate-stderr qrecv -w 10 q
	assert_success
	[[ $(cat "$output") == later ]]
	[[ $(field "$output" a) == 2 ]]
	# Not before its due time (the clock only goes on from there).
	(( $(now) >= t )) || fail "claimed before its due time $t"
}

@test "qrecv --lease: the l field is now + lease" {
	qsend q a b c
	local t0 r
	t0=$(now)
	r=$(qrecv --lease 90s q)
	int_between "$(field "$r" l)" $((t0 + 89)) $(( $(now) + 91 ))
	r=$(qrecv --lease 2h q)
	int_between "$(field "$r" l)" $((t0 + 7199)) $(( $(now) + 7201 ))
	# Default: the queue's lease, 5m.
	r=$(qrecv q)
	int_between "$(field "$r" l)" $((t0 + 299)) $(( $(now) + 301 ))
}

@test "qrecv: the lease comes from queue.conf, --lease overrides it" {
	mkq q2 lease=2m
	qsend q2 a b
	local t0 r
	t0=$(now)
	r=$(qrecv q2)
	int_between "$(field "$r" l)" $((t0 + 119)) $(( $(now) + 121 ))
	r=$(qrecv --lease 10s q2)
	int_between "$(field "$r" l)" $((t0 + 9)) $(( $(now) + 11 ))
}

@test "qrecv: attempts count at claim: a=1, then a=2 after a retry" {
	local id r
	id=$(qsend -p q body)
	r=$(qrecv q)
	[[ $(msgid "$r") == "$id" ]]
	[[ $(field "$r" a) == 1 ]]
	qack --retry --delay 0 "$r"
	r=$(qrecv q)
	[[ $(msgid "$r") == "$id" ]]
	[[ $(field "$r" a) == 2 ]]
	[[ $(cat "$r") == body ]]
}

@test "qrecv: an expired lease is recovered by the next qrecv, a=2" {
	local id r r2
	id=$(qsend -p q body)
	# A lease far above any scheduling delay, for the "still leased" step.
	r=$(qrecv --lease 4s q)
	[[ $(field "$r" a) == 1 ]]
	# Still leased: nothing to claim.
	expect_fail 1 qrecv q
	wait_lease_over "$r"
	r2=$(qrecv q)
	[[ $(msgid "$r2") == "$id" ]]
	[[ $(field "$r2" a) == 2 ]]
	[[ $(cat "$r2") == body ]]
	assert_file_not_exists "$r"
	assert_count cur q 1
	assert_count new q 0
}

@test "qrecv: max_attempts reached by lease expiry -> dead/ID,a=N,r=attempts" {
	mkq q2 max_attempts=2
	local id r
	id=$(qsend -p q2 doomed)
	r=$(qrecv --lease 1s q2)
	wait_lease_over "$r"
	r=$(qrecv --lease 1s q2)
	[[ $(field "$r" a) == 2 ]]
	wait_lease_over "$r"
	expect_fail 1 qrecv q2
	assert_count cur q2 0
	assert_count new q2 0
	[[ $(only dead q2) == "$id,a=2,r=attempts" ]]
	[[ $(cat "$(qdir q2)/dead/$id,a=2,r=attempts") == doomed ]]
}

@test "qrecv: max_attempts reached by retries -> dead/ID,a=N,r=attempts" {
	mkq q2 max_attempts=2
	local id
	id=$(qsend -p q2 doomed)
	qack --retry --delay 0 "$(qrecv q2)"
	qack --retry --delay 0 "$(qrecv q2)"
	expect_fail 1 qrecv q2
	[[ $(only dead q2) == "$id,a=2,r=attempts" ]]
}

@test "qrecv: a ready message already claimed max_attempts times is dead-lettered" {
	mkq q2 max_attempts=3
	local d
	d=$(qdir q2)
	printf 'worn out' > "$d/tmp/worn"
	mv "$d/tmp/worn" "$d/new/worn,a=3"
	printf 'fine' > "$d/tmp/fine"
	mv "$d/tmp/fine" "$d/new/fine,a=2"
	run --separate-stderr qrecv -n 5 q2
	assert_success
	[[ ${output##*/} == fine,a=3,l=* ]]
	[[ $(only dead q2) == "worn,a=3,r=attempts" ]]
}

@test "qrecv: ttl -> dead/ with r=expired" {
	mkq q2 ttl=1m
	local id d
	d=$(qdir q2)
	# Sent two minutes ago: the send time is the one in the ID.
	id="$(( $(now) - 120 )).500000000.4242_0_0a0b0c0d.testhost"
	printf stale >"$d/tmp/$id"
	mv "$d/tmp/$id" "$d/new/$id"
	expect_fail 1 qrecv q2
	assert_count new q2 0
	assert_count cur q2 0
	assert_regex "$(only dead q2)" "^${id//./\\.}(,a=0)?,r=expired\$"
	# A fresh message (a minute to go) is claimed normally.
	qsend q2 fresh
	run --separate-stderr qrecv q2
	assert_success
	[[ $(cat "$output") == fresh ]]
}

@test "qrecv: a retry is promoted when due, not before" {
	local id r t0
	id=$(qsend -p q body)
	t0=$(now)
	# A delay far above any scheduling delay, for the "not before" step.
	qack --retry --delay 4s "$(qrecv q)"
	r=$(only retry q)
	[[ $(msgid "$r") == "$id" ]]
	[[ $(field "$r" a) == 1 ]]
	int_between "$(field "$r" t)" $((t0 + 4)) $(( $(now) + 5 ))
	expect_fail 1 qrecv q
	assert_count retry q 1
	wait_due_over "$r"
	r=$(qrecv q)
	[[ $(msgid "$r") == "$id" ]]
	[[ $(field "$r" a) == 2 ]]
	assert_count retry q 0
}

@test "qrecv: a promoted retry keeps its place in ID order" {
	local -a ids
	mapfile -t ids < <(qsend -p q a b c)
	qack --retry --delay 0 "$(qrecv q)"
	run --separate-stderr qrecv -n 3 q
	assert_success
	[ "${#lines[@]}" -eq 3 ]
	[[ $(msgid "${lines[0]}") == "${ids[0]}" ]]
	[[ $(field "${lines[0]}" a) == 2 ]]
	[[ $(msgid "${lines[1]}") == "${ids[1]}" ]]
	[[ $(field "${lines[1]}" a) == 1 ]]
	[[ $(msgid "${lines[2]}") == "${ids[2]}" ]]
}

@test "qrecv: hand delivery (write in tmp/, mv into new/) is claimed" {
	local d r
	d=$(qdir q)
	printf 'delivered by hand\n' > "$d/tmp/hand-1"
	mv "$d/tmp/hand-1" "$d/new/hand-1"
	r=$(qrecv q)
	[[ $r == "$d/cur/hand-1,a=1,l="* ]] || fail "bad receipt $r"
	[[ $(cat "$r") == 'delivered by hand' ]]
	qack "$r"
	assert_count cur q 0
}

@test "qrecv: dot files in new/ are ignored" {
	local d
	d=$(qdir q)
	printf 'hidden' > "$d/new/.hidden"
	printf 'partial' > "$d/new/.tmp.1234"
	expect_fail 1 qrecv q
	qsend q real
	run --separate-stderr qrecv -n 5 q
	assert_success
	[ "${#lines[@]}" -eq 1 ]
	[[ $(cat "$output") == real ]]
	[[ $(cat "$d/new/.hidden") == hidden ]]
	[[ $(cat "$d/new/.tmp.1234") == partial ]]
	assert_file_not_exists "$d/cur/.hidden"
}

@test "qrecv: files in tmp/ are never claimed" {
	printf 'half' > "$(qdir q)/tmp/writing"
	expect_fail 1 qrecv q
	assert_file_exists "$(qdir q)/tmp/writing"
}

@test "qrecv -A: prints bodies and deletes the messages" {
	qsend q one two three
	run --separate-stderr qrecv -A q
	assert_success
	assert_output one
	assert_count new q 2
	assert_count cur q 0
	run --separate-stderr qrecv -A -n 5 q
	assert_success
	assert_output $'two\nthree'
	assert_count new q 0
	assert_count cur q 0
	expect_fail 1 qrecv -A q
}

@test "qrecv -A -0: each body followed by a NUL" {
	qsend q a '' 'b c'
	qrecv -A -0 -n 3 q > "$T/out"
	printf 'a\0\0b c\0' > "$T/want"
	cmp "$T/want" "$T/out"
}

@test "qrecv: messages sent after a claim are still seen (index is only a cache)" {
	qsend q a b
	run --separate-stderr qrecv -A q
	assert_output a
	qsend q c
	run --separate-stderr qrecv -A -n 5 q
	assert_output $'b\nc'
}

@test "qrecv: a hand delivery sorting before already-seen names is still claimed" {
	qsend q a b c
	run --separate-stderr qrecv -A q
	assert_output a
	local d
	d=$(qdir q)
	printf 'early' > "$d/tmp/0000-early"
	mv "$d/tmp/0000-early" "$d/new/0000-early"
	run --separate-stderr qrecv -A -n 10 q
	assert_success
	[ "${#lines[@]}" -eq 3 ]
	[[ $(printf '%s\n' "${lines[@]}" | sort) == $'b\nc\nearly' ]]
	expect_fail 1 qrecv q
}

@test "qrecv: a message removed behind its back is skipped, not an error" {
	local -a ids
	mapfile -t ids < <(qsend -p q a b c)
	run --separate-stderr qrecv -A q
	assert_output a
	rm "$(qdir q)/new/${ids[1]}"
	run --separate-stderr qrecv -A q
	assert_success
	assert_output c
	expect_fail 1 qrecv q
}

@test "qrecv: concurrent consumers claim every message exactly once" {
	seq 1 300 | qsend -l q
	local c pid failed=0
	local -a pids=()
	for c in 1 2 3 4; do
		(
			while qrecv -A q >> "$T/got.$c"; do :; done
		) 3>&- &
		pids+=($!)
	done
	for pid in "${pids[@]}"; do
		wait "$pid" || failed=$((failed + 1))
	done
	[ "$failed" -eq 0 ]
	assert_same "$(seq 1 300)" "$(cat "$T"/got.*)"
	assert_count new q 0
	assert_count cur q 0
}

@test "qrecv: concurrent batch consumers with receipts, each message to one claimer" {
	seq 1 400 | qsend -l q
	local c pid
	local -a pids=()
	for c in 1 2 3 4; do
		(
			while qrecv -n 7 q >> "$T/r.$c"; do :; done
		) 3>&- &
		pids+=($!)
	done
	for pid in "${pids[@]}"; do
		wait "$pid"
	done
	[[ $(cat "$T"/r.* | wc -l) -eq 400 ]]
	[[ $(cat "$T"/r.* | sort -u | wc -l) -eq 400 ]]
	run bash -c "cat '$T'/r.* | while read -r r; do cat \"\$r\"; echo; done"
	assert_same "$(seq 1 400)" "$output"
	assert_count cur q 400
}

@test "qrecv: producers and consumers at once: every message exactly once" {
	local p c pid
	local -a prod=() cons=()
	for c in 1 2 3; do
		(
			while :; do
				qrecv -A -n 4 -w 1 q >> "$T/got.$c" && continue
				[[ -e $T/produced ]] && break
			done
		) 3>&- &
		cons+=($!)
	done
	for p in 1 2; do
		(
			for b in $(seq 0 29); do
				seq -f "$p-%g" $((b * 10 + 1)) $((b * 10 + 10)) | qsend -l q || exit 1
			done
		) 3>&- &
		prod+=($!)
	done
	for pid in "${prod[@]}"; do
		wait "$pid"
	done
	touch "$T/produced"
	for pid in "${cons[@]}"; do
		wait "$pid"
	done
	run bash -c "cat '$T'/got.*"
	assert_same "$(seq -f '1-%g' 1 300; seq -f '2-%g' 1 300)" "$output"
	assert_count new q 0
	assert_count cur q 0
}

@test "qrecv: odd hand-made names do not crash or wedge the queue" {
	local d long
	d=$(qdir q)
	long=$(printf 'x%.0s' {1..250})
	for n in "$long" 'odd,zz=1' 'odd,a=x' 'odd,,' 'odd,a=1,a=2' 'odd,l=99999999999999999999999'; do
		printf 'odd' > "$d/tmp/t"
		mv "$d/tmp/t" "$d/new/$n"
	done
	qsend q good
	run --separate-stderr qrecv -n 20 q
	refute_crash
	assert_success
	local r found=
	for r in "${lines[@]}"; do
		[[ -f $r ]] || fail "receipt $r is not a file"
		[[ $(cat "$r") == good ]] && found=1
	done
	[[ -n $found ]] || fail "the good message was not claimed: $output"
	# Nothing was lost: every body is somewhere in the queue.
	[[ $(cd "$d" && find new cur retry dead -type f | wc -l) -eq 7 ]]
}

# --- binary bodies ----------------------------------------------------------

@test "binary: NUL bytes, no final newline, empty: byte-identical via the receipt" {
	printf 'a\0b\0\0c' > "$T/b1"
	printf 'no newline at end' > "$T/b2"
	: > "$T/b3"
	printf '\n\n' > "$T/b4"
	local i r
	for i in 1 2 3 4; do
		qsend q < "$T/b$i"
	done
	for i in 1 2 3 4; do
		r=$(qrecv q)
		cmp "$T/b$i" "$r"
		qack "$r"
	done
	assert_count cur q 0
}

@test "binary: qrecv -A --raw prints bodies exactly, no separators" {
	printf 'a\0b\0\0c' > "$T/b1"
	printf 'no newline' > "$T/b2"
	: > "$T/b3"
	printf 'x\n' > "$T/b4"
	qsend -f q "$T/b1" "$T/b2" "$T/b3" "$T/b4"
	qrecv -A --raw q > "$T/out1"
	cmp "$T/b1" "$T/out1"
	qrecv -A --raw -n 3 q > "$T/out2"
	cat "$T/b2" "$T/b3" "$T/b4" > "$T/want2"
	cmp "$T/want2" "$T/out2"
	assert_count new q 0
}

@test "binary: a 5 MB random body round-trips via the receipt and via -A --raw" {
	head -c 5242880 /dev/urandom > "$T/big"
	qsend q < "$T/big"
	cmp "$T/big" "$(qdir q)/new/$(only new q)"
	local r
	r=$(qrecv q)
	cmp "$T/big" "$r"
	qack "$r"
	qsend -f q "$T/big"
	qrecv -A --raw q > "$T/out"
	cmp "$T/big" "$T/out"
	assert_count new q 0
	assert_count cur q 0
}
