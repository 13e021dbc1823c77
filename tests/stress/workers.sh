#!/bin/bash
# workers.sh: many qworkers on one queue.
#
#  (1) herd: 40 workers (qworker -j 1, no --drain) start at once on 300
#      ready messages.  Every message is handled exactly once, the queue
#      ends empty, every worker logs only ack lines.  Then, with the queue
#      empty, the 40 idle workers together use under 0.5 s of CPU (user +
#      sys from /proc/PID/stat) in 2 s of wall time: waiting is event
#      driven, not polling.  SIGTERM ends every one with exit 0.
#  (2) cron: overlapping `qworker --drain` runs started every 0.2-0.9 s for
#      8 s on 500 messages while 2 producers add 500 more (jobs take
#      50 ms, so that runs overlap and share the backlog); a last
#      --drain run after the producers are done, as the next cron tick
#      would.  Every message is handled exactly once, every run exits 0,
#      none is left in any state.
#
# A job appends "ID BODY" with one write to a log of its own worker (1) or
# run (2).  Prints TAP; exits non-zero on failure.  A watchdog ends the run
# after $STRESS_TIMEOUT seconds (default 85).  Binaries come from
# $SPOOLQ_BIN.
set -eu
export LC_ALL=C

repo=$(cd "$(dirname "$0")/../.." && pwd)
bin=${SPOOLQ_BIN:-$repo/bin}

workers=40
herd_msgs=300
cron_msgs=500
producers=2
per_producer=250	# sent in batches of 25, 0.5 s apart
cron_secs=8
idle_cpu_max=0.5	# seconds of CPU for all workers over 2 s idle

for t in qsend qadmin qworker; do
	if [ ! -x "$bin/$t" ]; then
		echo "Bail out! $bin/$t is not built"
		exit 1
	fi
done

T=$(mktemp -d "${TMPDIR:-/tmp}/spoolq-workers.XXXXXX")
export SPOOLQ_DIR=$T/spool
started=()		# every background process of ours, killed on exit
watchdog=

cleanup() {
	local p
	for p in ${started[@]+"${started[@]}"}; do
		kill -9 "$p" 2>/dev/null || :
	done
	for p in ${started[@]+"${started[@]}"}; do
		wait "$p" 2>/dev/null || :
	done
	[ -z "$watchdog" ] || kill -- "-$watchdog" 2>/dev/null || :
	rm -rf -- "$T"
}
trap cleanup EXIT
trap 'echo "Bail out! hard timeout or signal"; exit 124' TERM INT

# The watchdog has its own process group, killed whole on exit.
setsid bash -c 'sleep "$1" && kill -TERM "$2"' watchdog \
    "${STRESS_TIMEOUT:-85}" $$ </dev/null >/dev/null 2>&1 &
watchdog=$!

n=0
failed=0
ok() {			# ok CONDITION-STATUS DESCRIPTION
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		failed=$((failed + 1))
	fi
}
diag() {
	sed 's/^/# /'
}

count() {		# count QUEUE STATE
	ls -U -- "$SPOOLQ_DIR/$1/$2" | wc -l
}

# exited PID: gone or a zombie.
exited() {
	local st
	st=$(ps -o stat= -p "$1" 2>/dev/null) || return 0
	case $st in Z*) return 0 ;; esac
	return 1
}

# wait_all SECONDS PID...: wait for the PIDs to end; sets $nbad to the
# number that did not exit 0 within SECONDS (those are killed).
wait_all() {
	local secs=$1 p st deadline
	shift
	deadline=$((SECONDS + secs))
	nbad=0
	for p; do
		while ! exited "$p" && [ "$SECONDS" -lt "$deadline" ]; do
			sleep 0.1
		done
		if ! exited "$p"; then
			echo "# pid $p still running after ${secs}s; killed"
			kill -9 "$p" 2>/dev/null || :
		fi
		st=0
		wait "$p" || st=$?
		if [ "$st" -ne 0 ]; then
			echo "# pid $p exited $st"
			nbad=$((nbad + 1))
		fi
	done
}

# cpu_ticks PID...: user + system clock ticks of the PIDs together.
cpu_ticks() {
	local p sum=0 t
	for p; do
		t=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null) || t=0
		sum=$((sum + t))
	done
	echo "$sum"
}

