#!/usr/bin/env bats
# qack: settling claimed messages.

load helpers

setup() {
	spoolq_setup
	mkq q
}

teardown() {
	spoolq_teardown
}

@test "qack: ack deletes the claimed message" {
	qsend q body
	local r
	r=$(qrecv q)
	run qack "$r"
	assert_success
	assert_output ''
	assert_file_not_exists "$r"
	local s
	for s in new cur retry dead attr; do
		assert_count "$s" q 0
	done
}

@test "qack: several receipts in one call" {
	seq 1 4 | qsend -l q
	local -a r
	mapfile -t r < <(qrecv -n 3 q)
	run qack "${r[@]}"
	assert_success
	assert_count cur q 0
	assert_count new q 1
}

@test "qack -: reads receipts from stdin, one per line" {
	seq 1 5 | qsend -l q
	qrecv -n 5 q | qack -
	assert_count cur q 0
	assert_count new q 0
}

@test "qack: a relative receipt path works" {
	qsend q body
	local r
	r=$(qrecv q)
	cd "$(qdir q)"
	run qack "cur/${r##*/}"
	assert_success
	assert_count cur q 0
}

@test "qack --retry: to retry/ID,a=k,t=due with the default backoff, body kept" {
	local id r t0 n
	id=$(qsend -p q body)
	r=$(qrecv q)
	t0=$(now)
	run qack --retry "$r"
	assert_success
	assert_count cur q 0
	n=$(only retry q)
	assert_regex "$n" "^${id//./\\.},a=1,t=[0-9]{10}\$"
	# retry_delay 30s +-20%
	int_between "$(field "$n" t)" $((t0 + 23)) $(( $(now) + 37 ))
	[[ $(cat "$(qdir q)/retry/$n") == body ]]
}

@test "qack --retry: backoff doubles per attempt" {
	mkq q2 retry_delay=10s retry_max_delay=1h
	qsend q2 body
	qack --retry --delay 0 "$(qrecv q2)"
	local r t0 n
	r=$(qrecv q2)
	[[ $(field "$r" a) == 2 ]]
	t0=$(now)
	qack --retry "$r"
	n=$(only retry q2)
	[[ $(field "$n" a) == 2 ]]
	# 10s * 2^(2-1) = 20s +-20%
	int_between "$(field "$n" t)" $((t0 + 15)) $(( $(now) + 25 ))
}

@test "qack --retry: backoff is capped by retry_max_delay" {
	mkq q2 retry_delay=10s retry_max_delay=12s
	qsend q2 body
	qack --retry --delay 0 "$(qrecv q2)"
	qack --retry --delay 0 "$(qrecv q2)"
	local r t0 n
	r=$(qrecv q2)
	[[ $(field "$r" a) == 3 ]]
	t0=$(now)
	qack --retry "$r"
	n=$(only retry q2)
	# min(10s * 4, 12s) +-20%: at most 14.4 s, rounded up to a whole
	# second from a time that may be late in the current second.
	int_between "$(field "$n" t)" $((t0 + 9)) $(( $(now) + 16 ))
}

@test "qack --retry --delay D: due exactly now + D" {
	qsend q body
	local t0 n
	t0=$(now)
	qack --retry --delay 1m "$(qrecv q)"
	n=$(only retry q)
	int_between "$(field "$n" t)" $((t0 + 60)) $(( $(now) + 61 ))
	expect_fail 1 qrecv q
}

@test "qack --retry --delay 0: claimable again at once, a preserved then counted" {
	local id r
	id=$(qsend -p q body)
	r=$(qrecv q)
	run qack --retry --delay 0 "$r"
	assert_success
	r=$(qrecv q)
	[[ $(msgid "$r") == "$id" ]]
	[[ $(field "$r" a) == 2 ]]
	[[ $(cat "$r") == body ]]
}

@test "qack --retry at max_attempts dead-letters with r=attempts" {
	mkq q2 max_attempts=1
	local id
	id=$(qsend -p q2 body)
	run qack --retry --delay 0 "$(qrecv q2)"
	assert_success
	assert_count retry q2 0
	[[ $(only dead q2) == "$id,a=1,r=attempts" ]]
}

@test "qack --reject: to dead/ID,a=k,r=rejected" {
	local id
	id=$(qsend -p q body)
	run qack --reject "$(qrecv q)"
	assert_success
	assert_count cur q 0
	[[ $(only dead q) == "$id,a=1,r=rejected" ]]
	[[ $(cat "$(qdir q)/dead/$id,a=1,r=rejected") == body ]]
}

