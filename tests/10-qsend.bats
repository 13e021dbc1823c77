#!/usr/bin/env bats
# qsend: producing messages.

load helpers

setup() {
	spoolq_setup
	mkq q
}

teardown() {
	[[ -z ${USER_HOME:-} ]] || rm -rf "$USER_HOME"
	spoolq_teardown
}

@test "qsend: each argument is one message, bytes exact, in order" {
	run qsend q hello "two words" "" $'tab\there\n'
	assert_success
	assert_output ''
	assert_count new q 4
	local d f i=0
	d=$(qdir q)/new
	local -a want=(hello "two words" "" $'tab\there\n')
	while IFS= read -r f; do
		printf '%s' "${want[i]}" > "$T/want"
		cmp "$T/want" "$d/$f" || fail "message $i ($f) differs"
		i=$((i + 1))
	done < <(names new q)
	[ "$i" -eq 4 ]
	assert_file_size_equals "$d/$(names new q | head -n 1)" 5
}

@test "qsend: without arguments stdin is exactly one message" {
	printf 'line one\nline two\n\n' > "$T/in"
	run qsend q < "$T/in"
	assert_success
	assert_count new q 1
	cmp "$T/in" "$(qdir q)/new/$(only new q)"
}

@test "qsend: empty stdin is one empty message" {
	run qsend q < /dev/null
	assert_success
	assert_count new q 1
	assert_file_empty "$(qdir q)/new/$(only new q)"
}