# verify NAME QUEUE EXPECTED LOG...: exactly-once and empty-queue checks.
verify() {
	local name=$1 q=$2 expected=$3 st missing extra dups ndup s
	shift 3
	cat "$@" >"$T/$name.all"
	awk '{ print $2 }' "$T/$name.all" | sort >"$T/$name.bodies"
	missing=$(comm -23 "$expected" "$T/$name.bodies" | sort -u | wc -l)
	extra=$(comm -13 "$expected" "$T/$name.bodies" | sort -u | wc -l)
	dups=$(uniq -d "$T/$name.bodies" | wc -l)
	ndup=$(awk '{ print $1 }' "$T/$name.all" | sort | uniq -d | wc -l)
	echo "# $name: $(wc -l <"$T/$name.all") jobs run, $missing missing," \
	    "$extra unexpected, $dups bodies and $ndup IDs handled twice"
	comm -23 "$expected" "$T/$name.bodies" | head -5 | diag
	uniq -c -d "$T/$name.bodies" | head -5 | diag
	st=$((missing + extra + dups + ndup > 0 ? 1 : 0))
	ok $st "$name: each of the $(wc -l <"$expected") messages handled exactly once"
	st=0
	for s in new cur retry dead tmp; do
		if [ "$(count "$q" $s)" -ne 0 ]; then
			echo "# $name: $s/ holds $(count "$q" $s) files"
			ls "$SPOOLQ_DIR/$q/$s" | head -5 | diag
			st=1
		fi
	done
	ok $st "$name: queue empty afterwards (new, cur, retry, dead, tmp)"
}

# only_acks NAME ERRLOG...: the workers logged ack lines and nothing else.
only_acks() {
	local name=$1 other acks st
	shift
	acks=$(cat "$@" | grep -cE '^qworker: [^ ]+ [^ ]+ 1 ack [0-9]+\.[0-9]+s$' || :)
	other=$(cat "$@" | grep -vE '^qworker: [^ ]+ [^ ]+ 1 ack [0-9]+\.[0-9]+s$' || :)
	[ -z "$other" ] || printf '%s\n' "$other" | sort | uniq -c | sort -rn | head -10 | diag
	st=0
	[ -z "$other" ] || st=1
	ok $st "$name: the workers logged $acks ack lines (first attempts) and nothing else"
}

job='printf "%s %s\n" "$SPOOLQ_ID" "$(cat)" >> "$0"'
# Cron jobs take a little while, so that runs overlap.
slow_job="sleep 0.05; $job"

echo "1..12"
start=$SECONDS

# ---- (1) herd of 40 workers, then idle -------------------------------------

R=$T/herd
mkdir "$R"
"$bin/qadmin" create w durability=none
seq -f 'w%04g' 1 "$herd_msgs" | sort >"$R/expected"
"$bin/qsend" -l w <"$R/expected"
st=0
[ "$(count w new)" -eq "$herd_msgs" ] || st=1
ok $st "herd: $herd_msgs messages ready"

wpids=()
for ((i = 0; i < workers; i++)); do
	: >"$R/log.$i"
	"$bin/qworker" -j 1 w -- sh -c "$job" "$R/log.$i" \
	    </dev/null >/dev/null 2>"$R/err.$i" &
	wpids+=($!)
	started+=($!)
done
deadline=$((SECONDS + 40))
while [ "$(cat "$R"/log.* | wc -l)" -lt "$herd_msgs" ] ||
    [ "$(count w new)" -ne 0 ] || [ "$(count w cur)" -ne 0 ]; do
	[ "$SECONDS" -lt "$deadline" ] || break
	sleep 0.1
done
alive=0
for p in "${wpids[@]}"; do
	exited "$p" || alive=$((alive + 1))
done
st=0
[ "$alive" -eq "$workers" ] || st=1
ok $st "herd: $workers workers handled the backlog in $((SECONDS - start))s, $alive still running"
verify herd w "$R/expected" "$R"/log.*
used=$(ls "$R"/log.* | while read -r f; do [ -s "$f" ] && echo; done | wc -l)
echo "# herd: $used of $workers workers ran jobs"
only_acks herd "$R"/err.*

