#!/usr/bin/env bats
# What a new user meets first, in every tool: usage errors that say what
# is wrong in one line before the synopsis of that one command; -h that
# lists the options and names the man page; a spool root that does not
# exist; a held queue and a broken queue.conf shown as such everywhere.

load helpers

setup() { spoolq_setup; }
teardown() { spoolq_teardown; }

MAN=$BATS_TEST_DIRNAME/../man

# synopsis_of_man PAGE TOOL: the SYNOPSIS of a man page, one line per form.
synopsis_of_man() {
	mandoc -Tascii -O width=1000 "$1" | col -b |
	    sed -n '/^SYNOPSIS/,/^DESCRIPTION/p' | sed '1d;$d' |
	    awk -v t="$2" '$1 == t { if (l != "") print l; l = $0; next }
		/^ *$/ { next } { l = l " " $0 } END { print l }' |
	    sed -E 's/^[[:space:]]+//' | tr -s ' '
}

# synopsis_of_text TOOL: the synopsis in $output (up to its first blank
# line or the end), "usage:" dropped, one line per form.
synopsis_of_text() {
	sed -n '/^$/q; p' <<<"$output" | sed -E 's/^usage://; s/^[[:space:]]+//' |
	    awk -v t="$1" '$1 == t { if (l != "") print l; l = $0; next }
		{ l = l " " $0 } END { print l }' | tr -s ' '
}

# assert_usage_error TOOL REASON: $output is "TOOL: REASON" on its first
# line, then the synopsis of one command (one "usage:" line and no more
# forms than the tool has).
assert_usage_error() {
	assert_line --index 0 "$1: $2"
	assert_line --index 1 --regexp "^usage: ${1%%:*} "
}

# ---------------------------------------------------------------- -h

@test "-h of every tool: the SYNOPSIS of its man page, then one line per option, then the page" {
	command -v mandoc >/dev/null || skip "mandoc is not installed"
	local t opt
	for t in qsend qrecv qack qworker; do
		run --separate-stderr "$t" -h
		assert_success
		[[ -z $stderr ]] || fail "$t -h: stderr: $stderr"
		assert_lines_eq "$(synopsis_of_man "$MAN/$t.1" "$t")" \
		    "$(synopsis_of_text "$t")"
		assert_line "See $t(1)."
		# Every option of the synopsis has its line.
		for opt in -d -q -v --version; do
			assert_line --regexp "^  $opt[ ,]"
		done
		run --separate-stderr "$t" --help
		assert_success
		assert_line "See $t(1)."
	done
	run "qsend" -h
	assert_line --regexp '^  --dedup-id id +'
	run "qrecv" -h
	assert_line --regexp '^  -w duration +'
	run "qack" -h
	assert_line --regexp '^  --reject\[=reason\] +'
	run "qworker" -h
	assert_line --regexp '^  --slots count +'
}