@test "qsend -l: one message per line, empty lines kept, final line without newline" {
	run qsend -l q < <(printf 'a\n\nb b\n  \nlast')
	assert_success
	assert_count new q 5
	run bodies new q
	assert_output $'a\n\nb b\n  \nlast'
	# No newline is stored in any body: 1 + 0 + 3 + 2 + 4 bytes.
	[[ $(cat "$(qdir q)"/new/* | wc -c) -eq 10 ]]
	[[ $(cat "$(qdir q)"/new/* | tr -cd '\n' | wc -c) -eq 0 ]]
}

@test "qsend -l: a final newline does not make an extra message" {
	run qsend -l q < <(printf 'x\ny\n')
	assert_success
	assert_count new q 2
	run bodies new q
	assert_output $'x\ny'
}

@test "qsend -l: empty stdin sends nothing" {
	run qsend -l q < /dev/null
	assert_success
	assert_count new q 0
}

@test "qsend -0: one message per NUL-terminated record, final record unterminated" {
	run qsend -0 q < <(printf 'a\0\0b\nc\0tail')
	assert_success
	assert_count new q 4
	local d
	d=$(qdir q)/new
	local -a n
	mapfile -t n < <(names new q)
	[[ $(cat "$d/${n[0]}") == a ]]
	assert_file_empty "$d/${n[1]}"
	[[ $(cat "$d/${n[2]}") == $'b\nc' ]]
	assert_file_size_equals "$d/${n[2]}" 3
	[[ $(cat "$d/${n[3]}") == tail ]]
	assert_file_size_equals "$d/${n[3]}" 4
}

@test "qsend -f: one message per file, in operand order, bytes exact" {
	printf 'first file\n' > "$T/f1"
	printf 'bin\0ary\0' > "$T/f2"
	: > "$T/f3"
	head -c 100000 /dev/urandom > "$T/f4"
	run qsend -f q "$T/f1" "$T/f2" "$T/f3" "$T/f4"
	assert_success
	assert_count new q 4
	local d i=1 f
	d=$(qdir q)/new
	while IFS= read -r f; do
		cmp "$T/f$i" "$d/$f"
		i=$((i + 1))
	done < <(names new q)
}

@test "qsend -f: a missing file fails cleanly, naming it, and leaves tmp/ empty" {
	printf 'ok\n' > "$T/f1"
	expect_fail 66 qsend -f q "$T/f1" "$T/nonexistent"
	assert_output --partial "$T/nonexistent"
	assert_output --regexp '^qsend: '
	assert_count tmp q 0
}

@test "qsend -f: a directory operand fails cleanly, tmp/ empty" {
	mkdir "$T/adir"
	expect_fail '65|66|74' qsend -f q "$T/adir"
	assert_output --partial "$T/adir"
	assert_count tmp q 0
	assert_count new q 0
}

@test "qsend -p: prints one ID per message, the names now in new/" {
	run --separate-stderr qsend -p q one two three
	assert_success
	[ "${#lines[@]}" -eq 3 ]
	local id
	for id in "${lines[@]}"; do
		assert_regex "$id" "^$ID_RE\$"
	done
	[[ $(names new q) == "$(printf '%s\n' "${lines[@]}" | sort)" ]]
	# Printed in send order, which is also name order.
	[[ $(printf '%s\n' "${lines[@]}") == "$(names new q)" ]]
	[[ $(cat "$(qdir q)/new/${lines[0]}") == one ]]
	[[ $(cat "$(qdir q)/new/${lines[2]}") == three ]]
}

@test "qsend -p -l: one ID per line of input" {
	run --separate-stderr qsend -p -l q < <(seq 1 50)
	assert_success
	[ "${#lines[@]}" -eq 50 ]
	[[ $(printf '%s\n' "${lines[@]}") == "$(names new q)" ]]
}

@test "qsend: the ID's host part is the short host name, sanitized" {
	local id host
	id=$(qsend -p q x)
	host=$(hostname -s 2>/dev/null || hostname)
	host=${host%%.*}
	[[ ${id##*.} == "$(printf '%s' "$host" | tr -c 'A-Za-z0-9-' -)" ]]
	# Seconds are the send time.
	int_between "${id%%.*}" $(( $(now) - 5 )) "$(now)"
}

@test "qsend -c: creates a missing queue with its state directories" {
	run qsend -c fresh hello
	assert_success
	local s
	for s in tmp new cur retry dead attr run; do
		assert_dir_exists "$SPOOLQ_DIR/fresh/$s"
	done
	assert_count new fresh 1
	run qsend -c fresh again
	assert_success
	assert_count new fresh 2
}

@test "qsend: a missing queue exits 66 with 'qsend: NAME: no such queue', creates nothing" {
	expect_fail 66 qsend nope hello
	assert_output --partial 'qsend: nope: no such queue'
	assert_dir_not_exists "$SPOOLQ_DIR/nope"
}

@test "qsend: a missing spool root exits 66 and does not create it" {
	export SPOOLQ_DIR=$T/absent
	expect_fail 66 qsend q hello
	assert_output --partial 'qsend: q: no such queue'
	assert_dir_not_exists "$T/absent"
}

@test "qsend: a missing queue path exits 66" {
	expect_fail 66 qsend "$T/no/such/q" hello
	assert_output --partial 'no such queue'
	assert_dir_not_exists "$T/no"
}

@test "qsend: a queue given as a path" {
	mkq "$T/pq"
	run qsend "$T/pq" by-path
	assert_success
	assert_count new "$T/pq" 1
	run bodies new "$T/pq"
	assert_output by-path
}

@test "qsend -d ROOT overrides SPOOLQ_DIR" {
	run qsend -d "$T/other" -c q elsewhere
	assert_success
	assert_count new "$T/other/q" 1
	assert_count new q 0
}

@test "qsend: a user's default root is \$XDG_STATE_HOME/spoolq, else ~/.local/state/spoolq" {
	local -a as_user=()
	if (( EUID == 0 )); then
		command -v setpriv > /dev/null || skip "no setpriv to drop root"
		as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups)
		share_bin
	fi
	USER_HOME=$(mktemp -d /tmp/spoolq-home.XXXXXX)
	chmod 777 "$USER_HOME"
	run env -u SPOOLQ_DIR HOME="$USER_HOME" XDG_STATE_HOME="$USER_HOME/xdg" \
	    ASAN_OPTIONS=detect_leaks=0 "${as_user[@]}" "$SPOOLQ_BIN/qsend" -c q one
	assert_success
	assert_count new "$USER_HOME/xdg/spoolq/q" 1
	run env -u SPOOLQ_DIR -u XDG_STATE_HOME HOME="$USER_HOME" \
	    ASAN_OPTIONS=detect_leaks=0 "${as_user[@]}" "$SPOOLQ_BIN/qsend" -c q two
	assert_success
	assert_count new "$USER_HOME/.local/state/spoolq/q" 1
}

@test "qsend: invalid queue names are refused (64 or 65), nothing created" {
	local long128 long129 name
	long128=$(printf 'a%.0s' {1..128})
	long129=$(printf 'a%.0s' {1..129})
	for name in .hidden "$long129" "a b" 'a:b' 'a*' '_x' "a,b"; do
		expect_fail '64|65' qsend -c "$name" hello
		assert_output --regexp '^qsend: '
		refute [ -e "$SPOOLQ_DIR/$name" ]
	done
	expect_fail '64|65' qsend -c '' hello
	# The longest valid name is accepted.
	run qsend -c "$long128" hello
	assert_success
	assert_count new "$long128" 1
	run qsend -c 'A-b_c.9' hello
	assert_success
}

@test "qsend: '../x' never resolves to a queue outside the spool root" {
	mkq "$T/x"
	mkdir -p "$T/cwd/deep"
	cd "$T/cwd/deep"
	# As a path it names $T/cwd/x, which does not exist.
	expect_fail '64|65|66' qsend ../x hello
	assert_count new "$T/x" 0
	assert_dir_not_exists "$T/cwd/x"
}

@test "qsend: an unknown option exits 64 and prints the usage" {
	expect_fail 64 qsend --bogus q hello
	assert_usage qsend
	expect_fail 64 qsend -Z q hello
	assert_usage qsend
	assert_count new q 0
}

@test "qsend: no queue operand exits 64 and prints the usage" {
	expect_fail 64 qsend
	assert_usage qsend
}

@test "qsend -h/--help prints the usage to stdout and exits 0" {
	run --separate-stderr qsend --help
	assert_success
	assert_usage qsend
	run --separate-stderr qsend -h
	assert_success
	assert_usage qsend
}

@test "qsend --version prints 'qsend (spoolq) VERSION' and exits 0" {
	run --separate-stderr qsend --version
	assert_success
	assert_output --regexp '^qsend \(spoolq\) [0-9]'
}

@test "qsend: IDs sort in send order across invocations" {
	local i
	for i in $(seq 1 30); do
		qsend q "$i"
	done
	run bodies new q
	assert_output "$(seq 1 30)"
}

@test "qsend: IDs sort in send order within a batch" {
	seq 1 2000 | qsend -l q
	assert_lines_eq "$(seq 1 2000)" "$(bodies new q)"
}

@test "qsend: concurrent senders (8 x 200 invocations) get distinct IDs, nothing lost" {
	local p pid failed=0
	local -a pids=()
	for p in 1 2 3 4 5 6 7 8; do
		(
			for i in $(seq 1 200); do
				qsend -p q "p$p-$i" || exit 1
			done > "$T/ids.$p"
		) 3>&- &
		pids+=($!)
	done
	for pid in "${pids[@]}"; do
		wait "$pid" || failed=$((failed + 1))
	done
	[ "$failed" -eq 0 ]
	assert_count new q 1600
	[[ $(cat "$T"/ids.* | sort -u | wc -l) -eq 1600 ]]
	[[ $(cat "$T"/ids.* | sort) == "$(names new q)" ]]
	# Every body is present once.
	run bash -c "cd '$(qdir q)/new' && cat * | tr 'p' '\n' | grep ."
	assert_same "$(for p in 1 2 3 4 5 6 7 8; do seq -f "$p-%g" 1 200; done)" "$output"
	# Each sender's messages sort in its send order.
	for p in 1 3 8; do
		run bash -c "cd '$(qdir q)/new' && for f in \$(cat '$T/ids.$p' | sort); do cat \$f; echo; done"
		assert_lines_eq "$(seq -f "p$p-%g" 1 200)" "$output"
	done
}

@test "qsend: concurrent batch senders (8 x 500 lines) get distinct IDs, nothing lost" {
	local p pid failed=0
	local -a pids=()
	for p in 1 2 3 4 5 6 7 8; do
		(seq -f "b$p-%g" 1 500 | qsend -l -p q > "$T/ids.$p") 3>&- &
		pids+=($!)
	done
	for pid in "${pids[@]}"; do
		wait "$pid" || failed=$((failed + 1))
	done
	[ "$failed" -eq 0 ]
	assert_count new q 4000
	[[ $(cat "$T"/ids.* | sort -u | wc -l) -eq 4000 ]]
	run bash -c "cd '$(qdir q)/new' && cat * | tr 'b' '\n' | grep ."
	assert_same "$(for p in 1 2 3 4 5 6 7 8; do seq -f "$p-%g" 1 500; done)" "$output"
}

@test "qsend: IDs are never reused after their first owner was acked" {
	local id1 id2
	id1=$(qsend -p q one)
	qrecv -A q > /dev/null
	id2=$(qsend -p q two)
	[[ $id1 != "$id2" ]]
	[[ $id1 < $id2 ]]
}

@test "qsend: durability = none and fsync both deliver" {
	mkq qn durability=none
	mkq qf durability=fsync
	seq 1 100 | qsend -l qn
	seq 1 100 | qsend -l qf
	qsend qn single
	qsend qf single
	assert_count new qn 101
	assert_count new qf 101
	run qrecv -A -n 101 qn
	assert_success
	assert_output "$(seq 1 100; echo single)"
	run qrecv -A -n 101 qf
	assert_success
	assert_output "$(seq 1 100; echo single)"
}

@test "qsend: durability = fsync syncs once per batch, none never" {
	command -v strace > /dev/null || skip "no strace"
	strace -f -qq -o /dev/null true 2> /dev/null || skip "strace cannot trace here"
	mkq qn durability=none
	mkq qf durability=fsync
	# LeakSanitizer cannot run under ptrace.
	export ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0"
	seq 1 200 | strace -E "$(leakless_env)" -f -qq -e trace=fsync,fdatasync,syncfs,sync,sync_file_range \
	    -o "$T/trace.f" "$SPOOLQ_BIN/qsend" -l qf
	seq 1 200 | strace -E "$(leakless_env)" -f -qq -e trace=fsync,fdatasync,syncfs,sync,sync_file_range \
	    -o "$T/trace.n" "$SPOOLQ_BIN/qsend" -l qn
	assert_count new qf 200
	assert_count new qn 200
	local nf nn
	nf=$(grep -cE 'sync' "$T/trace.f" || true)
	nn=$(grep -cE 'sync' "$T/trace.n" || true)
	[ "$nn" -eq 0 ] || fail "durability=none made $nn sync calls"
	[ "$nf" -ge 1 ] || fail "durability=fsync made no sync call"
	# Batches amortize: far fewer syncs than messages.
	[ "$nf" -le 20 ] || fail "durability=fsync made $nf sync calls for one batch of 200"
}

@test "qsend -l | qrecv -A -n N round-trips lines exactly" {
	printf '%s\n' one '' '  spaced  ' 'back\slash' $'tab\tx' -n '%s%d' 'ünïcödé' '' last > "$T/in"
	qsend -l q < "$T/in"
	assert_count new q 10
	qrecv -A -n 10 q > "$T/out"
	cmp "$T/in" "$T/out"
	assert_count new q 0
	assert_count cur q 0
}

@test "qsend: a closed stdin is not mistaken for a file; --at refuses dates that do not exist" {
	run qsend q body <&-
	assert_success
	assert_equal "$(cat "$SPOOLQ_DIR"/q/new/*)" body
	run qsend --at 2027-02-30T10:00 q later
	assert_failure 64
	assert_output --partial 'not a time'
	run qsend --at 2027-02-28T10:00:60 q later
	assert_failure 64
}

@test "qsend: a 64-byte host name (the Linux maximum) ends the ID whole" {
	local host out
	host=$(printf 'h%.0s' {1..60})-64b
	command -v unshare >/dev/null || skip "no unshare(1)"
	out=$(unshare -u true 2>&1) || skip "unshare -u cannot run here: $out"
	run unshare -u sh -c 'hostname "$1" && exec qsend -p q body' _ "$host"
	assert_success
	assert_equal "${#host}" 64
	assert_output --regexp "^$ID_RE\$"
	assert_equal "${output##*.}" "$host"
	assert_equal "$(only new q)" "$output"
	# A long name with dots still keeps its first label only.
	run unshare -u sh -c 'hostname "$1" && exec qsend -p q body' _ \
	    "first.${host:6}"
	assert_success
	assert_equal "${output##*.}" first
}