@test "qack --reject=REASON: the reason is in the name" {
	local id
	id=$(qsend -p q body)
	run qack --reject=bad-input-42 "$(qrecv q)"
	assert_success
	[[ $(only dead q) == "$id,a=1,r=bad-input-42" ]]
}

@test "qack --reject=REASON: an invalid reason is refused, nothing changed" {
	qsend q body
	local r before reason
	r=$(qrecv q)
	before=$(snapshot "$SPOOLQ_DIR")
	for reason in 'Bad' 'a,b' 'a/b' 'a=b' "$(printf 'x%.0s' {1..33})" ''; do
		expect_fail '64|65' qack --reject="$reason" "$r"
		assert_unchanged "$before"
	done
}

@test "qack --touch: extends the lease and prints the new receipt" {
	local id r r2 t0
	id=$(qsend -p q body)
	r=$(qrecv --lease 10s q)
	t0=$(now)
	run --separate-stderr qack --touch 5m "$r"
	assert_success
	[ "${#lines[@]}" -eq 1 ]
	r2=$output
	[[ $r2 == "$(qdir q)/cur/$id,a=1,l="* ]] || fail "bad new receipt $r2"
	int_between "$(field "$r2" l)" $((t0 + 299)) $(( $(now) + 301 ))
	assert_file_not_exists "$r"
	[[ $(cat "$r2") == body ]]
	# The old receipt is now stale; the new one acks.
	expect_fail 66 qack "$r"
	run qack "$r2"
	assert_success
	assert_count cur q 0
}

@test "qack --touch: a touched message is not recovered at the old deadline" {
	qsend q body
	local r r2
	r=$(qrecv --lease 1s q)
	r2=$(qack --touch 1m "$r")
	wait_lease_over "$r"
	expect_fail 1 qrecv q
	assert_file_exists "$r2"
}

@test "qack --touch with '-': receipts from stdin, new receipts on stdout" {
	qsend q a b
	local -a r
	mapfile -t r < <(qrecv -n 2 --lease 10s q | qack --touch 1h -)
	[ "${#r[@]}" -eq 2 ]
	assert_file_exists "${r[0]}"
	assert_file_exists "${r[1]}"
	int_between "$(field "${r[0]}" l)" $(( $(now) + 3590 )) $(( $(now) + 3601 ))
}

# refused RECEIPT [REASON]: qack and its variants refuse RECEIPT with 65
# (saying REASON, by default "not a receipt"), nothing changed.
refused() {
	local before
	before=$(snapshot "$SPOOLQ_DIR")
	expect_fail 65 qack "$1"
	assert_output --partial "qack: "
	assert_output --partial "${2:-not a receipt}"
	assert_unchanged "$before"
	expect_fail 65 qack --retry --delay 0 "$1"
	assert_unchanged "$before"
	expect_fail 65 qack --reject "$1"
	assert_unchanged "$before"
	expect_fail 65 qack --touch 1h "$1"
	assert_unchanged "$before"
	run qack - <<<"$1"
	refute_crash
	assert_failure 65
	assert_unchanged "$before"
}

@test "qack: refuses a path outside any queue (65)" {
	mkdir -p "$SPOOLQ_DIR/elsewhere"
	printf 'x' > "$SPOOLQ_DIR/elsewhere/file,a=1,l=9999999999"
	refused "$SPOOLQ_DIR/elsewhere/file,a=1,l=9999999999"
	mkdir -p "$SPOOLQ_DIR/fake/cur"
	printf 'x' > "$SPOOLQ_DIR/fake/cur/file,a=1,l=9999999999"
	refused "$SPOOLQ_DIR/fake/cur/file,a=1,l=9999999999"
}

@test "qack: refuses a message in new/, retry/ or dead/ (65)" {
	local -a ids
	mapfile -t ids < <(qsend -p q a b c)
	qrecv q > /dev/null
	qack --retry --delay 1h "$(qrecv q)"
	qack --reject "$(qrecv q)"
	qsend q fresh
	refused "$(qdir q)/new/$(only new q)"
	refused "$(qdir q)/retry/$(only retry q)"
	refused "$(qdir q)/dead/$(only dead q)"
}