# Idle: the queue is empty; let the workers settle, then measure.
sleep 0.5
hz=$(getconf CLK_TCK)
t0=$(cpu_ticks "${wpids[@]}")
w0=$EPOCHREALTIME
sleep 2
t1=$(cpu_ticks "${wpids[@]}")
w1=$EPOCHREALTIME
cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$hz" 'BEGIN { printf "%.3f", (b - a) / hz }')
echo "# herd: the workers had used $(awk -v a="$t0" -v hz="$hz" 'BEGIN { printf "%.2f", a / hz }')s CPU before going idle"
wall=$(awk -v a="$w0" -v b="$w1" 'BEGIN { printf "%.3f", b - a }')
st=0
awk -v c="$cpu" -v m="$idle_cpu_max" 'BEGIN { exit !(c < m) }' || st=1
ok $st "herd: idle, $workers workers used ${cpu}s CPU in ${wall}s (limit ${idle_cpu_max}s)"

for p in "${wpids[@]}"; do
	kill -TERM "$p" 2>/dev/null || :
done
wait_all 10 "${wpids[@]}"
st=0
[ "$nbad" -eq 0 ] || st=1
ok $st "herd: SIGTERM: all $workers idle workers exit 0 within 10s ($nbad did not)"
started=()

# ---- (2) overlapping cron-style --drain runs, producers adding -------------

R=$T/cron
mkdir "$R"
"$bin/qadmin" create c durability=none
seq -f 'c%04g' 1 "$cron_msgs" >"$R/expected"
for ((p = 0; p < producers; p++)); do
	seq -f "p$p-%04g" 0 $((per_producer - 1))
done >>"$R/expected"
sort -o "$R/expected" "$R/expected"
seq -f 'c%04g' 1 "$cron_msgs" | "$bin/qsend" -l c

ppids=()
for ((p = 0; p < producers; p++)); do
	(
		for ((k = 0; k < per_producer; k += 25)); do
			seq -f "p$p-%04g" "$k" $((k + 24)) | "$bin/qsend" -l c || exit 1
			sleep 0.5
		done
	) </dev/null &
	ppids+=($!)
	started+=($!)
done

runs=()
k=0
overlap=0		# the most runs alive at once, seen at each start
cron_end=$((SECONDS + cron_secs))
while [ "$SECONDS" -lt "$cron_end" ]; do
	k=$((k + 1))
	"$bin/qworker" --drain -j $((1 + RANDOM % 3)) c -- sh -c "$slow_job" "$R/log.$k" \
	    </dev/null >/dev/null 2>"$R/err.$k" &
	runs+=($!)
	started+=($!)
	alive=0
	for p in "${runs[@]}"; do
		exited "$p" || alive=$((alive + 1))
	done
	[ "$alive" -le "$overlap" ] || overlap=$alive
	sleep "0.$((2 + RANDOM % 8))"
done
wait_all 20 "${ppids[@]}"
st=0
[ "$nbad" -eq 0 ] || st=1
ok $st "cron: $producers producers sent $((producers * per_producer)) messages while runs went on"
wait_all 30 "${runs[@]}"
bad_runs=$nbad
# The next cron tick, after the producers are done.
k=$((k + 1))
st=0
timeout 30 "$bin/qworker" --drain -j 2 c -- sh -c "$job" "$R/log.$k" \
    </dev/null >/dev/null 2>"$R/err.$k" || st=$?
[ "$st" -eq 0 ] || { echo "# last run exited $st"; bad_runs=$((bad_runs + 1)); }
echo "# cron: the last run handled $(cat "$R/log.$k" 2>/dev/null | wc -l) messages"
st=0
[ "$bad_runs" -eq 0 ] || st=1
[ "$overlap" -ge 2 ] || { echo "# the runs never overlapped"; st=1; }
ok $st "cron: $k --drain runs, up to $overlap at once, all exited 0 ($bad_runs did not)"
verify cron c "$R/expected" "$R"/log.*
only_acks cron "$R"/err.*

echo "# elapsed $((SECONDS - start))s"
[ "$failed" -eq 0 ]
