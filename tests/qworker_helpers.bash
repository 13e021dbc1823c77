# qworker_helpers.bash - running qworker in a test and reading its log:
# work, start_worker, wait_worker, and the outcome-line assertions.
# Load after helpers.bash.

# qworker_setup: spoolq_setup, and fail unless qworker is built.
qworker_setup() {
	spoolq_setup
	[[ -x $SPOOLQ_BIN/qworker ]] ||
	    fail "$SPOOLQ_BIN/qworker: not built (run make first)"
	WPID=
}

# kill_pgids: kill the process groups whose leaders' pids the jobs of a
# test wrote to $T/pgids (jobs that may outlive the test).
kill_pgids() {
	local p
	[[ -s $T/pgids ]] || return 0
	for p in $(cat "$T/pgids"); do
		kill -9 -- "-$p" 2>/dev/null || true
	done
}
# work ARGS...: `run` qworker ARGS under a 30 s timeout.  Its stdout (the
# jobs' stdout) is in $output, its stderr in $stderr and in $T/log.
work() {
	run --separate-stderr timeout 30 qworker "$@"
	printf '%s\n' "$stderr" >"$T/log"
	(( status != 124 )) || fail "qworker hung (killed after 30 s): qworker $*"
	refute_crash
}

# start_worker ARGS...: qworker ARGS in the background; stdout in
# $T/wout, stderr in $T/wlog, pid in $WPID.
start_worker() {
	qworker "$@" >"$T/wout" 2>"$T/wlog" 3>&- &
	WPID=$!
}

# exited PID: the process is gone or a zombie (a child not yet reaped).
exited() {
	local st
	st=$(ps -o stat= -p "$1" 2>/dev/null) || return 0
	[[ $st == Z* ]]
}

# wait_worker [SECONDS]: wait (default 10 s) for $WPID to end; its exit
# status in $wstatus.
wait_worker() {
	wait_for -t "${1:-10}" exited "$WPID"
	wstatus=0
	wait "$WPID" || wstatus=$?
	(( wstatus < 128 )) || fail "qworker crashed: status $wstatus: $(cat "$T/wlog")"
}

# re_escape STRING: STRING as a literal in an extended regular expression.
re_escape() {
	sed 's/[][\.*^$+?(){}|/]/\\&/g' <<<"$1"
}

# log_re ID ATTEMPT OUTCOME [QUEUE]: the regex of one outcome line,
# "qworker: ID QUEUE ATTEMPT OUTCOME DURATION".
log_re() {
	printf '^qworker: %s %s %s %s [0-9]+\\.[0-9]+s$' "$(re_escape "$1")" \
	    "$(re_escape "${4:-q}")" "$2" "$(re_escape "$3")"
}

# assert_logged FILE ID ATTEMPT OUTCOME [QUEUE]: FILE has exactly one such
# outcome line.
assert_logged() {
	local file=$1 n
	shift
	n=$(grep -cE "$(log_re "$@")" "$file") || true
	[[ $n == 1 ]] || fail "expected one log line 'qworker: $1 ${4:-q} $2 $3 D.DDDs'," \
	    "found $n in:"$'\n'"$(cat "$file")"
}

# outcome_lines FILE: the number of outcome lines in a qworker log.
outcome_lines() {
	local n
	n=$(grep -cE '^qworker: [^ ]+ [^ ]+ [0-9]+ (ack|retry:[a-z]+(=[0-9]+)?|dead:[a-z0-9-]+|released) [0-9]+\.[0-9]+s$' "$1") || true
	echo "${n:-0}"
}

# logged_duration FILE ID ATTEMPT: seconds of that outcome line.
logged_duration() {
	grep -E "^qworker: $(re_escape "$2") [^ ]+ $3 " "$1" | awk '{ sub(/s$/, "", $6); print $6 }'
}

# failure ID [QUEUE]: the path of the failure record of a message.
failure() {
	printf '%s/attr/%s.failure\n' "$(qdir "${2:-q}")" "$1"
}

# assert_empty_queue QUEUE: nothing in new/, cur/, retry/ or dead/.
assert_empty_queue() {
	local s
	for s in new cur retry dead; do
		assert_count "$s" "$1" 0
	done
}

# assert_field NAME KEY VALUE
assert_field() {
	local v
	v=$(field "$1" "$2") || fail "no $2= field in $1"
	[[ $v == "$3" ]] || fail "expected $2=$3 in $1"
}
