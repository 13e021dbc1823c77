#!/usr/bin/env bats
# qadmin stats: the counters of messages sent, acked, retried and
# dead-lettered since a queue was made (run/counters), exact through
# every tool and in every form of the report.

load helpers

setup() { spoolq_setup; }
teardown() { spoolq_teardown; }

# totals QUEUE: "SENT ACKED RETRIED DEAD" from qadmin stats --json.
totals() {
	qadmin stats --json "$1" | jq -r '.queues[0].total |
	    "\(.sent) \(.acked) \(.retried) \(.dead_lettered)"'
}

@test "counters: 0 in a new queue, before any file is made" {
	mkq jobs
	run totals jobs
	assert_output '0 0 0 0'
	assert_file_not_exists "$SPOOLQ_DIR/jobs/run/counters"
	run qadmin stats --prometheus jobs
	assert_line '# TYPE spoolq_messages_total counter'
	assert_line 'spoolq_messages_total{queue="jobs",event="sent"} 0'
	assert_line 'spoolq_messages_total{queue="jobs",event="dead_lettered"} 0'
}

@test "counters: each send, ack, retry and dead letter counts once" {
	local r
	mkq jobs
	qsend jobs a b c
	printf 'd\ne\n' | qsend -l jobs
	qsend --delay 1h jobs later
	qsend --dedup-id k jobs once
	qsend --dedup-id k jobs once
	run totals jobs
	assert_output '7 0 0 0'
	r=$(qrecv jobs)
	qack "$r"
	qrecv -A jobs >/dev/null
	r=$(qrecv jobs)
	qack --retry "$r"
	r=$(qrecv jobs)
	qack --reject "$r"
	run totals jobs
	assert_output '7 2 1 1'
	run cat "$SPOOLQ_DIR/jobs/run/counters"
	assert_output '7 2 1 1 0'
	# e acked, once dead-lettered by its exit status; c and later wait.
	# (qworker exits 1: a message failed.)
	run qworker -q --drain jobs -- sh -c 'read -r b; [ "$b" != once ] || exit 100'
	assert_failure 1
	run totals jobs
	assert_output '7 3 1 2'
	run qadmin stats jobs
	assert_line '  total        sent 7, acked 3, retried 1, dead-lettered 2'
	run qadmin stats --prometheus jobs
	assert_line 'spoolq_messages_total{queue="jobs",event="sent"} 7'
	assert_line 'spoolq_messages_total{queue="jobs",event="acked"} 3'
	assert_line 'spoolq_messages_total{queue="jobs",event="retried"} 1'
	assert_line 'spoolq_messages_total{queue="jobs",event="dead_lettered"} 2'
}

@test "counters: out of attempts and expired count as dead-lettered; fan-out in each queue" {
	local r
	mkq jobs max_attempts=1
	qsend jobs one
	qsend --ttl 1s jobs short
	r=$(qrecv jobs)
	qack --retry "$r"
	# Expiry is a whole second after the send: past it for sure.
	sleep 2.1
	run qrecv jobs
	assert_failure 1
	run totals jobs
	assert_output '2 0 0 2'
	mkq a
	mkq b
	qadmin exchange create ev fanout
	qadmin bind ev a
	qadmin bind ev b
	qsend ev x y
	run totals a
	assert_output '2 0 0 0'
	run totals b
	assert_output '2 0 0 0'
}

@test "counters: many concurrent senders and consumers lose no count" {
	local i
	mkq jobs
	for i in 1 2 3 4; do
		seq 50 | qsend -l jobs &
	done
	wait
	for i in 1 2; do
		qworker -q --drain jobs -- true &
	done
	wait
	assert_count new jobs 0
	run totals jobs
	assert_output '200 200 0 0'
}

@test "counters: a stopped holder of run/counters costs others a bounded wait, and what they could not count is shown as dropped" {
	local i holder
	mkq jobs
	qsend jobs first
	# A process stopped while it holds the counters' lock (one process:
	# the lock goes with it).
	(exec 9>>"$SPOOLQ_DIR/jobs/run/counters"; flock 9; exec sleep 300) 3>&- &
	holder=$!
	wait_for eval '! flock -n "$SPOOLQ_DIR/jobs/run/counters" true'
	kill -STOP "$holder"
	for i in 1 2 3 4 5; do
		qsend jobs "m$i"
	done
	qsend jobs a b c
	run totals jobs
	assert_output '1 0 0 0'
	assert_equal "$(qadmin stats --json jobs | jq .queues[0].total.dropped)" 8
	run qadmin stats jobs
	assert_line '  total        sent 1, acked 0, retried 0, dead-lettered 0, dropped 8'
	run qadmin stats --prometheus jobs
	assert_line '# TYPE spoolq_counts_dropped_total counter'
	assert_line 'spoolq_counts_dropped_total{queue="jobs"} 8'
	# Once the holder is gone, counting goes on; the drops stay counted.
	kill -CONT "$holder"
	kill "$holder"
	wait "$holder" || true
	wait_for flock -n "$SPOOLQ_DIR/jobs/run/counters" true
	qsend jobs last
	run totals jobs
	assert_output '2 0 0 0'
	assert_equal "$(qadmin stats --json jobs | jq .queues[0].total.dropped)" 8
	run cat "$SPOOLQ_DIR/jobs/run/counters"
	assert_output '2 0 0 0 8'
	assert_equal "$(stat -c %s "$SPOOLQ_DIR/jobs/run/counters.dropped")" 0
}