@test "qack: refuses a symlink placed in cur/ (65), target untouched" {
	qsend q body
	local n
	n=$(only new q)
	ln -s "../new/$n" "$(qdir q)/cur/$n,a=1,l=9999999999"
	refused "$(qdir q)/cur/$n,a=1,l=9999999999" "cur/$n,a=1,l=9999999999: not a regular file (symlink); qadmin check --repair moves it to quarantine/"
	assert_file_exists "$(qdir q)/new/$n"
	assert_link_exists "$(qdir q)/cur/$n,a=1,l=9999999999"
}

@test "qack: refuses a symlink to a real receipt (65), receipt untouched" {
	qsend q body
	local r
	r=$(qrecv q)
	ln -s "$r" "$T/link"
	refused "$T/link"
	assert_file_exists "$r"
}

@test "qack: refuses '..' in the path (65)" {
	qsend q body
	local r n
	r=$(qrecv q)
	n=${r##*/}
	refused "$(qdir q)/cur/../cur/$n"
	refused "$(qdir q)/new/../cur/$n"
	refused "$(qdir q)/../q/cur/$n"
	assert_file_exists "$r"
}

@test "qack: refuses a directory (65)" {
	mkdir "$(qdir q)/cur/dir,a=1,l=9999999999"
	refused "$(qdir q)/cur/dir,a=1,l=9999999999" "cur/dir,a=1,l=9999999999: not a regular file (directory)"
	refused "$(qdir q)/cur"
	refused "$(qdir q)"
	assert_dir_exists "$(qdir q)/cur/dir,a=1,l=9999999999"
}

@test "qack: a receipt whose lease was lost exits 66 and changes nothing" {
	qsend q body
	local r r2 before
	r=$(qrecv --lease 1s q)
	wait_lease_over "$r"
	r2=$(qrecv q)
	[[ $(field "$r2" a) == 2 ]]
	before=$(snapshot "$SPOOLQ_DIR")
	expect_fail 66 qack "$r"
	assert_output --partial "qack: $r: lease lost or message already settled"
	assert_unchanged "$before"
	expect_fail 66 qack --retry --delay 0 "$r"
	assert_unchanged "$before"
	expect_fail 66 qack --reject "$r"
	assert_unchanged "$before"
	expect_fail 66 qack --touch 1h "$r"
	assert_unchanged "$before"
	assert_file_exists "$r2"
	qack "$r2"
}

@test "qack: acking twice exits 66 the second time" {
	qsend q a b
	local r before
	r=$(qrecv q)
	qack "$r"
	before=$(snapshot "$SPOOLQ_DIR")
	expect_fail 66 qack "$r"
	assert_output --partial 'lease lost or message already settled'
	assert_unchanged "$before"
	assert_count new q 1
}

@test "qack: settling after a retry or reject exits 66" {
	qsend q a b
	local r1 r2 before
	r1=$(qrecv q)
	r2=$(qrecv q)
	qack --retry --delay 1h "$r1"
	qack --reject "$r2"
	before=$(snapshot "$SPOOLQ_DIR")
	expect_fail 66 qack "$r1"
	expect_fail 66 qack --reject "$r1"
	expect_fail 66 qack --retry "$r2"
	assert_unchanged "$before"
}

@test "qack: several receipts, one bad: the others are settled, exit is the failure's" {
	qsend q a b
	local -a r
	mapfile -t r < <(qrecv -n 2 q)
	qack "${r[0]}"
	expect_fail 66 qack "${r[0]}" "${r[1]}"
	assert_count cur q 0
	qsend q c
	mapfile -t r < <(qrecv q)
	expect_fail 65 qack "$T" "${r[0]}"
	assert_count cur q 0
}

@test "qack: usage errors exit 64 with the usage" {
	expect_fail 64 qack
	assert_usage qack
	expect_fail 64 qack --bogus x
	assert_usage qack
	qsend q body
	local r before
	r=$(qrecv q)
	before=$(snapshot "$SPOOLQ_DIR")
	expect_fail 64 qack --retry --reject "$r"
	expect_fail '64|65' qack --touch soon "$r"
	expect_fail '64|65' qack --retry --delay never "$r"
	assert_unchanged "$before"
	run --separate-stderr qack --help
	assert_success
	assert_usage qack
	run --separate-stderr qack --version
	assert_success
	assert_output --regexp '^qack \(spoolq\) [0-9]'
}
