#!/usr/bin/env bats
# A spool root shared by a group (set-group-ID, group-writable): queues
# made in it by one user, whatever that user's umask, can be used by the
# others of the group (spoolq(5), "Sharing a queue").  Three real users,
# by setpriv(1): ann makes the queues, bob sends, cid consumes.

load helpers

GID=4242	# the sharing group
ANN=4201 BOB=4202 CID=4203

setup() {
	spoolq_setup
	[[ $(id -u) == 0 ]] || skip "needs root to act as three users"
	command -v setpriv >/dev/null || skip "setpriv (util-linux) missing"
	share_bin
	# A root that the three can reach: the test's own directory is 0700.
	SHARED=$(mktemp -d /tmp/spoolq-shared.XXXXXX)
	chmod 755 "$SHARED"
	install -d -o root -g "$GID" -m 2770 "$SHARED/spool"
	export SPOOLQ_DIR=$SHARED/spool
}

teardown() {
	[[ -z ${SHARED:-} ]] || rm -rf "$SHARED"
	spoolq_teardown
}

# as UID UMASK CMD...: run CMD as user UID, whose own group is not the
# sharing one, with GID as a supplementary group, under UMASK.
as() {
	local uid=$1 mask=$2
	shift 2
	setpriv --reuid "$uid" --regid "$((uid + 100))" --groups "$GID" \
	    --inh-caps=-all env PATH="$PATH" SPOOLQ_DIR="$SPOOLQ_DIR" \
	    sh -c 'umask "$1"; shift; exec "$@"' sh "$mask" "$@"
}

# mode PATH: octal mode and group of PATH
mode() {
	stat -c '%a %g' "$1"
}

@test "shared root: a queue made under umask 022 takes sends and claims from the group" {
	run as "$ANN" 022 qadmin create jobs
	assert_success
	assert_equal "$(mode "$SPOOLQ_DIR/jobs")" "2775 $GID"
	assert_equal "$(mode "$SPOOLQ_DIR/jobs/tmp")" "2775 $GID"
	assert_equal "$(mode "$SPOOLQ_DIR/jobs/new")" "2775 $GID"
	run as "$BOB" 022 qsend -p jobs 'resize photo-1.jpg'
	assert_success
	local id=$output
	assert_equal "$(mode "$SPOOLQ_DIR/jobs/new/$id")" "664 $GID"
	run as "$CID" 022 qrecv jobs
	assert_success
	local r=$output
	assert_equal "$(cat "$r")" 'resize photo-1.jpg'
	run as "$CID" 022 qack "$r"
	assert_success
	assert_equal "$(count new jobs)$(count cur jobs)" 00
	# The claim index cid made, and a retry, serve bob as well.
	as "$BOB" 022 qsend jobs two three
	run as "$CID" 022 qrecv jobs
	assert_success
	run as "$BOB" 022 qack --retry "$output"
	assert_success
	run as "$BOB" 022 qrecv jobs
	assert_success
	run as "$ANN" 022 qack "$output"
	assert_success
	assert_equal "$(mode "$(index_of jobs)")" "664 $GID"
}

@test "shared root: umask 077 still shares, and nothing is writable by others" {
	run as "$ANN" 077 qadmin create jobs max_attempts=2
	assert_success
	assert_equal "$(mode "$SPOOLQ_DIR/jobs")" "2770 $GID"
	assert_equal "$(mode "$SPOOLQ_DIR/jobs/queue.conf")" "660 $GID"
	run as "$BOB" 077 qsend -p -H tenant=acme jobs body
	assert_success
	assert_equal "$(mode "$SPOOLQ_DIR/jobs/new/$output,h")" "660 $GID"
	assert_equal "$(mode "$SPOOLQ_DIR/jobs/attr/$output")" "660 $GID"
	run as "$CID" 077 qworker --drain jobs -- cat
	assert_success
	assert_output --regexp "^body"
	run as "$BOB" 077 qadmin config jobs set lease=1m
	assert_success
	assert_equal "$(mode "$SPOOLQ_DIR/jobs/queue.conf")" "660 $GID"
	# Under umask 000 too, no file or directory is writable by others.
	as "$CID" 000 qsend jobs again
	run find "$SPOOLQ_DIR" -perm -o+w
	assert_output ""
}

@test "a root that is not shared keeps the creator's umask" {
	chmod 0755 "$SPOOLQ_DIR" && chmod g-s "$SPOOLQ_DIR"
	chown "$ANN" "$SPOOLQ_DIR"
	run as "$ANN" 022 qadmin create jobs
	assert_success
	assert_equal "$(stat -c %a "$SPOOLQ_DIR/jobs")" 755
	as "$ANN" 022 qsend jobs x
	assert_equal "$(stat -c %a "$SPOOLQ_DIR"/jobs/new/*)" 644
}

@test "shared root: a queue root makes under umask 022 (the systemd example) takes sends from the group" {
	(umask 022 && qadmin create jobs)
	assert_equal "$(mode "$SPOOLQ_DIR/jobs/new")" "2775 $GID"
	run as "$BOB" 022 qsend jobs 'resize photo-1.jpg'
	assert_success
	run as "$CID" 022 qworker --drain jobs -- cat
	assert_success
	assert_output --regexp '^resize photo-1\.jpg'
	assert_equal "$(count new jobs)$(count cur jobs)$(count dead jobs)" 000
}

@test "shared root: the directories above a queue given by path are shared too" {
	run as "$ANN" 022 qadmin create "$SPOOLQ_DIR/team/jobs"
	assert_success
	assert_equal "$(mode "$SPOOLQ_DIR/team")" "2775 $GID"
	run as "$BOB" 022 qadmin create "$SPOOLQ_DIR/team/mail"
	assert_success
	run as "$CID" 022 qsend "$SPOOLQ_DIR/team/jobs" x
	assert_success
}
