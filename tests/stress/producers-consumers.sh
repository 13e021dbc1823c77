#!/bin/bash
# producers-consumers.sh: 4 producers and 4 consumers move 20,000 messages
# through one queue (durability=none, lease 2s), twice:
#
#  (i)  undisturbed: every body is delivered exactly once;
#  (ii) a killer kill -9s a random consumer (its whole process group: the
#       shell loop and its qrecv or qack) about every 0.2 s and restarts it,
#       until the producers are done and under 2,000 messages are ready;
#       then it kills all four.  Every body is delivered at least once,
#       none is lost and nothing is dead-lettered; duplicates are allowed
#       (a consumer killed between logging a body and acking it sees it
#       again after the lease).
#
# A consumer loops "qrecv -n 50 -w 1 q", appends the body of every receipt
# to its own log, then "qack -" the batch.  When the consumers have gone
# idle (i) or been killed (ii), a final drain collects the rest, waiting
# with qrecv -w for the leases of killed consumers to expire.  Counting is
# sort | uniq over the logs against the list of bodies sent.
#
# Prints TAP; exits non-zero on failure.  A watchdog ends the run after
# $STRESS_TIMEOUT seconds (default 170).  Binaries come from $SPOOLQ_BIN.
set -eu
export LC_ALL=C

self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
repo=$(cd "$(dirname "$0")/../.." && pwd)
bin=${SPOOLQ_BIN:-$repo/bin}

producers=4
consumers=4
per_producer=5000
chunk=100		# lines per qsend -l in a producer
total=$((producers * per_producer))
endgame=2000		# ready messages left when the kill run kills all

# ---- roles, run as separate processes (self re-invocation) ---------------

# consumer LOG BATCHFILE DONEFLAG ERRLOG
if [ "${1:-}" = --consumer ]; then
	log=$2 batch=$3 done=$4 errlog=$5
	while :; do
		rc=0
		"$bin/qrecv" -n 50 -w 1 q >"$batch" || rc=$?
		if [ "$rc" -eq 1 ]; then
			[ -e "$done" ] && exit 0
			continue
		fi
		if [ "$rc" -ne 0 ]; then
			echo "consumer $$: qrecv exit $rc" >>"$errlog"
			exit 1
		fi
		while IFS= read -r r; do
			b=
			IFS= read -r b 2>/dev/null <"$r" || :
			# Bodies are never empty: an empty one means the
			# receipt's lease was lost before it was read.
			[ -z "$b" ] || printf '%s\n' "$b" >>"$log"
		done <"$batch"
		rc=0
		"$bin/qack" - <"$batch" || rc=$?
		[ "$rc" -eq 0 ] || echo "consumer $$: qack exit $rc" >>"$errlog"
	done
fi

# producer P DONEFILE
if [ "${1:-}" = --producer ]; then
	p=$2
	trap 'touch "$3"' EXIT		# done, even when failing
	for ((c = 0; c < per_producer; c += chunk)); do
		seq -f "p$p-%05g" "$c" $((c + chunk - 1)) | "$bin/qsend" -l q
	done
	touch "$3"
	exit 0
fi

# ---- the test --------------------------------------------------------------

for t in qsend qrecv qack qadmin; do
	if [ ! -x "$bin/$t" ]; then
		echo "Bail out! $bin/$t is not built"
		exit 1
	fi
done

T=$(mktemp -d "${TMPDIR:-/tmp}/spoolq-stress.XXXXXX")
export SPOOLQ_DIR=$T/spool
cpid=()
ppid_list=()
watchdog=

kill_all() {
	local p
	for p in ${cpid[@]+"${cpid[@]}"} ${ppid_list[@]+"${ppid_list[@]}"}; do
		kill -9 -- "-$p" 2>/dev/null || :
	done
	for p in ${cpid[@]+"${cpid[@]}"} ${ppid_list[@]+"${ppid_list[@]}"}; do
		wait "$p" 2>/dev/null || :
	done
}
# kill_consumers: kill -9 every consumer with its qrecv or qack.
kill_consumers() {
	local p
	for p in ${cpid[@]+"${cpid[@]}"}; do
		kill -9 -- "-$p" 2>/dev/null || :
	done
	for p in ${cpid[@]+"${cpid[@]}"}; do
		wait "$p" 2>/dev/null || :
	done
	cpid=()
}
cleanup() {
	kill_all
	[ -z "$watchdog" ] || kill -- "-$watchdog" 2>/dev/null || :
	rm -rf -- "$T"
}
trap cleanup EXIT
trap 'echo "Bail out! hard timeout or signal"; exit 124' TERM INT

# The watchdog has its own process group, killed whole on exit, so that no
# sleep outlives the test holding the runner's output open.
setsid bash -c 'sleep "$1" && kill -TERM "$2"' watchdog \
    "${STRESS_TIMEOUT:-170}" $$ </dev/null >/dev/null 2>&1 &
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

count() {
	ls -U -- "$SPOOLQ_DIR/q/$1" | wc -l
}

# start_consumer I: a consumer in its own session, so that kill -9 -PID
# takes its qrecv or qack with it.
start_consumer() {
	setsid "$self" --consumer "$R/log.$1" "$R/batch.$1" "$R/done" \
	    "$R/errors" </dev/null &
	cpid[$1]=$!
}

