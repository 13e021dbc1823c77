#!/usr/bin/env bats
# The Debian package: dpkg-buildpackage builds spoolq, libspoolq0 and
# libspoolq-dev from a copy of the tree, lintian finds no error in them,
# every file make install installs is in one of them, the maintainer
# scripts make the spool root and start nothing, and the tools and the
# library work as unpacked into a scratch root (dpkg -x; the host's
# package database is never touched).

load helpers

setup_file() {
	local start
	TOP=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
	# Built once per suite run, by the run of the build tree's tools
	# (setup skips every test of the others).
	if ! [[ ${SPOOLQ_BIN:-$TOP/bin} -ef $TOP/bin ]]; then
		export PKG_SKIP=1
		return 0
	fi
	# Nothing of an outer make or of the caller's flags reaches the build.
	unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES CFLAGS CPPFLAGS \
	    LDFLAGS O CI WERROR DEB_BUILD_OPTIONS
	PKG=$BATS_FILE_TMPDIR/pkg
	ROOT=$BATS_FILE_TMPDIR/root
	MA=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
	export TOP PKG ROOT MA
	mkdir -p "$PKG/src" "$ROOT"
	tar -C "$TOP" --exclude=./.git --exclude=./bin --exclude=./build-asan \
	    --exclude=./build-fuzz --exclude=./lib/pic --exclude='*.o' \
	    --exclude='*.d' --exclude='*.a' -cf - . | tar -C "$PKG/src" -xf -
	start=$SECONDS
	if ! (cd "$PKG/src" && dpkg-buildpackage -us -uc -b) \
	    >"$PKG/build.log" 2>&1; then
		sed 's/^/# /' "$PKG/build.log" | tail -40 >&3
		return 1
	fi
	echo $((SECONDS - start)) >"$PKG/seconds"
	for p in spoolq libspoolq0 libspoolq-dev; do
		dpkg -x "$PKG/${p}_"*"_$(dpkg-architecture -qDEB_HOST_ARCH).deb" \
		    "$ROOT"
	done
}

setup() {
	[[ -z ${PKG_SKIP-} ]] ||
	    skip "the package is built in the run with the build tree's tools"
	spoolq_setup
}

teardown() {
	spoolq_teardown
}

@test "dpkg-buildpackage builds spoolq, libspoolq0 and libspoolq-dev" {
	local p
	for p in spoolq libspoolq0 libspoolq-dev; do
		compgen -G "$PKG/${p}_*.deb" >/dev/null || fail "no ${p}_*.deb"
	done
	echo "# built in $(cat "$PKG/seconds")s" >&3
	run dpkg-deb -f "$PKG"/spoolq_*_*.deb Depends
	assert_output --partial adduser
	# The tools link libspoolq statically: only the library needs it.
	run dpkg-deb -f "$PKG"/spoolq_*_*.deb Depends
	refute_output --partial libspoolq
	run dpkg-deb -f "$PKG"/libspoolq-dev_*_*.deb Depends
	assert_output --partial 'libspoolq0 (= '
}

@test "lintian reports no errors" {
	run lintian --fail-on error "$PKG"/spoolq_*.changes
	echo "$output" | sed 's/^/# /' >&3
	assert_success
	refute_output --regexp '^E: '
}

@test "libspoolq0 has a symbols file: every exported function, none that is gone" {
	dpkg-deb -e "$PKG"/libspoolq0_*_*.deb "$T/ctrl"
	run grep -x '\* Build-Depends-Package: libspoolq-dev' "$T/ctrl/symbols"
	assert_success
	nm -D --defined-only "$ROOT/usr/lib/$MA/libspoolq.so.0" |
	    awk '$2 == "T" { print $3 }' | sort >"$T/exported"
	awk '/^ / { sub(/@.*/, "", $1); print $1 }' "$T/ctrl/symbols" |
	    sort >"$T/shipped"
	(($(wc -l <"$T/exported") > 50))
	run diff "$T/exported" "$T/shipped"
	assert_success
	# debian/libspoolq0.symbols lists nothing the library lost (a new
	# function missing from it only warns: see the file).
	awk '/^ / { sub(/@.*/, "", $1); print $1 }' \
	    "$TOP/debian/libspoolq0.symbols" | sort >"$T/listed"
	run comm -23 "$T/listed" "$T/exported"
	assert_output ''
}

