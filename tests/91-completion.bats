#!/usr/bin/env bats
# Shell completion (completion/): bash completes options, qadmin
# commands, queue and exchange names from the spool root the tool would
# use, states, reasons, queue.conf keys and durations; zsh loads the same;
# make install puts both where bash-completion and zsh look.

load helpers

setup() {
	spoolq_setup
	TOP=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
	source "$TOP/completion/spoolq.bash"
	qadmin create jobs
	qadmin create mail
	qadmin exchange create events fanout
}

teardown() { spoolq_teardown; }

# comp WORD...: what bash offers for the last WORD (the cursor is at its
# end), sorted, one a line, in $output and $lines.  Bash runs completion
# functions without errexit; so does comp.
comp() {
	local COMP_WORDS=("$@") COMP_CWORD=$(($# - 1)) COMPREPLY=() f
	# The function that complete -p names for the tool, as bash calls it.
	f=$(complete -p "$1")
	f=${f#*-F }
	set +e
	"${f%% *}" 2>"$T/comp.err"
	set -e
	[[ ! -s $T/comp.err ]] || fail "completion wrote: $(cat "$T/comp.err")"
	output=$(printf '%s\n' "${COMPREPLY[@]}" | sort)
	[[ -n ${COMPREPLY[*]} ]] || output=
	lines=()
	[[ -z $output ]] || mapfile -t lines <<<"$output"
}

# offers WORD... :: EXPECTED...: comp offers exactly EXPECTED.
offers() {
	local -a w=()
	while [[ $1 != :: ]]; do
		w+=("$1")
		shift
	done
	shift
	comp "${w[@]}"
	assert_equal "$output" "$(printf '%s\n' "$@" | sort)"
}

@test "completion: bash registers one function for every tool" {
	for t in qsend qrecv qack qworker qbridge qadmin; do
		run complete -p "$t"
		assert_success
		assert_output "complete -F _spoolq $t"
	done
}

@test "completion: queue names, and exchanges where a message can go" {
	offers qrecv '' :: jobs mail
	offers qrecv j :: jobs
	offers qsend '' :: jobs mail events
	offers qsend -k x --delay 5s e :: events
	offers qworker -j 2 '' :: jobs mail
	offers qadmin stats jobs '' :: jobs mail
	offers qadmin bind '' :: events
	offers qadmin bind events '' :: jobs mail
	offers qadmin exchange show '' :: events
	# qbridge: its direction, then the queue where it goes.
	offers qbridge '' :: in out
	offers qbridge out '' :: jobs mail
	offers qbridge out -q --batch 10 j :: jobs
	offers qbridge in redis://db/jobs '' :: jobs mail
	# Not for a new name, nor after the last operand.
	offers qadmin exchange create '' ::
	offers qadmin check jobs '' ::
	offers qrecv jobs '' ::
	offers qbridge out jobs '' ::
	offers qbridge in '' ::
}

@test "completion: the spool root is -d, else SPOOLQ_DIR, else the default" {
	mkdir -p "$T/other/billing/new" "$T/other/notaqueue"
	offers qrecv -d "$T/other" '' :: billing
	offers qrecv -d"$T/other" '' :: billing
	offers qadmin -d "$T/other" ls '' :: billing
	SPOOLQ_DIR=$T/other offers qrecv '' :: billing
	SPOOLQ_DIR=$T/none offers qrecv '' ::
	# A ~ at the start is the home directory.
	mkdir -p "$T/home/sp/tildeq/new"
	HOME=$T/home SPOOLQ_DIR='~/sp' offers qrecv '' :: tildeq
	# No -d and no SPOOLQ_DIR: /var/spool/spoolq for root, else the
	# XDG state directory.
	mkdir -p "$T/xdg/spoolq/xdgq/new"
	local d want=
	if ((EUID == 0)); then
		for d in /var/spool/spoolq/*/new; do
			[[ -d $d ]] && d=${d%/new} && want+=" ${d##*/}"
		done
	else
		want=xdgq
	fi
	(
		unset SPOOLQ_DIR
		export XDG_STATE_HOME=$T/xdg
		offers qrecv '' :: $want
	)
}

@test "completion: qadmin commands, their options and operands" {
	comp qadmin ''
	assert_equal "$(wc -l <<<"$output")" 22
	assert_line stats
	assert_line retry-now
	assert_line exchange
	offers qadmin re :: recover redrive release replay retry-now
	offers qadmin - :: -d -h -n -q -v --dry-run --help --version
	# After the command, only its own options: -d, -n, -q and -v go
	# before it (qadmin ls -d ROOT is a usage error; ls -n is a count).
	offers qadmin stats - :: -h --help --age --json --prometheus -o
	offers qadmin ls - :: -h --help --json -n
	offers qadmin list - :: -h --help
	offers qadmin list -- :: --help
	offers qadmin ls jobs '' :: ready inflight retry dead held grouped
	offers qadmin purge jobs dead r :: ready retry
	offers qadmin redrive --reason '' :: attempts expired rejected timeout overflow
	offers qadmin redrive --reason=r :: --reason=rejected
	offers qadmin redrive --reason = r :: rejected
	offers qadmin redrive --to '' :: jobs mail
	offers qadmin exchange '' :: create destroy list show
	offers qadmin exchange create x '' :: direct fanout topic
	offers qadmin config jobs '' :: get set show
	offers qadmin config jobs get retry :: retry_delay retry_max_delay
	offers qadmin config jobs set lease=5m max_a :: max_attempts=
	offers qadmin list '' ::
}

@test "completion: values after qadmin config QUEUE set KEY= and create QUEUE KEY=" {
	local all=(500ms 10s 30s 1m 5m 15m 30m 1h 2h 6h 12h 1d 4d 7d)
	offers qadmin config jobs set lease= :: "${all[@]/#/lease=}"
	offers qadmin config jobs set retry_delay=3 :: retry_delay=3ms \
	    retry_delay=3s retry_delay=3m retry_delay=3h retry_delay=3d
	offers qadmin config jobs set durability= :: durability=none durability=fsync
	offers qadmin config jobs set overflow= :: overflow=reject \
	    overflow=block overflow=drop-oldest
	offers qadmin config jobs set overflow=d :: overflow=drop-oldest
	offers qadmin config jobs set archive= :: archive=yes archive=no
	offers qadmin config jobs set max_bytes=10 :: max_bytes=10k \
	    max_bytes=10M max_bytes=10G max_bytes=10T
	offers qadmin config jobs set min_free_disk= :: min_free_disk=64k \
	    min_free_disk=1M min_free_disk=10M min_free_disk=100M \
	    min_free_disk=1G min_free_disk=10G
	# Numbers: nothing to offer.
	offers qadmin config jobs set max_attempts= ::
	# After another setting, and as readline splits words at "=".
	offers qadmin config jobs set ttl=1h archive=n :: archive=no
	offers qadmin config jobs set overflow = b :: block
	offers qadmin config jobs set durability = '' :: none fsync
	# qadmin create takes the same settings after the new queue's name.
	offers qadmin create new '' :: max_attempts= lease= retry_delay= \
	    retry_max_delay= ttl= durability= job_timeout= dedup_window= \
	    max_messages= max_bytes= overflow= min_free_disk= archive= \
	    retention= retention_bytes= poll_interval= rate= dead_letter=
	offers qadmin create new lease=5m overflow=r :: overflow=reject
	offers qadmin create new poll_interval=2 :: poll_interval=2ms \
	    poll_interval=2s poll_interval=2m poll_interval=2h poll_interval=2d
	offers qadmin create '' ::
}

# help_opts TOOL [COMMAND]: the options TOOL -h (or qadmin COMMAND -h)
# lists, one a line.
help_opts() {
	"$SPOOLQ_BIN/$1" "${@:2}" -h 2>&1 | grep -v 'before the command' |
	    sed -nE 's/^  (-[^ ]+(, -[^ ]+)*).*/\1/p' | tr -d , | tr ' ' '\n' |
	    sed -E 's/(\[|=).*//' | grep -v '^-$'
}

# man_opts TOOL: the long options TOOL's man page names in its SYNOPSIS
# and its option lists (.It Fl), one a line.
man_opts() {
	awk '/^\.Sh / { syn = ($2 == "SYNOPSIS") } syn || /^\.It /' \
	    "$TOP/man/$1.1" | grep -oE 'Fl -[a-z][-a-z0-9]*' |
	    sed 's/^Fl /-/' | sort -u
}

# offered OPTION: OPTION (or OPTION=) is among what comp offered.
offered() {
	grep -qxE -- "$1=?" <<<"$output"
}

@test "completion: every option of every tool's -h and man page, and every qadmin command" {
	local t o c n=0
	for t in qsend qrecv qack qworker qbridge; do
		# qbridge takes its options after its direction, in or out.
		if [[ $t == qbridge ]]; then
			comp qbridge out -
		else
			comp "$t" -
		fi
		for o in $(help_opts "$t") $(man_opts "$t"); do
			n=$((n + 1))
			offered "$o" || fail "$t: $o is not completed"
			grep -qF -- "$o" "$TOP/completion/_spoolq" ||
			    fail "$t: $o is not in the zsh completion"
		done
	done
	((n > 60))
	# qadmin: its own options, its commands, each command's options.
	comp qadmin -
	for o in $(help_opts qadmin); do
		offered "$o" || fail "qadmin: $o is not completed"
	done
	local all=$output cmds
	cmds=$("$SPOOLQ_BIN/qadmin" -h |
	    sed -nE 's/^(usage:| +) qadmin \[-nqv\] \[-d root\] ([a-z-]+).*/\2/p')
	(($(wc -l <<<"$cmds") >= 22))
	comp qadmin ''
	for c in $cmds; do
		offered "$c" || fail "qadmin: command $c is not completed"
		grep -qE "^	    '$c:" "$TOP/completion/_spoolq" ||
		    fail "qadmin: command $c is not in the zsh completion"
	done
	for c in $cmds; do
		comp qadmin "$c" -
		all+=$'\n'$output
		for o in $(help_opts qadmin "$c"); do
			offered "$o" || fail "qadmin $c: $o is not completed"
		done
	done
	output=$all
	for o in $(man_opts qadmin); do
		offered "$o" || fail "qadmin: $o of qadmin(1) is not completed"
		grep -qF -- "$o" "$TOP/completion/_spoolq" ||
		    fail "qadmin: $o is not in the zsh completion"
	done
}

@test "completion: durations after every option that takes one" {
	local all=(500ms 10s 30s 1m 5m 15m 30m 1h 2h 6h 12h 1d 4d 7d)
	offers qsend --delay '' :: "${all[@]}"
	offers qsend jobs --ttl 5 :: 5ms 5s 5m 5h 5d
	offers qsend --timeout=3 :: --timeout=3ms --timeout=3s --timeout=3m \
	    --timeout=3h --timeout=3d
	offers qsend --ttl = 3 :: 3ms 3s 3m 3h 3d
	offers qrecv --lease 1 :: 1ms 1s 1m 1h 1d
	offers qack --retry --delay 2 :: 2ms 2s 2m 2h 2d
	offers qack --touch 1 :: 1ms 1s 1m 1h 1d
	offers qworker -t 4 :: 4ms 4s 4m 4h 4d
	offers qworker --grace 4 :: 4ms 4s 4m 4h 4d
	offers qbridge in --timeout 6 :: 6ms 6s 6m 6h 6d
	offers qadmin gc --tmp-age 9 :: 9ms 9s 9m 9h 9d
	offers qadmin redrive --older-than 9 :: 9ms 9s 9m 9h 9d
	# and sizes
	offers qworker --output-max 2 :: 2k 2M 2G 2T
	offers qworker --output-max=2 :: --output-max=2k --output-max=2M \
	    --output-max=2G --output-max=2T
}

@test "completion: options of each tool, files and commands where they go" {
	offers qsend --d :: --dedup-id --delay
	offers qrecv --r :: --raw
	offers qack --re :: --reject --reject= --retry
	offers qack --reject=e :: --reject=expired
	offers qworker --o :: --output --output-age --output-max
	: >"$T/receipt-1"
	: >"$T/message.txt"
	offers qack "$T/rec" :: "$T/receipt-1"
	offers qsend -f jobs "$T/mes" :: "$T/message.txt"
	# After --, qworker completes a command, then its arguments.
	comp qworker jobs -- trues
	assert_output ''
	comp qworker jobs -- tru
	assert_line true
	offers qworker jobs -- sh "$T/mes" :: "$T/message.txt"
}

@test "completion: zsh loads _spoolq for every tool, and it lists the root" {
	command -v zsh >/dev/null || fail "zsh: not installed (.ci/deps test)"
	run zsh -n "$TOP/completion/_spoolq"
	assert_success
	cp "$TOP/completion/_spoolq" "$T/"
	run zsh -fc 'zcompile -U "$1"' zsh "$T/_spoolq"
	assert_success
	assert_file_exists "$T/_spoolq.zwc"
	run zsh -fc 'fpath=("$1" $fpath); autoload -U compinit; compinit -u -D
	    print -r -- $_comps[qsend] $_comps[qrecv] $_comps[qack] \
	        $_comps[qworker] $_comps[qadmin]' zsh "$TOP/completion"
	assert_success
	assert_output '_spoolq _spoolq _spoolq _spoolq _spoolq'
	# The helpers, with _describe reduced to printing what it is given.
	mkdir -p "$T/other/billing/new"
	run zsh -fc '_describe() { [[ $1 == -t ]] && shift 2; print -r -- ${(P)2} }
	    source "$1"
	    words=(qadmin ls ""); CURRENT=3; _spoolq_queues; _spoolq_exchanges
	    words=(qrecv -d "$2" ""); CURRENT=4; _spoolq_queues
	    PREFIX=5 _spoolq_durations
	    # compset as zsh runs it: take KEY= off PREFIX into IPREFIX.
	    compset() { [[ $PREFIX == *=* ]] || return 1
		IPREFIX=${PREFIX%%=*}= PREFIX=${PREFIX#*=}; }
	    _message() { print -r -- "($1)"; }
	    PREFIX=overflow=d _spoolq_setting
	    PREFIX=lease=3 _spoolq_setting
	    PREFIX=max_bytes=1 _spoolq_setting
	    PREFIX=archive= _spoolq_setting
	    PREFIX=max_attempts= _spoolq_setting
	    PREFIX=ma _spoolq_setting' zsh "$TOP/completion/_spoolq" "$T/other"
	assert_success
	assert_output "jobs mail
events
billing
5ms 5s 5m 5h 5d
reject block drop-oldest
3ms 3s 3m 3h 3d
1k 1M 1G 1T
yes no
(number)
max_attempts lease retry_delay retry_max_delay ttl durability job_timeout dedup_window max_messages max_bytes overflow min_free_disk archive retention retention_bytes poll_interval rate dead_letter"
}

@test "completion: make install puts them where bash-completion and zsh look" {
	run env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS make -C "$TOP" -o all \
	    install-extras DESTDIR="$T/root" PREFIX=/usr
	assert_success
	local c=$T/root/usr/share/bash-completion/completions
	assert_file_exists "$T/root/usr/share/zsh/vendor-completions/_spoolq"
	for t in qsend qrecv qack qworker qbridge qadmin; do
		assert_file_exists "$c/$t"
		# The bash-completion loader finds each tool's file by its name.
		run env XDG_DATA_DIRS="$T/root/usr/share" bash -c '
		    . /usr/share/bash-completion/bash_completion
		    __load_completion "$1" && complete -p "$1"' bash "$t"
		assert_success
		assert_output "complete -F _spoolq $t"
	done
}
