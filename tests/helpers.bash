# helpers.bash - common set-up and assertions for the spoolq bats suites.
#
# Every test gets a private spool root, $SPOOLQ_DIR, under its own
# $BATS_TEST_TMPDIR.  The binaries under test come from $SPOOLQ_BIN (a
# directory: the build tree, an installed prefix, an ASan build), which is
# put first on PATH, so tests call plain `qsend`, `qrecv`, `qack`, `qadmin`.
#
# Sanitizer reports are sent to files in the test's directory (log_path) and
# make the test fail in teardown, so a report is caught even from a command
# run in the background or inside $(...).  refute_crash is the check for a
# `run` whose failure is expected: a failure must be a clean exit, never a
# signal or a sanitizer report.
#
# Each .bats file starts with
#	load helpers
#	setup() { spoolq_setup; }
#	teardown() { spoolq_teardown; }

bats_require_minimum_version 1.5.0

# bats_lib LIB: what "load /usr/lib/bats/LIB/load" does, without the
# dirname(1) process its load.bash starts for each file it sources: bats
# loads this file anew for every test, and those 17 processes were most
# of a test's own cost.  A load.bash of another shape is loaded as it is.
bats_lib() {
	local dir=/usr/lib/bats/$1 l srcs=()
	local pre='source "$(dirname "${BASH_SOURCE[0]}")/'
	while IFS= read -r l; do
		case $l in
		'#'* | '') ;;
		"$pre"*'"') l=${l#"$pre"} srcs+=("$dir/${l%'"'}") ;;
		*)
			load "$dir/load"
			return
			;;
		esac
	done <"$dir/load.bash"
	for l in "${srcs[@]}"; do
		source "$l" || return
	done
}
bats_lib bats-support
bats_lib bats-assert
bats_lib bats-file

# Seconds a wait_for loop may take before it fails the test.
SPOOLQ_WAIT_TIMEOUT=${SPOOLQ_WAIT_TIMEOUT:-10}

# ID as made by spoolq: seconds.nanoseconds.pid_counter_random.host
ID_RE='[0-9]{10}\.[0-9]{9}\.[0-9]+_[0-9]+_[0-9a-f]{8}\.[A-Za-z0-9-]+'

