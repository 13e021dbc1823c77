#!/bin/bash
# demo.sh: a work queue with parallel shell consumers and a dead letter.
#
# Sends every license text on this system as one message, plus one poison
# message, into a queue "licenses" (max_attempts=3, retry_delay=1s).  Four
# shell consumers claim one message at a time (qrecv -w 2), count its lines
# and words and hash it, append a result line and ack it.  The poison
# message is retried (qack --retry --delay 0) until its third claim uses up
# max_attempts and it lands in dead/, the reason in its name.  Prints a
# summary; exits non-zero when the numbers do not add up.
#
# Run it with "make demo", or examples/demo.sh with SPOOLQ_BIN set to the
# directory holding qsend, qrecv, qack and qadmin.
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${SPOOLQ_BIN:-$repo/bin}
for t in qsend qrecv qack qadmin; do
	if [ ! -x "$bin/$t" ]; then
		echo "demo: $bin/$t: not built (run make)" >&2
		exit 1
	fi
done
PATH=$bin:$PATH

# A private spool, removed on exit.
SPOOLQ_DIR=$(mktemp -d "${TMPDIR:-/tmp}/spoolq-demo.XXXXXX")
export SPOOLQ_DIR
trap 'rm -rf -- "$SPOOLQ_DIR"' EXIT
work=$SPOOLQ_DIR/.demo
mkdir "$work"

start=$(date +%s%N)

# The corpus: the license texts, else the packages' copyright files.
if [ -d /usr/share/common-licenses ]; then
	find /usr/share/common-licenses -type f | sort >"$work/files"
else
	find /usr/share/doc -path '/usr/share/doc/*/copyright' -type f |
	    sort >"$work/files"
fi
nfiles=$(wc -l <"$work/files")
if [ "$nfiles" -eq 0 ]; then
	echo "demo: no license or copyright files found" >&2
	exit 1
fi

echo "spool:  $SPOOLQ_DIR"
qadmin create licenses max_attempts=3 retry_delay=1s
xargs -d '\n' qsend -f licenses <"$work/files"
qsend licenses 'POISON: this message always fails'
sent=$((nfiles + 1))
echo "sent:   $sent messages ($nfiles files + 1 poison)"

# consumer N: claim, process, settle, until nothing came for 2 seconds.
consumer() {
	local receipt lines words sum head rc
	while :; do
		rc=0
		receipt=$(qrecv -w 2 licenses) || rc=$?
		[ "$rc" -ne 1 ] || return 0	# nothing came within 2 s
		[ "$rc" -eq 0 ] || return "$rc"
		head=$(head -c 7 "$receipt")
		if [ "$head" = POISON: ]; then
			echo "consumer $1: ${receipt##*/}: failing, retry" >&2
			qack --retry --delay 0 "$receipt"
			continue
		fi
		read -r lines words < <(wc -l -w <"$receipt")
		sum=$(sha256sum <"$receipt")
		# One short write per line: appends of the consumers interleave
		# whole lines.
		printf '%s %s %s %s\n' "$1" "$lines" "$words" "${sum%% *}" \
		    >>"$work/results"
		qack "$receipt"
	done
}

: >"$work/results"
pids=()
for c in 1 2 3 4; do
	consumer "$c" 2>>"$work/log" &
	pids+=($!)
done
st=0
for p in "${pids[@]}"; do
	wait "$p" || st=1
done
sed 's/^/        /' "$work/log"

# The summary.
elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
processed=$(wc -l <"$work/results")
read -r tlines twords < <(awk '{ l += $2; w += $3 }
    END { print l + 0, w + 0 }' "$work/results")
q=$SPOOLQ_DIR/licenses
ndead=$(ls "$q/dead" | wc -l)
left=$(find "$q/new" "$q/cur" "$q/retry" -type f | wc -l)
echo "done:   $processed processed by 4 consumers:" \
    "$tlines lines, $twords words"
awk '{ n[$1]++ }
    END { for (c in n) printf "        consumer %s: %d\n", c, n[c] }' \
    "$work/results" | sort
echo "dead:   $ndead dead letter(s)"
for d in "$q"/dead/*; do
	[ -e "$d" ] || continue
	# The name is ID,a=ATTEMPTS,r=REASON.
	echo "${d##*/}" | awk -F, '{
		for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
		printf "        %s: reason %s after %s attempts\n", $1, f["r"], f["a"]
	}'
	printf '        body: '
	cat "$d"
	echo
done
echo "time:   ${elapsed} ms"

# Do the numbers add up?  Every file processed once, with its own hash; the
# poison dead-lettered for attempts; nothing left in new, cur or retry.
xargs -d '\n' sha256sum <"$work/files" | awk '{ print $1 }' | sort >"$work/want"
awk '{ print $4 }' "$work/results" | sort >"$work/got"
fail=
[ "$st" -eq 0 ] || fail="$fail; a consumer failed"
[ "$processed" -eq "$nfiles" ] ||
    fail="$fail; processed $processed of $nfiles files"
cmp -s "$work/want" "$work/got" ||
    fail="$fail; the hashes differ from the files'"
[ "$ndead" -eq 1 ] || fail="$fail; $ndead dead letters, expected 1"
ls "$q/dead" | grep -q ',r=attempts' ||
    fail="$fail; the poison message was not dead-lettered for attempts"
[ "$left" -eq 0 ] || fail="$fail; $left messages left in new, cur or retry"
if [ -n "$fail" ]; then
	echo "demo: FAILED${fail/;/:}" >&2
	exit 1
fi
echo "ok:     $processed + $ndead dead = $sent sent"
