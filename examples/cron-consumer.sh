#!/bin/sh
# cron-consumer.sh - claim messages from a spoolq queue and run a handler
# on each, with the message body on standard input.
#
# usage: cron-consumer.sh [-w seconds] queue handler [arg ...]
#
# The handler's exit status settles the message:
#   0          done: qack (the message is deleted)
#   100        permanent failure: qack --reject (to dead/ at once)
#   otherwise  temporary failure: qack --retry (backoff; after
#              max_attempts claims the message goes to dead/)
#
# Without -w it handles what is ready and exits: run it from cron.  With
# -w N it also waits up to N seconds for more; -w 0 waits forever, for a
# service.  Copies may run at the same time: each message goes to one of
# them.  A handler that runs longer than the queue's lease may see its
# message delivered again; its qack then fails and changes nothing.
#
# The body is never passed through the shell: the handler reads it from
# the receipt file on its standard input.

set -u
prog=${0##*/}

usage() {
	echo "usage: $prog [-w seconds] queue handler [arg ...]" >&2
	exit 64
}

wait=
if [ "${1-}" = -w ]; then
	[ $# -ge 2 ] || usage
	wait=$2
	shift 2
fi
[ $# -ge 2 ] || usage
queue=$1
shift

claim() {
	if [ -n "$wait" ]; then
		qrecv -w "$wait" "$queue"
	else
		qrecv "$queue"
	fi
}

while :; do
	if receipt=$(claim); then
		:
	else
		status=$?
		[ "$status" -eq 1 ] && exit 0	# nothing (more) to do
		exit "$status"			# qrecv said why on stderr
	fi

	"$@" < "$receipt"
	case $? in
	0)	qack "$receipt" ;;
	100)	qack --reject=handler "$receipt" ;;
	*)	qack --retry "$receipt" ;;
	esac || echo "$prog: $receipt: not settled" >&2
done