spoolq_setup() {
	local bin=${SPOOLQ_BIN:-$BATS_TEST_DIRNAME/../bin} t
	bin=$(cd "$bin" 2>/dev/null && pwd) ||
	    fail "SPOOLQ_BIN: ${SPOOLQ_BIN:-$BATS_TEST_DIRNAME/../bin}: no such directory (run make first)"
	for t in qsend qrecv qack qadmin; do
		[[ -x $bin/$t ]] || fail "$bin/$t: not built (run make first)"
	done
	export SPOOLQ_BIN=$bin
	export PATH="$bin:$PATH"
	export LC_ALL=C
	export SPOOLQ_DIR="$BATS_TEST_TMPDIR/spool"
	unset XDG_STATE_HOME
	# Sanitized builds: abort (status >= 128) and write reports to files.
	export ASAN_OPTIONS="abort_on_error=1:${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$BATS_TEST_TMPDIR/sanitizer"
	export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1:${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$BATS_TEST_TMPDIR/sanitizer"
	T=$BATS_TEST_TMPDIR
	cd "$T" || return
}

spoolq_teardown() {
	kill_jobs
	[[ -z ${SHARED_BIN-} ]] || rm -rf -- "$SHARED_BIN"
	sanitizer_clean
}

# share_bin: copy the tools under test into a directory every user may
# enter, and put it first on PATH and in $SPOOLQ_BIN, for tests that run
# them as other users: the build tree may lie below a directory only its
# owner can enter (a clone in /root), where exec would be refused.
share_bin() {
	local t
	SHARED_BIN=$(mktemp -d /tmp/spoolq-bin.XXXXXX) || return
	for t in qsend qrecv qack qadmin qworker; do
		cp "$SPOOLQ_BIN/$t" "$SHARED_BIN/$t" || return
	done
	chmod 755 "$SHARED_BIN"
	export SPOOLQ_BIN=$SHARED_BIN PATH="$SHARED_BIN:$PATH"
}

# leakless_env: the ASAN_OPTIONS setting for tools run under strace(1),
# given as "strace -E $(leakless_env)": LeakSanitizer cannot stop the
# world under ptrace and would fail every traced run of a sanitized build.
leakless_env() {
	echo "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
}

# made_fail OP:DIR CMD...: `run` CMD (stderr apart) with the first OP
# (renameat2 or unlinkat) in directory DIR made, then reported failed
# with EIO, as NFS reports a call whose reply was lost: the LD_PRELOAD
# library tests/shim/madefail.c, built here.
made_fail() {
	local lib=$BATS_TEST_TMPDIR/madefail.so how=$1
	shift
	[[ -e $lib ]] || cc -shared -fPIC -O2 -o "$lib" \
	    "$BATS_TEST_DIRNAME/shim/madefail.c" || fail "cannot build $lib"
	run --separate-stderr env LD_PRELOAD="$lib" SPOOLQ_MADEFAIL="$how" \
	    ASAN_OPTIONS="$ASAN_OPTIONS:verify_asan_link_order=0" "$@"
	refute_crash
}

# low_fds N CMD...: run CMD with descriptors 0-2 only and a limit of N
# (in a bash of its own: bats keeps descriptors of its own open).
low_fds() {
	local n=$1
	shift
	# LeakSanitizer cannot run at exit with so few descriptors (its
	# tracer fails and the exit spins): it is off here, and a bound
	# turns any hang into a failure.
	timeout -k 5 60 bash -c 'for fd in /proc/$$/fd/*; do
		fd=${fd##*/}
		(( fd <= 2 )) || { eval "exec $fd>&-"; } 2>/dev/null
	done
	ulimit -n "$0" && exec env "$1" "${@:2}"' "$n" "$(leakless_env)" "$@"
}

# kill_jobs: kill the background jobs a test started and did not reap.
kill_jobs() {
	local pid
	for pid in $(jobs -p); do
		kill -9 "$pid" 2>/dev/null || true
	done
}

# sanitizer_clean: fail if any sanitizer report was written in this test.
sanitizer_clean() {
	local f found=
	for f in "$BATS_TEST_TMPDIR"/sanitizer.*; do
		[[ -e $f ]] || continue
		found=1
		echo "# sanitizer report $f:"
		sed 's/^/#   /' "$f"
	done
	[[ -z $found ]] || fail "sanitizer reported errors (see above)"
}

# refute_crash: after `run`, the command must have exited by itself (status
# below 128: no signal, no abort) and without a sanitizer report.
refute_crash() {
	if (( status >= 128 )); then
		fail "crashed: exit status $status (signal $((status - 128))); output: $output"
	fi
	if [[ $output$'\n'${stderr:-} =~ (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime\ error:|Segmentation\ fault|core\ dumped) ]]; then
		fail "sanitizer or crash report in output: $output"
	fi
	sanitizer_clean
}

# expect_fail CODES CMD...: run CMD; it must fail cleanly with one of CODES
# ("66" or "64|65").  The output is left in $output for further checks.
expect_fail() {
	local codes=$1
	shift
	run "$@"
	refute_crash
	if [[ "|$codes|" != *"|$status|"* ]]; then
		fail "expected exit status $codes, got $status from: $*"$'\n'"output: $output"
	fi
}

# mkq NAME [KEY=VALUE...]: create a queue with qadmin.
mkq() {
	qadmin create "$@" >/dev/null
}

# qdir QUEUE: directory of a queue (a NAME under the root, or a path).
qdir() {
	case $1 in
	*/*) printf '%s\n' "$1" ;;
	*) printf '%s\n' "$SPOOLQ_DIR/$1" ;;
	esac
}

# index_of QUEUE [HOST]: the path of the claim index of HOST (default this
# host) in QUEUE, run/index.HOST, HOST shortened as in message IDs.
index_of() {
	local h=${2:-$(hostname)}
	h=${h%%.*}
	printf '%s/run/index.%s\n' "$(qdir "$1")" "${h//[^A-Za-z0-9-]/-}"
}

# names STATE QUEUE: non-dot names in a state directory, one a line, sorted.
names() {
	local d
	d=$(qdir "$2")/$1
	[[ -d $d ]] || return 0
	(cd "$d" && ls -1A | grep -v '^\.' | sort) || true
}

# count STATE QUEUE: number of non-dot names in a state directory.
count() {
	local n
	n=$(names "$1" "$2" | grep -c .) || true
	echo "${n:-0}"
}

# assert_count STATE QUEUE N
assert_count() {
	local n
	n=$(count "$1" "$2")
	[[ $n == "$3" ]] || fail "expected $3 message(s) in $2/$1, found $n:"$'\n'"$(names "$1" "$2")"
}

# only STATE QUEUE: the name of the single message in a state directory.
only() {
	local n
	n=$(count "$1" "$2")
	[[ $n == 1 ]] || fail "expected exactly 1 message in $2/$1, found $n:"$'\n'"$(names "$1" "$2")"
	names "$1" "$2"
}

# bodies STATE QUEUE: the bodies of a state directory in name order, each
# followed by a newline (for text bodies without newlines).
bodies() {
	local d
	d=$(qdir "$2")/$1
	names "$1" "$2" | (cd "$d" && xargs -r -d '\n' perl -e '
		local $/;
		for my $f (@ARGV) {
			open(my $fh, "<", $f) or die "$f: $!\n";
			print <$fh>, "\n";
		}')
}

# msgid NAME-OR-PATH: the ID part of a message name.
msgid() {
	local n=${1##*/}
	printf '%s\n' "${n%%,*}"
}

# field NAME-OR-PATH KEY: value of a name field (exit 1 when absent).
field() {
	local n=${1##*/}
	awk -F, -v k="$2" '{
		for (i = 2; i <= NF; i++) {
			j = index($i, "=")
			key = j ? substr($i, 1, j - 1) : $i
			if (key == k) { print j ? substr($i, j + 1) : ""; found = 1 }
		}
	} END { exit !found }' <<<"$n"
}

# now: the epoch in whole seconds.
now() {
	date +%s
}

# now_f: the epoch with fractions (seconds.microseconds).
now_f() {
	printf '%s\n' "$EPOCHREALTIME"
}

# elapsed_since START: seconds (float) since START (from now_f).
elapsed_since() {
	awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f\n", b - a }'
}

# float_between X LO HI: LO <= X <= HI (floats).
float_between() {
	awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x >= lo && x <= hi) }' ||
	    fail "expected $2 <= $1 <= $3"
}