@test "every file make install installs is in a package" {
	local d
	(cd "$PKG/src/debian/tmp" && find . ! -type d | sed 's|^\.||' |
	    sed 's|\.gz$||' | sort) >"$T/installed"
	for d in "$PKG"/spoolq_*_*.deb "$PKG"/libspoolq0_*_*.deb \
	    "$PKG"/libspoolq-dev_*_*.deb; do
		dpkg-deb --fsys-tarfile "$d" | tar -tf - | grep -v '/$'
	done | sed -e 's|^\.||' -e 's|\.gz$||' | sort >"$T/packaged"
	run comm -23 "$T/installed" "$T/packaged"
	assert_output ''
	assert_file_executable "$ROOT/usr/bin/qsend"
	assert_file_exists "$ROOT/usr/share/man/man1/qworker.1.gz"
	assert_file_exists "$ROOT/usr/share/man/man3/libspoolq.3.gz"
	assert_file_exists "$ROOT/usr/share/man/man5/spoolq.5.gz"
	assert_file_exists "$ROOT/usr/share/man/man7/spoolq.7.gz"
	assert_file_exists "$ROOT/usr/lib/$MA/libspoolq.so.0"
	assert_file_exists "$ROOT/usr/lib/$MA/libspoolq.a"
	assert_file_exists "$ROOT/usr/include/spoolq/spoolq.h"
	assert_file_exists "$ROOT/usr/share/doc/spoolq/examples/handler.sh"
	assert_file_exists "$ROOT/usr/share/doc/libspoolq-dev/examples/consumer.c"
	assert_dir_exists "$ROOT/var/spool/spoolq"
	# What make install adds beyond tools and library comes along.
	assert_file_exists "$ROOT/usr/share/bash-completion/completions/qadmin"
	assert_file_exists "$ROOT/lib/systemd/system/qworker@.service"
	run grep -x "libdir=/usr/lib/$MA" "$ROOT/usr/lib/$MA/pkgconfig/spoolq.pc"
	assert_success
}

@test "postinst makes the spoolq user and group, /var/spool/spoolq root:spoolq 2770, and starts nothing" {
	local c
	dpkg-deb -e "$PKG"/spoolq_*_*.deb "$T/ctrl"
	# Run it with the commands it may call replaced by ones that log,
	# so that the host is never changed.
	mkdir "$T/shim"
	for c in addgroup adduser chown chmod dpkg-statoverride getent \
	    deb-systemd-helper deb-systemd-invoke systemctl invoke-rc.d \
	    update-rc.d dpkg-maintscript-helper; do
		printf '#!/bin/sh\necho %s "$@" >>"%s"\nexit ${%s_STATUS:-0}\n' \
		    "$c" "$T/calls" "$(echo "$c" | tr -- -. __)" >"$T/shim/$c"
		chmod +x "$T/shim/$c"
	done
	# A fresh install: no group, no statoverride.
	PATH=$T/shim:$PATH getent_STATUS=2 dpkg_statoverride_STATUS=1 \
	    sh "$T/ctrl/postinst" configure
	run cat "$T/calls"
	assert_line 'addgroup --quiet --system spoolq'
	assert_line 'adduser --quiet --system --ingroup spoolq --no-create-home --home /var/spool/spoolq spoolq'
	assert_line 'chown root:spoolq /var/spool/spoolq'
	assert_line 'chmod 2770 /var/spool/spoolq'
	refute_output --regexp '(systemctl|invoke).* (re)?start'
	# The group exists and the admin set a statoverride: left alone.
	rm "$T/calls"
	PATH=$T/shim:$PATH sh "$T/ctrl/postinst" configure
	run cat "$T/calls"
	refute_line --partial addgroup
	refute_line --partial adduser
	refute_line --partial chown
	refute_line --partial chmod
}

@test "the installed tools: send, claim, ack, a worker, qadmin" {
	export SPOOLQ_BIN=$ROOT/usr/bin PATH=$ROOT/usr/bin:$PATH
	run qsend --version
	assert_output --regexp '^qsend \(spoolq\) [0-9]'
	mkq jobs
	qsend jobs 'hello'
	printf 'a\nb\n' | qsend -l jobs
	r=$(qrecv jobs)
	[[ $r == "$SPOOLQ_DIR/jobs/cur/"* ]] || fail "receipt: $r"
	assert_equal "$(cat "$r")" hello
	qack "$r"
	run qworker --drain -q jobs -- cat
	assert_success
	assert_output ab
	run qadmin stats --json jobs
	assert_success
	assert_equal "$(count new jobs)$(count cur jobs)" 00
}

@test "the installed tools pass the usage and qack suites" {
	run env SPOOLQ_BIN="$ROOT/usr/bin" bats --tap \
	    "$TOP/tests/15-usage.bats" "$TOP/tests/30-qack.bats"
	echo "$output" | grep -v '^ok' | sed 's/^/# /' >&3 || true
	assert_success
}

@test "the example consumer builds against the installed libspoolq-dev" {
	local ex=$ROOT/usr/share/doc/libspoolq-dev/examples prog
	export PKG_CONFIG_PATH=$ROOT/usr/lib/$MA/pkgconfig
	export PKG_CONFIG_SYSROOT_DIR=$ROOT
	for prog in producer consumer; do
		# shellcheck disable=SC2046
		cc -Wall -Wextra -Werror -o "$T/$prog" "$ex/$prog.c" \
		    $(pkg-config --cflags --libs spoolq)
	done
	export LD_LIBRARY_PATH=$ROOT/usr/lib/$MA
	mkq jobs
	"$T/producer" jobs one two
	run "$T/consumer" jobs
	assert_success
	assert_output $'one\ntwo'
}
