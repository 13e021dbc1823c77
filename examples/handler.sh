#!/bin/sh
# handler.sh - a qworker(1) job: store each message as a file in an
# outbox directory, once, however often the message is delivered.
#
# usage: qworker QUEUE -- /usr/local/libexec/handler [outbox]
#
# qworker runs it once per message, with the body on standard input and
# SPOOLQ_ID, SPOOLQ_QUEUE, SPOOLQ_ATTEMPT and SPOOLQ_PATH in the
# environment.  The exit status settles the message; the handler never
# calls qack itself:
#   0    done: the message is acknowledged (deleted)
#   75   temporary failure (EX_TEMPFAIL): retried later, with backoff,
#        until the queue's max_attempts, then dead-lettered
#   100  permanent failure: dead-lettered at once (r=rejected); no
#        retry can help
# Any other status, a signal or a timeout counts as temporary, like 75.
# What the handler writes to standard error is logged by qworker and kept
# in QUEUE/attr/ID.failure when the attempt fails.
#
# Delivery is at least once: after a crash or a timeout the same message
# comes again.  SPOOLQ_ID stays the same across deliveries, so it names
# the result, and a delivery that finds the result already there does
# nothing.

set -u

outbox=${1:-/var/lib/handler}
id=${SPOOLQ_ID:?not run by qworker}

# Done before (an earlier attempt stored it, then its ack was lost):
# nothing to do.
[ -e "$outbox/$id" ] && exit 0

# The outbox is missing or not writable: an administrator can fix that,
# so try again later.
if ! [ -d "$outbox" ] || ! [ -w "$outbox" ]; then
	echo "handler: $outbox: not a writable directory" >&2
	exit 75
fi

# Write to a temporary name and rename it: a crash leaves no half file
# under the final name.
tmp=$outbox/.$id.$$
if ! cat > "$tmp"; then
	rm -f -- "$tmp"
	echo "handler: $id: cannot write $tmp" >&2
	exit 75
fi

# An empty body can never succeed: reject it, no retry.
if ! [ -s "$tmp" ]; then
	rm -f -- "$tmp"
	echo "handler: $id: empty message (attempt ${SPOOLQ_ATTEMPT:-?})" >&2
	exit 100
fi

if ! mv -- "$tmp" "$outbox/$id"; then
	rm -f -- "$tmp"
	exit 75
fi
exit 0
