#!/usr/bin/env bats
# Errors about a directory name the directory and the reason
# ("qrecv: q/cur: Permission denied"), never only the queue, in every
# tool: a user who may not use one state directory of a queue.

load helpers

setup() {
	spoolq_setup
	if (( EUID == 0 )); then
		command -v setpriv >/dev/null || skip "no setpriv to drop root"
		AS=(setpriv --reuid=65534 --regid=65534 --clear-groups)
		share_bin
	else
		AS=()
	fi
	# A spool the unprivileged user can reach (the test's own directory
	# is root's alone).
	SHARED=$(mktemp -d /tmp/spoolq-perm.XXXXXX)
	chmod 755 "$SHARED"
	export SPOOLQ_DIR=$SHARED/spool
	mkq q
	qsend q one two three
	(( EUID != 0 )) || chown -R 65534:65534 "$SPOOLQ_DIR"
	Q=$SPOOLQ_DIR/q
	# A user who may do everything with the queue, as the test shows.
	as_user qsend q four
}

teardown() {
	[[ -z ${SHARED-} ]] || { chmod -R u+rwx "$SHARED"; rm -rf -- "$SHARED"; }
	spoolq_teardown
}

as_user() {
	"${AS[@]}" env ASAN_OPTIONS=detect_leaks=0 "$@"
}

# said_only TOOL DIR: the tool failed (not crashed) and named q/DIR with
# the reason, and no line names only the queue.
said_only() {
	refute_crash
	assert_failure
	assert_line "$1: q/$2: Permission denied"
	refute_line "$1: q: Permission denied"
}

@test "dir errors: a state directory the user cannot enter is named by qsend, qrecv, qack, qworker, qadmin stats and gc" {
	local d r
	r=$(as_user qrecv q)
	for d in tmp new cur retry dead; do
		chmod 000 "$Q/$d"
		run as_user qsend q x
		said_only qsend "$d"
		run as_user qrecv q
		said_only qrecv "$d"
		run as_user timeout 20 qworker --drain q -- true
		said_only qworker "$d"
		run as_user qadmin stats q
		said_only "qadmin: stats" "$d"
		run as_user qadmin gc q
		said_only "qadmin: gc" "$d"
		chmod 755 "$Q/$d"
	done
	# The receipt's own directory is named as the receipt names it.
	chmod 000 "$Q/cur"
	run as_user qack "$r"
	refute_crash
	assert_failure
	assert_output "qack: $Q/cur: Permission denied"
	chmod 755 "$Q/cur"
	run as_user qack "$r"
	assert_success
}

@test "dir errors: a directory the user may read but not write is named when a claim, send or settle fails" {
	local r
	r=$(as_user qrecv q)
	chmod 555 "$Q/tmp"
	run as_user qsend q x
	said_only qsend tmp
	chmod 755 "$Q/tmp"
	chmod 555 "$Q/new"
	run as_user qsend q x
	said_only qsend new
	run as_user qrecv q
	said_only qrecv new
	chmod 755 "$Q/new"
	chmod 555 "$Q/cur"
	run as_user qrecv q
	said_only qrecv cur
	run as_user qack "$r"
	refute_crash
	assert_failure
	assert_output "qack: $Q/cur: Permission denied"
	run as_user timeout 20 qworker --drain q -- true
	refute_crash
	assert_line --regexp '^qworker: q/cur: Permission denied'
	refute_line --regexp '^qworker: q(: claim)?: Permission denied'
	chmod 755 "$Q/cur"
	chmod 555 "$Q/run"
	run as_user timeout 20 qworker --drain q -- true
	said_only qworker run
	run as_user qadmin stats q
	assert_success
}
