#!/usr/bin/env bats
# The systemd units of examples/: each passes systemd-analyze verify, as
# installed by make install and as shipped; each service is sandboxed and
# stops every process it started; make install enables nothing.

load helpers

setup() {
	spoolq_setup
	TOP=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
	command -v systemd-analyze >/dev/null ||
	    fail "systemd-analyze: not installed (.ci/deps test)"
	# Where verify itself cannot work, say so and skip.
	mkdir -p "$T/probe"
	printf '[Service]\nExecStart=/bin/true\n' >"$T/probe/probe.service"
	if ! out=$(systemd-analyze verify --man=no "$T/probe/probe.service" 2>&1); then
		skip "systemd-analyze verify cannot run here: $out"
	fi
}

teardown() { spoolq_teardown; }

# install_units: make install-extras into the prefix $T/usr, whose bin/
# holds the tools the installed units name.
install_units() {
	mkdir -p "$T/usr/bin"
	cp "$SPOOLQ_BIN"/q* "$T/usr/bin/"
	run env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS make -C "$TOP" -o all \
	    install-extras DESTDIR= PREFIX="$T/usr"
	assert_success
	U=$T/usr/lib/systemd/system
}

@test "systemd: the installed units pass systemd-analyze verify" {
	install_units
	for u in qworker@.service qbridge@.service spoolq-gc.service spoolq-gc.timer; do
		assert_file_exists "$U/$u"
		run systemd-analyze verify --man=no "$U/$u"
		assert_success
		assert_output ''
	done
	run grep -h '^ExecStart=' "$U/qworker@.service"
	assert_output "ExecStart=$T/usr/bin/qworker \$QWORKER_OPTS %i -- \$QWORKER_COMMAND"
	run grep -h '^Environment=PATH=' "$U/spoolq-gc.service"
	assert_output "Environment=PATH=$T/usr/bin:/usr/local/bin:/usr/bin:/bin"
	# The examples as they are, in the documentation's directory (the
	# C ones go with the library), scripts still executable.
	local e x=$T/usr/share/doc/spoolq/examples n=0
	for e in "$TOP"/examples/*; do
		[[ $e == *.c ]] && continue
		n=$((n + 1))
		cmp "$e" "$x/${e##*/}" || fail "${e##*/}: not installed as it is"
	done
	((n >= 10))
	assert_file_executable "$x/handler.sh"
	assert_file_not_executable "$x/qworker.env"
	assert_file_not_exists "$x/consumer.c"
	# Nothing enabled, nothing outside the unit directory.
	run find "$T/usr" -name '*.wants' -o -path '*/etc/*'
	assert_output ''
	run env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS make -C "$TOP" \
	    uninstall-extras DESTDIR= PREFIX="$T/usr"
	assert_success
	assert_file_not_exists "$U/qworker@.service"
	assert_dir_not_exists "$x"
}

@test "systemd: every unit of examples/ passes systemd-analyze verify" {
	local u n=0
	mkdir -p "$T/units" "$T/bin"
	ln -s "$SPOOLQ_BIN"/q* "$T/bin/"
	printf '#!/bin/sh\n' >"$T/bin/spoolq-consumer"
	chmod +x "$T/bin/spoolq-consumer"
	for u in "$TOP"/examples/*.service "$TOP"/examples/*.timer; do
		sed "s|/usr/local/bin/|$T/bin/|g" "$u" >"$T/units/${u##*/}"
	done
	for u in "$T"/units/*; do
		n=$((n + 1))
		run systemd-analyze verify --man=no "$u"
		assert_success
		assert_output ''
	done
	((n >= 4))
}

@test "systemd: every service is sandboxed, writes only the spool, kills what it started" {
	local u n=0
	for u in "$TOP"/examples/*.service; do
		n=$((n + 1))
		run grep -xE 'NoNewPrivileges=yes|ProtectSystem=strict|ProtectHome=yes|PrivateTmp=yes|ReadWritePaths=/var/spool/spoolq' "$u"
		assert_equal "$(wc -l <<<"$output")" 5
		# control-group, or mixed: SIGTERM to the main process, then
		# SIGKILL to the rest of the control group once it is gone.
		run grep -xE 'KillMode=(control-group|mixed)' "$u"
		assert_success
	done
	((n >= 3))
	run grep -x 'KillMode=mixed' "$TOP/examples/qworker@.service"
	assert_success
	run grep -x 'EnvironmentFile=/etc/spoolq/qworker-%i.env' \
	    "$TOP/examples/qworker@.service"
	assert_success
}

@test "systemd: qworker@.service runs what its environment file names" {
	# The ExecStart line, with the variables of examples/qworker.env
	# split at white space as systemd does, and SPOOLQ_DIR for this test.
	local line opts cmd
	qadmin create jobs
	qsend jobs $'one\n' $'two\n'
	line=$(sed -n 's/^ExecStart=[^ ]*qworker //p' "$TOP/examples/qworker@.service")
	opts=$(sed -n 's/^QWORKER_OPTS=//p' "$TOP/examples/qworker.env")
	assert_equal "$opts" '-j 4 -t 30s'
	line=${line//%i/jobs}
	line=${line//\$QWORKER_OPTS/$opts --drain}
	line=${line//\$QWORKER_COMMAND/cat}
	read -r -a cmd <<<"$line"
	# Its log is kept and shown on failure: a job that did not print
	# must say why (retried, timed out, not started).  The jobs (-j 4)
	# share its standard output: opened for appending, as cat(1) copies
	# into a file opened otherwise at an offset it read before (GNU cat,
	# copy_file_range), and two jobs at once could write one line over
	# the other.
	: >"$T/out"
	qworker "${cmd[@]}" >>"$T/out" 2>"$T/log" ||
	    fail "qworker: exit $?: $(cat "$T/log")"
	[[ $(sort "$T/out") == $'one\ntwo' ]] ||
	    fail "output: $(cat "$T/out"); log: $(cat "$T/log")"
	local s
	for s in new cur retry dead; do
		assert_count "$s" jobs 0
	done
	assert_equal "$(grep -c ' ack ' "$T/log")" 2
}