@test "qadmin COMMAND -h and --help: its line of the SYNOPSIS of qadmin(1), its options, exit 0 on stdout" {
	command -v mandoc >/dev/null || skip "mandoc is not installed"
	local want c got
	want=$(mandoc -Tascii -O width=1000 "$MAN/qadmin.1" | col -b |
	    sed -n '/^SYNOPSIS/,/^DESCRIPTION/p' | sed '1d;$d' |
	    awk '/^ *qadmin / { if (l != "") print l; l = $0; next } /^ *$/ { next } { l = l " " $0 } END { print l }' |
	    sed -E 's/^[[:space:]]+//' | tr -s ' ')
	for c in $(awk '{ print $5 }' <<<"$want"); do
		run --separate-stderr qadmin "$c" -h
		assert_success
		[[ -z $stderr ]] || fail "qadmin $c -h: stderr: $stderr"
		got=$(synopsis_of_text qadmin)
		assert_equal "$got" "$(awk -v c="$c" '$5 == c' <<<"$want")"
		assert_line "See qadmin(1), Commands."
		(( ${#lines[@]} >= 4 )) || fail "qadmin $c -h: no option lines: $output"
	done
	run --separate-stderr qadmin stats --help
	assert_success
	assert_line --regexp '^  --prometheus +'
	assert_line --regexp '^  -o file +'
	run --separate-stderr qadmin redrive --json --help
	assert_success
	assert_line --regexp '^  --reason reason +'
	# After "--", -h is an operand.
	expect_fail 64 qadmin create -- -h
	refute_output --partial 'See qadmin(1)'
	run --separate-stderr qadmin -h
	assert_success
	assert_line "See qadmin(1)."
	assert_line --regexp '^  -n, --dry-run +'
}

# ------------------------------------------------------- usage errors

@test "qadmin: each usage error says what is wrong, then the synopsis of that one command" {
	local -a c
	local i
	local cases=(
		"create|create: missing queue name"
		"cat q|cat: missing message id"
		"cat|cat: missing queue name"
		"stats --bogus|stats: unrecognized option '--bogus'"
		"stats -x|stats: invalid option -- 'x'"
		"stats --json --prometheus|stats: --json and --prometheus: choose one"
		"stats -o f|stats: -o: only with --prometheus"
		"ls|ls: missing queue name"
		"ls q nostate|ls: nostate: not a state (ready, inflight, retry, dead, held, grouped)"
		"delete q|delete: missing message id"
		"move q|move: missing queue to move to"
		"destroy|destroy: missing queue name"
		"destroy q r|destroy: r: one queue at a time"
		"gc --tmp-age|gc: option '--tmp-age' requires an argument"
		"recover q r|recover: r: one queue only"
		"config q get|config: get: missing key"
		"config q frob|config: frob: unknown action (get, set or show)"
		"exchange|exchange: missing action (create, destroy, list or show)"
		"exchange frob|exchange: frob: unknown action (create, destroy, list or show)"
		"exchange create x|exchange: create: missing type (fanout, direct or topic)"
		"bind x|bind: missing queue name"
		"list q|list: q: list takes no operands"
		"redrive|redrive: missing queue name"
		"replay q r|replay: r: one queue only"
		"hold|hold: missing queue name"
		"retry-now q r|retry-now: r: one queue only"
	)
	mkq q
	for i in "${cases[@]}"; do
		read -ra c <<<"${i%%|*}"
		expect_fail 64 qadmin "${c[@]}"
		assert_usage_error qadmin "${i#*|}"
		assert_line --index 1 --regexp "^usage: qadmin \[-nqv\] \[-d root\] ${c[0]}( |\$)"
		# One command's synopsis, not all of them.
		[[ $(grep -c 'qadmin \[-nqv\]' <<<"$output") == 1 ]] ||
		    fail "qadmin ${i%%|*}: more than one synopsis: $output"
	done
	# Before a command is chosen, every command's synopsis.
	expect_fail 64 qadmin
	assert_line --index 0 "qadmin: missing command"
	expect_fail 64 qadmin frobnicate
	assert_line --index 0 "qadmin: frobnicate: unknown command"
	assert_line --regexp 'qadmin \[-nqv\] \[-d root\] unbind '
}

@test "qsend, qrecv, qack, qworker: each usage error says what is wrong, then the synopsis" {
	expect_fail 64 qworker -- true
	assert_usage_error qworker "missing queue name before --"
	expect_fail 64 qworker q --
	assert_usage_error qworker "missing command after --"
	expect_fail 64 qworker q true
	assert_usage_error qworker "missing -- before the command"
	expect_fail 64 qworker -x q -- true
	assert_usage_error qworker "invalid option -- 'x'"
	expect_fail 64 qack --delay 5s r
	assert_usage_error qack "--delay: only with --retry"
	expect_fail 64 qack --retry --reject r
	assert_usage_error qack "--retry, --reject and --touch: choose one"
	expect_fail 64 qack
	assert_usage_error qack "missing receipt (or - to read receipts from stdin)"
	expect_fail 64 qrecv
	assert_usage_error qrecv "missing queue name"
	expect_fail 64 qrecv q r
	assert_usage_error qrecv "r: one queue only"
	expect_fail 64 qrecv --raw q
	assert_usage_error qrecv "--raw: only with -A"
	expect_fail 64 qrecv --bogus q
	assert_usage_error qrecv "unrecognized option '--bogus'"
	expect_fail 64 qsend
	assert_usage_error qsend "missing queue name"
	expect_fail 64 qsend -f q
	assert_usage_error qsend "-f: missing file"
	expect_fail 64 qsend -l q x
	assert_usage_error qsend "-l: messages come from stdin, not operands"
	expect_fail 64 qsend -n q
	assert_usage_error qsend "invalid option -- 'n'"
}

@test "qbridge: each usage error says what is wrong, then the synopsis of its mode (in or out) alone" {
	local url=redis://127.0.0.1:1/s
	expect_fail 64 qbridge out --bogus q "$url"
	assert_usage_error qbridge "unrecognized option '--bogus'"
	assert_line --index 1 --regexp '^usage: qbridge out \[-qv\] '
	refute_output --partial 'qbridge in'
	expect_fail 64 qbridge in -x "$url" q
	assert_usage_error qbridge "invalid option -- 'x'"
	assert_line --index 1 --regexp '^usage: qbridge in \[-qv\] '
	refute_output --partial 'qbridge out'
	expect_fail 64 qbridge in "$url"
	assert_usage_error qbridge "missing url or queue"
	refute_output --partial 'qbridge out'
	expect_fail 64 qbridge out q "$url" extra
	assert_usage_error qbridge "too many arguments"
	refute_output --partial 'qbridge in'
	expect_fail 64 qbridge out --batch 0 q "$url"
	assert_usage_error qbridge "--batch 0: too small (from 1 to 1000)"
	refute_output --partial 'qbridge in'
	# Before the mode is known, both forms.
	expect_fail 64 qbridge -d "$SPOOLQ_DIR" out q "$url"
	assert_usage_error qbridge "-d: options come after in or out"
	assert_line --regexp '^ +qbridge in \[-qv\] '
	expect_fail 64 qbridge sideways q "$url"
	assert_usage_error qbridge "sideways: not in or out"
	expect_fail 64 qbridge
	assert_usage_error qbridge "missing in or out"
	assert_line --regexp '^ +qbridge in \[-qv\] '
}

@test "a bad option value: what is wrong in one line, then the synopsis of that one command, exit 64" {
	local -a c
	local i
	local cases=(
		"qrecv -n 0 q|qrecv: -n 0: too small (from 1 to 1000000000)"
		"qrecv -w -1 q|qrecv: -w -1: not a duration (like 500ms, 30s, 5m, 2h, 4d; bare: seconds)"
		"qrecv --lease 10ms q|qrecv: --lease 10ms: must be at least 1s"
		"qsend --delay 5x q|qsend: --delay 5x: not a duration (like 500ms, 30s, 5m, 2h, 4d; bare: seconds)"
		"qsend --at never q|qsend: --at never: not a time (@EPOCH or YYYY-MM-DDTHH:MM[:SS])"
		"qsend -H x q|qsend: -H x: not name=value"
		"qack --retry --delay soon r|qack: --delay soon: not a duration (like 500ms, 30s, 5m, 2h, 4d; bare: seconds)"
		"qworker -j 0 q -- true|qworker: -j 0: too small (from 1 to 1024)"
		"qadmin redrive --limit x q|qadmin: redrive: --limit x: invalid (from 1 to 9223372036854775807)"
		"qadmin gc --tmp-age 1y q|qadmin: gc: --tmp-age 1y: not a duration (like 500ms, 30s, 5m, 2h, 4d; bare: seconds)"
		"qadmin ls -n -3 q|qadmin: ls: -n -3: too small (from 1 to 1000000)"
		"qadmin create 'bad name'|qadmin: create: bad name: bad queue name (want [A-Za-z0-9][A-Za-z0-9._-]{0,127} or a path)"
	)
	mkq q
	for i in "${cases[@]}"; do
		eval "c=(${i%%|*})"
		expect_fail 64 "${c[@]}"
		assert_line --index 0 "${i#*|}"
		if [[ ${c[0]} == qadmin ]]; then
			assert_line --index 1 --regexp "^usage: qadmin \[-nqv\] \[-d root\] ${c[1]} "
			[[ $(grep -c 'qadmin \[-nqv\]' <<<"$output") == 1 ]] ||
			    fail "${i%%|*}: not one synopsis: $output"
		else
			assert_line --index 1 --regexp "^usage: ${c[0]} "
		fi
	done
	assert_count new q 0
}

@test "qadmin COMMAND -h: the option lines of a command align; ls and peek say which -n is which" {
	local c
	for c in $(qadmin -h | awk '$1 == "usage:" || $1 == "qadmin" { for (i = 1; i <= NF; i++) if ($i == "[-d") { print $(i + 2); break } }'); do
		run --separate-stderr qadmin "$c" -h
		assert_success
		# Every option line's text starts in the same column.
		sed -n '/^$/,/^$/p' <<<"$output" | grep '^  [^ ]' |
		    awk '{ s = $0; sub(/^  [^ ]+( [^ ]+)*  +/, "", s); print length($0) - length(s) }' |
		    sort -u | awk 'END { if (NR != 1) exit 1 }' ||
		    fail "qadmin $c -h: option text not aligned: $output"
		assert_line --regexp '^  -d, -n, -q, -v +before the command: as for every command \(qadmin -h\)'
	done
	for c in exchange gc redrive; do
		run qadmin "$c" -h
		[[ $output != *"  -d, -n, -q, -v  as"* ]] || fail "$c: $output"
	done
	run qadmin ls -h
	assert_line --regexp '^ +-n before the command is --dry-run; -n count after it, the count$'
}

@test "qadmin create: a path that does not end in a name is refused with a reason; -- ends the options" {
	expect_fail 64 qadmin create /
	assert_usage_error qadmin "create: /: a queue path must end in a directory name"
	assert_line --index 1 "usage: qadmin [-nqv] [-d root] create queue [key=value ...]"
	assert_equal "${#lines[@]}" 2
	expect_fail 64 qadmin create "$T/x/.."
	assert_output --partial 'must end in a directory name'
	# "--": what follows is the queue, checked as a name, not an option.
	expect_fail 64 qadmin create -- -dash
	assert_output --partial -- '-dash: bad queue name'
	run qadmin create -- "$T/-dash"
	assert_success
	assert_dir_exists "$T/-dash/new"
}

# --------------------------------------------------- the spool root

@test "a spool root that does not exist: 66 from every tool, but create and qsend -c make it" {
	local typo=$T/typo
	expect_fail 66 qadmin -d "$typo" list
	assert_output "qadmin: list: $typo: no such spool root"
	expect_fail 66 qadmin -d "$typo" stats
	assert_output "qadmin: stats: $typo: no such spool root"
	expect_fail 66 qadmin -d "$typo" stats --prometheus
	expect_fail 66 qadmin -d "$typo" exchange list
	expect_fail 66 qadmin -d "$typo" stats jobs
	assert_output "qadmin: stats: jobs: no such queue (no spool root $typo)"
	expect_fail 66 qadmin -d "$typo" gc jobs
	expect_fail 66 qsend -d "$typo" jobs x
	assert_output "qsend: jobs: no such queue (no spool root $typo)"
	expect_fail 66 qrecv -d "$typo" jobs
	assert_output "qrecv: jobs: no such queue (no spool root $typo)"
	expect_fail 66 qworker -d "$typo" --drain jobs -- true
	assert_output "qworker: jobs: no such queue (no spool root $typo)"
	expect_fail 66 qbridge out -d "$typo" jobs redis://127.0.0.1:1/s
	assert_output "qbridge: jobs: no such queue (no spool root $typo)"
	expect_fail 66 qbridge in -d "$typo" redis://127.0.0.1:1/s jobs
	assert_output "qbridge: jobs: no such queue (no spool root $typo)"
	# qack takes receipts (paths); a -d given must still exist.
	mkq q
	qsend q x
	local r
	r=$(qrecv q)
	expect_fail 66 qack -d "$typo" "$r"
	assert_output "qack: $typo: no such spool root"
	assert_count cur q 1
	# A path queue needs no root, but a -d given must exist.
	expect_fail 66 qrecv -d "$typo" "$SPOOLQ_DIR/q"
	assert_output "qrecv: $typo: no such spool root"
	# The default root (SPOOLQ_DIR) too.
	SPOOLQ_DIR=$typo run qadmin list
	assert_failure 66
	[[ ! -e $typo ]] || fail "$typo was made"
	# create and qsend -c make the root.
	run qsend -d "$typo" -c jobs hello
	assert_success
	assert_count new "$typo/jobs" 1
	run qadmin -d "$T/typo2" create jobs
	assert_success
	assert_dir_exists "$T/typo2/jobs/new"
	run qadmin -d "$T/typo3" exchange create ex fanout
	assert_success
	# An empty root is no error: no queues.
	mkdir "$T/empty"
	run --separate-stderr qadmin -d "$T/empty" list
	assert_success
	assert_output $'QUEUE\tREADY\tINFLIGHT\tRETRY\tDEAD\tSTATUS'
}

# ------------------------------------------------------- held queues

@test "a held queue is shown as held by list and stats (text, JSON, Prometheus); -v says so in qrecv, qworker and qbridge out" {
	mkq jobs
	mkq other
	qsend jobs a b
	qadmin hold jobs
	run --separate-stderr qadmin list
	assert_success
	assert_line $'jobs\t2\t0\t0\t0\theld'
	assert_line $'other\t0\t0\t0\t0\tok'
	run --separate-stderr qadmin stats jobs
	assert_success
	assert_line --index 0 'jobs (held: nothing is claimed until qadmin release)'
	run --separate-stderr qadmin stats other
	assert_line --index 0 'other'
	run --separate-stderr qadmin stats --json
	assert_success
	assert_equal "$(jq -r '.queues[] | select(.name == "jobs") | .status' <<<"$output")" held
	assert_equal "$(jq -r '.queues[] | select(.name == "other") | .status' <<<"$output")" ok
	assert_equal "$(jq -r '.queues[] | select(.name == "jobs") | .ready.count' <<<"$output")" 2
	run --separate-stderr qadmin stats --prometheus
	assert_success
	assert_line 'spoolq_queue_held{queue="jobs"} 1'
	assert_line 'spoolq_queue_held{queue="other"} 0'
	assert_line '# TYPE spoolq_queue_held gauge'
	# The consumers claim nothing, and with -v say why.
	run --separate-stderr qrecv -v jobs
	assert_failure 1
	assert_equal "$stderr" "qrecv: jobs: the queue is held: nothing is claimed until qadmin release"
	run --separate-stderr qrecv jobs
	assert_failure 1
	assert_equal "$stderr" ""
	run --separate-stderr qworker -v --drain jobs -- cat
	assert_success
	assert_equal "$stderr" "qworker: jobs: the queue is held: nothing is claimed until qadmin release"
	assert_count new jobs 2
	# Nothing to carry out of a held queue: drained before any broker.
	run --separate-stderr qbridge out -v --drain jobs redis://127.0.0.1:1/s
	assert_success
	assert_equal "$stderr" "qbridge: jobs: the queue is held: nothing is claimed until qadmin release"
	run --separate-stderr qbridge out --drain jobs redis://127.0.0.1:1/s
	assert_success
	assert_equal "$stderr" ""
	assert_count new jobs 2
	qadmin release jobs
	run --separate-stderr qadmin list
	assert_line $'jobs\t2\t0\t0\t0\tok'
	run --separate-stderr qrecv -v jobs
	assert_success
	assert_equal "$stderr" ""
}

# ----------------------------------------------------- broken queues

@test "a broken queue.conf: list and stats of all queues show the queue as broken with the reason, and exit 78" {
	mkq good
	mkq bad
	qsend good x
	printf '[queue]\nlease = forever\n' > "$SPOOLQ_DIR/bad/queue.conf"
	run --separate-stderr qadmin list
	assert_failure 78
	assert_line --index 0 $'QUEUE\tREADY\tINFLIGHT\tRETRY\tDEAD\tSTATUS'
	assert_line $'bad\t-\t-\t-\t-\tbroken'
	assert_line $'good\t1\t0\t0\t0\tok'
	[[ $stderr == "qadmin: list: $SPOOLQ_DIR/bad/queue.conf:2: lease"* ]] ||
	    fail "stderr: $stderr"
	run --separate-stderr qadmin stats
	assert_failure 78
	assert_line --index 0 bad
	assert_line --index 1 --regexp "^  broken +$SPOOLQ_DIR/bad/queue.conf:2: lease"
	assert_line good
	run --separate-stderr qadmin stats --json
	assert_failure 78
	assert_equal "$(jq -r '.queues[] | select(.name == "bad") | .status' <<<"$output")" broken
	assert_equal "qadmin: stats: $(jq -r '.queues[] | select(.name == "bad") | .reason' <<<"$output")" \
	    "$stderr"
	assert_equal "$(jq -r '.queues[] | select(.name == "good") | .ready.count' <<<"$output")" 1
	# Prometheus: the flag, and the file is still written for the others.
	run --separate-stderr qadmin stats --prometheus -o "$T/spoolq.prom"
	assert_failure 78
	grep -qx 'spoolq_queue_broken{queue="bad"} 1' "$T/spoolq.prom" ||
	    fail "no broken flag: $(cat "$T/spoolq.prom")"
	grep -qx 'spoolq_queue_broken{queue="good"} 0' "$T/spoolq.prom"
	grep -qx 'spoolq_messages{queue="good",state="ready"} 1' "$T/spoolq.prom"
	! grep -q 'spoolq_messages{queue="bad"' "$T/spoolq.prom" ||
	    fail "metrics of a queue that could not be read"
	# Mended, it is listed as ok again.
	printf '[queue]\nlease = 5m\n' > "$SPOOLQ_DIR/bad/queue.conf"
	run --separate-stderr qadmin list
	assert_success
	assert_line $'bad\t0\t0\t0\t0\tok'
}

@test "a missing or replaced state directory: list and stats show the queue as broken with the directory and reason, exit 66; the tools name them" {
	mkq good
	mkq nocur
	mkq linked
	qsend good x
	rmdir "$SPOOLQ_DIR/nocur/cur"
	rmdir "$SPOOLQ_DIR/linked/new"
	mkdir "$T/elsewhere"
	ln -s "$T/elsewhere" "$SPOOLQ_DIR/linked/new"
	mkdir "$SPOOLQ_DIR/notaqueue"		# nothing of a queue: not listed
	run --separate-stderr qadmin list
	assert_failure 66
	assert_line --index 0 $'QUEUE\tREADY\tINFLIGHT\tRETRY\tDEAD\tSTATUS'
	assert_line --index 1 $'good\t1\t0\t0\t0\tok'
	assert_line --index 2 $'linked\t-\t-\t-\t-\tbroken'
	assert_line --index 3 $'nocur\t-\t-\t-\t-\tbroken'
	assert_equal "${#lines[@]}" 4
	assert_equal "$stderr" "qadmin: list: linked/new: not a directory (symlink)
qadmin: list: nocur/cur: No such file or directory"
	run --separate-stderr qadmin stats
	assert_failure 66
	assert_line linked
	assert_line --regexp '^  broken +linked/new: not a directory \(symlink\)$'
	assert_line nocur
	assert_line --regexp '^  broken +nocur/cur: No such file or directory$'
	run --separate-stderr qadmin stats --json
	assert_failure 66
	assert_equal "$(jq -r '.queues[] | select(.name == "nocur") | .reason' <<<"$output")" \
	    "nocur/cur: No such file or directory"
	run --separate-stderr qadmin stats --prometheus
	assert_failure 66
	assert_line 'spoolq_queue_broken{queue="nocur"} 1'
	assert_line 'spoolq_queue_broken{queue="linked"} 1'
	assert_line 'spoolq_queue_broken{queue="good"} 0'
	run --separate-stderr qsend nocur x
	assert_failure 66
	assert_equal "$stderr" "qsend: nocur/cur: No such file or directory"
	run --separate-stderr qsend linked x
	assert_failure 66
	assert_equal "$stderr" "qsend: linked/new: not a directory (symlink)"
	assert_equal "$(ls "$T/elsewhere")" ""
	run --separate-stderr qrecv nocur
	assert_failure 66
	assert_equal "$stderr" "qrecv: nocur/cur: No such file or directory"
	run --separate-stderr qsend notaqueue x
	assert_failure 66
	assert_equal "$stderr" "qsend: notaqueue: not a queue ($SPOOLQ_DIR/notaqueue)"
	# Mended by check --repair, it is listed as ok again.
	qadmin check --repair nocur >/dev/null 2>&1 || true
	run --separate-stderr qadmin list
	assert_line $'nocur\t0\t0\t0\t0\tok'
}

@test "stats of named queues, one broken: the others are reported, the broken one shown as broken in every form, exit 66 or 78" {
	mkq a
	mkq b
	qsend b one
	rmdir "$(qdir a)/cur"
	run --separate-stderr qadmin stats a b
	assert_equal "$status" 66
	assert_line --index 0 a
	assert_line --index 1 --regexp '^  broken +a/cur: No such file or directory$'
	assert_line --regexp '^  ready +1 +3 '
	assert_equal "$stderr" "qadmin: stats: a/cur: No such file or directory"
	run --separate-stderr qadmin stats --json a b
	assert_equal "$status" 66
	assert_equal "$(jq -r '.queues[0].status, .queues[0].reason, .queues[1].status, .queues[1].ready.count' <<<"$output")" \
	    $'broken\na/cur: No such file or directory\nok\n1'
	run --separate-stderr qadmin stats --prometheus -o "$T/spool.prom" a b
	assert_equal "$status" 66
	run -0 grep -E '^spoolq_queue_broken|^spoolq_messages\{queue="b",state="ready"\}' "$T/spool.prom"
	assert_line 'spoolq_queue_broken{queue="a"} 1'
	assert_line 'spoolq_queue_broken{queue="b"} 0'
	# A bad queue.conf: 78, the same way.
	mkq c
	echo 'lease = forever' > "$(qdir c)/queue.conf"
	run --separate-stderr qadmin stats c b
	assert_equal "$status" 78
	assert_line --index 1 --regexp '^  broken +.*queue\.conf:1: lease: '
	# A queue that does not exist is still an error of its own.
	run --separate-stderr qadmin stats nope b
	assert_equal "$status" 66
	assert_output ''
	assert_equal "$stderr" "qadmin: stats: nope: no such queue"
}

# ------------------------------------------------------ echoed input

# assert_short_echo: $stderr is one line of at most 200 bytes that echoes
# the input cut at 64 bytes and marked "..." (ECHO_TAIL: what the cut
# echo ends in), with control bytes as \ooo.
assert_short_echo() {
	local first=${stderr%%$'\n'*}
	(( ${#first} <= 200 )) || fail "error line of ${#first} bytes: ${first:0:120}"
	[[ $first == *"$ECHO_TAIL..."* ]] || fail "no cut echo in: $first"
	! [[ $first =~ x{65} ]] || fail "more than 64 bytes echoed: $first"
	[[ $first != *$'\e'* ]] || fail "raw escape echoed: $first"
}

@test "usage: a huge bad argument is echoed cut to 64 bytes, made safe, in every tool" {
	mkq q
	local big esc
	big=$(printf 'x%.0s' {1..5000})
	esc=$'\e[31m'$big
	ECHO_TAIL=x
	for cmd in "qack $big" "qack $(qdir q)/cur/$big" "qsend $big x" \
	    "qrecv $big" "qrecv -w $big q" "qadmin ls $big" "qadmin $big" \
	    "qadmin config q get $big" "qadmin config q set $big=1" \
	    "qadmin cat q $big" "qadmin delete q $big" "qworker $big -- true" \
	    "qsend --at $big q x" "qsend -H $big q x" "qack --reject=$big x" \
	    "qadmin ls q $big" "qworker -j $big q -- true" "qbridge $big q u" \
	    "qbridge -$big out q u"; do
		run --separate-stderr $cmd
		refute_crash
		(( status != 0 )) || fail "$cmd: exit 0"
		assert_short_echo
	done
	# Control bytes are shown as \ooo, not sent to the terminal.
	ECHO_TAIL='qack: \033[31m'$(printf 'x%.0s' {1..59})
	run --separate-stderr qack "$esc"
	assert_equal "$status" 65
	assert_short_echo
}
