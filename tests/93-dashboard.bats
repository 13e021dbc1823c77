#!/usr/bin/env bats
# examples/grafana-spoolq.json queries only metrics, label values and
# labels that qadmin stats --prometheus writes: every name in its queries,
# every label=value it matches and every label it sums by is in a fresh
# report.

load helpers

setup() {
	spoolq_setup
	DASH=$BATS_TEST_DIRNAME/../examples/grafana-spoolq.json
}

teardown() { spoolq_teardown; }

# queried: the metric names in the dashboard's queries (panel targets and
# template variables), one a line.
queried() {
	jq -r '.. | objects | (.expr // empty), (.definition // empty),
	    (.query | strings)' "$DASH" | grep -oE 'spoolq_[a-z_]+' | sort -u
}

@test "dashboard: valid JSON, every panel queries the queue's metrics" {
	run jq -e '.panels | length > 10 and
	    all(.[]; (.targets | length) > 0 and
	        all(.targets[]; .expr | test("spoolq_[a-z_]+\\{queue=~\"\\$queue\"")))' "$DASH"
	assert_success
	run jq -r '.templating.list[] | select(.name == "queue") | .definition' "$DASH"
	assert_output 'label_values(spoolq_messages, queue)'
}

@test "dashboard: every metric it queries is in a fresh qadmin stats --prometheus" {
	local m n=0
	# A message in every state, so that every metric has a sample.
	mkq jobs
	qsend jobs ready inflight dead
	qsend --delay 1h jobs later
	r=$(qrecv jobs)
	r=$(qrecv jobs)
	qack --reject "$r"
	qadmin stats --prometheus -o "$T/spoolq.prom"
	for m in $(queried); do
		n=$((n + 1))
		grep -qE "^$m\{queue=\"jobs\"" "$T/spoolq.prom" ||
		    fail "$m: queried by the dashboard, not in qadmin stats --prometheus"
	done
	# Depth, age, dead letters, workers: the metrics of each panel kind.
	((n >= 10))
	for m in spoolq_messages spoolq_oldest_ready_age_seconds spoolq_messages_total \
	    spoolq_dead_lettered_last_hour spoolq_workers; do
		queried | grep -qx "$m" || fail "$m: not on the dashboard"
	done
}

@test "dashboard: every label value it matches and every label it sums by is in a fresh qadmin stats --prometheus" {
	local e sel m pair by l n=0
	mkq jobs
	qsend jobs ready inflight dead
	r=$(qrecv jobs)
	r=$(qrecv jobs)
	qack --reject "$r"
	qadmin stats --prometheus -o "$T/spoolq.prom"
	while IFS= read -r e; do
		# name="value": a sample of the metric with that label and value.
		for sel in $(grep -oE 'spoolq_[a-z_]+\{[^}]*\}' <<<"$e"); do
			m=${sel%%\{*}
			for pair in $(grep -oE '[a-z_]+="[^"$]*"' <<<"$sel"); do
				n=$((n + 1))
				grep -qF -- "$pair" <(grep "^$m{" "$T/spoolq.prom") ||
				    fail "$m{$pair}: queried by the dashboard, no such sample"
			done
		done
		# by (LABEL, ...): every metric of the query has the label.
		by=$(sed -nE 's/.*by \(([a-z_, ]+)\).*/\1/p' <<<"$e" | tr -d ,)
		for l in $by; do
			for m in $(grep -oE 'spoolq_[a-z_]+' <<<"$e" | sort -u); do
				n=$((n + 1))
				grep -qE "^$m\{([^}]*,)?$l=\"" "$T/spoolq.prom" ||
				    fail "$m: summed by $l, which it does not carry"
			done
		done
	done < <(jq -r '.. | objects | (.expr // empty)' "$DASH")
	((n >= 10)) || fail "only $n labels checked"
}