# wait_pids PID...: wait for children; fails if any failed.  A hung child
# is ended by the watchdog.
wait_pids() {
	local p st=0
	for p; do
		wait "$p" || st=1
	done
	return $st
}

# final drain: claim everything that is left, waiting out the leases of
# killed consumers (qrecv -w wakes at the earliest lease deadline).
final_drain() {
	local rc deadline=$((SECONDS + 30))
	while [ "$(count new)" -gt 0 ] || [ "$(count cur)" -gt 0 ] ||
	    [ "$(count retry)" -gt 0 ]; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		rc=0
		"$bin/qrecv" -n 1000 -w 5 q >"$R/batch.final" || rc=$?
		[ "$rc" -eq 1 ] && continue
		[ "$rc" -eq 0 ] || return 1
		while IFS= read -r r; do
			b=
			IFS= read -r b <"$r" || :
			printf '%s\n' "$b" >>"$R/log.final"
		done <"$R/batch.final"
		"$bin/qack" - <"$R/batch.final"
	done
}

# run NAME KILL: one pass; leaves its logs in $R.
run() {
	local name=$1 killing=$2 i p kills=0 st
	R=$T/$name
	mkdir "$R"
	: >"$R/log.final"
	: >"$R/errors"
	"$bin/qadmin" create q durability=none lease=2s max_attempts=10000
	for ((i = 0; i < consumers; i++)); do
		: >"$R/log.$i"
		start_consumer "$i"
	done
	ppid_list=()
	for ((p = 0; p < producers; p++)); do
		setsid "$self" --producer "$p" "$R/pdone.$p" </dev/null &
		ppid_list+=($!)
	done
	if [ "$killing" = yes ]; then
		# Kill while the producers run and until few ready messages
		# are left, so that kills hit every phase of the consumers;
		# then kill them all, leaving claims in cur/ for the final
		# drain to recover once their leases expire.
		while :; do
			sleep 0.2
			i=$((RANDOM % consumers))
			kill -9 -- "-${cpid[i]}" 2>/dev/null || :
			wait "${cpid[i]}" 2>/dev/null || :
			start_consumer "$i"
			kills=$((kills + 1))
			[ "$(ls "$R" | grep -c '^pdone')" -eq "$producers" ] ||
			    continue
			[ "$(count new)" -gt "$endgame" ] || break
		done
		kill_consumers
	fi
	st=0
	wait_pids "${ppid_list[@]}" || st=1
	ppid_list=()
	ok $st "$name: $producers producers sent $total messages"
	touch "$R/done"
	st=0
	wait_pids ${cpid[@]+"${cpid[@]}"} || st=1
	cpid=()
	if [ "$killing" = yes ]; then
		ok $((kills > 0 ? 0 : 1)) \
		    "$name: $kills consumers killed and restarted, then all $consumers"
	fi
	# Without kills, no consumer may see an error (a lost lease included).
	[ "$killing" = yes ] || [ ! -s "$R/errors" ] || st=1
	final_drain || st=1
	ok $st "$name: consumers stopped and the final drain emptied the queue"
	echo "# $name: $(cat "$R"/log.[0-9] | wc -l) bodies logged by consumers," \
	    "$(wc -l <"$R/log.final") by the final drain"
	if [ -s "$R/errors" ]; then
		sort "$R/errors" | uniq -c | diag
	fi
}

# verify NAME EXACTLY(yes|no)
verify() {
	local name=$1 exact=$2 missing extra dups st
	R=$T/$name
	cat "$R"/log.[0-9] "$R/log.final" | sort >"$R/all"
	uniq "$R/all" >"$R/distinct"
	missing=$(comm -23 "$T/expected" "$R/distinct" | wc -l)
	extra=$(comm -13 "$T/expected" "$R/distinct" | wc -l)
	dups=$(uniq -d "$R/all" | wc -l)
	echo "# $name: $(wc -l <"$R/distinct") distinct bodies," \
	    "$missing missing, $extra unexpected, $dups duplicated"
	if [ "$missing" -gt 0 ]; then
		comm -23 "$T/expected" "$R/distinct" | head -5 | diag
	fi
	st=$((missing + extra > 0 ? 1 : 0))
	if [ "$exact" = yes ]; then
		[ "$dups" -eq 0 ] || st=1
		[ "$dups" -eq 0 ] || uniq -c -d "$R/all" | head -5 | diag
		ok $st "$name: every body delivered exactly once"
	else
		ok $st "$name: every body delivered at least once, none lost"
	fi
	st=0
	for s in new cur retry dead tmp; do
		if [ "$(count $s)" -ne 0 ]; then
			echo "# $name: $s/ holds $(count $s) files"
			st=1
		fi
	done
	ok $st "$name: queue empty afterwards, nothing dead-lettered"
}

for ((p = 0; p < producers; p++)); do
	seq -f "p$p-%05g" 0 $((per_producer - 1))
done | sort >"$T/expected"

echo "1..9"
start=$SECONDS
run plain no
verify plain yes
rm -rf -- "$SPOOLQ_DIR/q"
run kill yes
verify kill no
echo "# elapsed $((SECONDS - start))s"
[ "$failed" -eq 0 ]