# int_between X LO HI
int_between() {
	[[ $1 =~ ^[0-9]+$ ]] || fail "not an integer: '$1'"
	(( $1 >= $2 && $1 <= $3 )) || fail "expected $2 <= $1 <= $3"
}

# wait_for [-t SECONDS] CMD...: run CMD until it succeeds; fail the test after
# SECONDS (default $SPOOLQ_WAIT_TIMEOUT).
wait_for() {
	local t=$SPOOLQ_WAIT_TIMEOUT
	if [[ $1 == -t ]]; then
		t=$2
		shift 2
	fi
	wait_until "$t" "$@" || fail "wait_for: timed out after ${t}s: $*"
}

# wait_until SECONDS CMD...: like wait_for, but returns 1 on timeout.
wait_until() {
	local deadline
	deadline=$(awk -v n="$EPOCHREALTIME" -v t="$1" 'BEGIN { printf "%.6f", n + t }')
	shift
	until "$@"; do
		awk -v n="$EPOCHREALTIME" -v d="$deadline" 'BEGIN { exit !(n < d) }' || return 1
		sleep 0.05
	done
}

# past EPOCH: true once the clock is past EPOCH (whole seconds).
past() {
	(( $(date +%s) > $1 ))
}

# float_past START SECONDS: START (from now_f) + SECONDS lies in the past.
float_past() {
	awk -v s="$1" -v d="$2" -v n="$EPOCHREALTIME" 'BEGIN { exit !(n > s + d) }'
}

# wait_lease_over RECEIPT: wait until the receipt's lease deadline is past.
wait_lease_over() {
	local l
	l=$(field "$1" l) || fail "no l= field in $1"
	wait_for -t $(( l - $(now) + 3 )) past "$l"
}

# wait_due_over NAME: wait until the t= due time of a retry name is past.
wait_due_over() {
	local t
	t=$(field "$1" t) || fail "no t= field in $1"
	wait_for -t $(( t - $(now) + 3 )) past "$t"
}

# snapshot ROOT: every path under ROOT with its type (and size for files), except run/
# (claim index and locks are caches), for "nothing was changed" checks.
snapshot() {
	(cd "$1" && find . -path '*/run' -prune -o -type f -printf '%p f %s\n' \
	    -o -printf '%p %y\n' | sort)
}

# assert_unchanged BEFORE: the spool root still matches a snapshot.
assert_unchanged() {
	local after
	after=$(snapshot "$SPOOLQ_DIR")
	[[ $after == "$1" ]] || fail "spool changed:"$'\n'"$(diff <(echo "$1") <(echo "$after"))"
}

# assert_same WANT GOT: the same multiset of lines (order ignored); on
# failure shows only the difference.
assert_same() {
	local d
	d=$(diff <(sort <<<"$1") <(sort <<<"$2")) ||
	    fail "lines differ (< missing, > unexpected):"$'\n'"$(head -n 40 <<<"$d")"
}

# assert_lines_eq WANT GOT: the same lines in the same order; on failure
# shows only the difference.
assert_lines_eq() {
	local d
	d=$(diff <(printf '%s\n' "$1") <(printf '%s\n' "$2")) ||
	    fail "lines differ (< wanted, > got):"$'\n'"$(head -n 40 <<<"$d")"
}

# assert_usage: output looks like a usage synopsis for TOOL.
assert_usage() {
	[[ $output =~ [Uu]sage:.*$1 ]] || fail "no usage synopsis for $1 in: $output"
}
