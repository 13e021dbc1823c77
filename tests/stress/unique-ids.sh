#!/bin/bash
# unique-ids.sh: 16 processes each send 500 messages into one queue at once
# (qsend -l -p); every printed ID is well formed and unique, new/ holds
# exactly those 8,000 files and every body arrived intact.  Then 16 shell
# loops of one-message qsend invocations (fresh pids, same clock second):
# again every ID unique and every file present.
#
# Prints TAP; exits non-zero on failure.  Binaries come from $SPOOLQ_BIN.
set -eu

repo=$(cd "$(dirname "$0")/../.." && pwd)
bin=${SPOOLQ_BIN:-$repo/bin}

procs=16
per_proc=500
loops=16
per_loop=30
total=$((procs * per_proc))
loop_total=$((loops * per_loop))

# SPOOL(5): SSSSSSSSSS.NNNNNNNNN.PID_COUNTER_RRRRRRRR.HOST
id_re='^[0-9]{10}\.[0-9]{9}\.[0-9]+_[0-9]+_[0-9a-f]{8}\.[A-Za-z0-9-]+$'

for t in qsend qadmin; do
	if [ ! -x "$bin/$t" ]; then
		echo "Bail out! $bin/$t is not built"
		exit 1
	fi
done

T=$(mktemp -d "${TMPDIR:-/tmp}/spoolq-ids.XXXXXX")
trap 'rm -rf -- "$T"' EXIT
export SPOOLQ_DIR=$T/spool

n=0
failed=0
ok() {			# ok STATUS DESCRIPTION
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		failed=$((failed + 1))
	fi
}
diag() {
	head -n 5 | sed 's/^/# /'
}

# ls_names QUEUE STATE: the file names, sorted.
ls_names() {
	ls -U -- "$SPOOLQ_DIR/$1/$2" | LC_ALL=C sort
}

# check_ids IDFILE COUNT QUEUE WHAT: IDs unique and well formed, new/ holds
# exactly those files, tmp/ is empty.
check_ids() {
	local ids=$1 want=$2 q=$3 what=$4 got dups bad st
	LC_ALL=C sort "$ids" >"$ids.sorted"
	got=$(wc -l <"$ids.sorted")
	dups=$(uniq -d "$ids.sorted" | wc -l)
	st=0
	[ "$got" -eq "$want" ] || st=1
	[ "$dups" -eq 0 ] || st=1
	ok $st "$what: $want IDs printed, all unique"
	[ "$got" -eq "$want" ] || echo "# printed $got IDs"
	[ "$dups" -eq 0 ] || uniq -d "$ids.sorted" | diag
	bad=$(grep -Evc "$id_re" "$ids.sorted" || :)
	ok $((bad > 0)) "$what: every ID well formed"
	[ "$bad" -eq 0 ] || grep -Ev "$id_re" "$ids.sorted" | diag
	ls_names "$q" new >"$T/$q.files"
	st=0
	cmp -s "$ids.sorted" "$T/$q.files" || st=1
	[ -z "$(ls -A "$SPOOLQ_DIR/$q/tmp")" ] || st=1
	ok $st "$what: new/ holds exactly the $want files, tmp/ is empty"
	if ! cmp -s "$ids.sorted" "$T/$q.files"; then
		echo "# new/ holds $(wc -l <"$T/$q.files") files"
		diff "$ids.sorted" "$T/$q.files" | diag
	fi
}

echo "1..9"

# 1. 16 concurrent batch senders.
"$bin/qadmin" create batch durability=none
pids=()
for ((p = 0; p < procs; p++)); do
	seq -f "w$p-%03g" 1 "$per_proc" |
	    "$bin/qsend" -l -p batch >"$T/ids.$p" 2>"$T/err.$p" &
	pids+=($!)
done
st=0
for p in "${pids[@]}"; do
	wait "$p" || st=1
done
cat "$T"/err.* >"$T/err"
[ ! -s "$T/err" ] || st=1
ok $st "$procs concurrent qsend -l -p of $per_proc messages each succeeded"
diag <"$T/err"
cat "$T"/ids.[0-9]* >"$T/ids"
check_ids "$T/ids" "$total" batch "batch"

# Bodies: every one of the 8,000 sent arrived, byte for byte.
for ((p = 0; p < procs; p++)); do
	seq -f "w$p-%03g" 1 "$per_proc"
done | LC_ALL=C sort >"$T/bodies.expected"
(cd "$SPOOLQ_DIR/batch/new" && find . -type f -print0 | xargs -0 awk 1) |
    LC_ALL=C sort >"$T/bodies"
st=0
cmp -s "$T/bodies.expected" "$T/bodies" || st=1
ok $st "batch: the $total bodies arrived intact, each once"
[ "$st" -eq 0 ] || diff "$T/bodies.expected" "$T/bodies" | diag

# 2. 16 concurrent loops of one-message invocations.
"$bin/qadmin" create single durability=none
pids=()
for ((p = 0; p < loops; p++)); do
	(
		for ((i = 0; i < per_loop; i++)); do
			"$bin/qsend" -p single "s$p-$i"
		done
	) >"$T/sids.$p" &
	pids+=($!)
done
st=0
for p in "${pids[@]}"; do
	wait "$p" || st=1
done
ok $st "$loops concurrent loops of $per_loop one-message qsend -p succeeded"
cat "$T"/sids.* >"$T/sids"
check_ids "$T/sids" "$loop_total" single "one-message loops"

[ "$failed" -eq 0 ]
