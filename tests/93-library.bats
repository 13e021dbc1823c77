#!/usr/bin/env bats
# libspoolq for programs: the shared library exports exactly the public
# API, all of it listed in debian/libspoolq0.symbols, make install puts
# library, headers and spoolq.pc below DESTDIR, and the example producer
# and consumer build against that install with pkg-config and share a
# queue with the tools.

load helpers

setup() {
	spoolq_setup
	TOP=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
	# make install runs here on its own, whatever make ran the suite.
	unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES
	# Built from the tree, not from SPOOLQ_BIN: once per suite run.
	[[ $SPOOLQ_BIN -ef $TOP/bin ]] ||
	    skip "the library is tested with the build tree's tools"
}

teardown() {
	spoolq_teardown
}

# public: the functions the public headers (spoolq.h and the headers it
# includes) declare, one a line, sorted.
public() {
	local h hs=("$TOP/lib/spoolq.h")
	for h in $(sed -n 's/^#include "\([a-z_]*\.h\)"$/\1/p' "$TOP/lib/spoolq.h"); do
		hs+=("$TOP/lib/$h")
	done
	((${#hs[@]} >= 6))
	awk '/^[a-z]/ && !/^typedef/ && match($0, /sq_[a-z0-9_]+\(/) {
		print substr($0, RSTART, RLENGTH - 1) }' "${hs[@]}" | sort -u
}

@test "libspoolq.so.0 exports the public API and nothing else" {
	[[ -f $TOP/lib/libspoolq.so.0 ]] || fail "lib/libspoolq.so.0: not built"
	nm -D --defined-only "$TOP/lib/libspoolq.so.0" |
	    awk '{ print $3 }' | sort -u >"$T/exported"
	public >"$T/public"
	run diff "$T/public" "$T/exported"
	assert_success
	assert_equal "$(grep -c . "$T/public")" "$(grep -c . "$T/exported")"
	# The internal helpers are there, but local.
	nm "$TOP/lib/libspoolq.so.0" | grep -q ' t move_message$'
	run objdump -p "$TOP/lib/libspoolq.so.0"
	assert_line --regexp '^ +SONAME +libspoolq\.so\.0$'
}

@test "debian/libspoolq0.symbols lists every function libspoolq.so.0 exports, and no other" {
	[[ -f $TOP/lib/libspoolq.so.0 ]] || fail "lib/libspoolq.so.0: not built"
	nm -D --defined-only "$TOP/lib/libspoolq.so.0" |
	    awk '{ print $3 }' | sort -u >"$T/exported"
	awk '/^ / { sub(/@.*/, "", $1); print $1 }' \
	    "$TOP/debian/libspoolq0.symbols" | sort >"$T/listed"
	(($(grep -c . "$T/exported") > 50))
	run diff "$T/exported" "$T/listed"
	assert_success
}

@test "make install DESTDIR: library, headers, spoolq.pc, libspoolq(3)" {
	local d=$T/dest p=$T/dest/usr/local
	make -s --no-print-directory -C "$TOP" install DESTDIR="$d" \
	    PREFIX=/usr/local >"$T/make.out" 2>&1 || {
		cat "$T/make.out"
		fail "make install failed"
	}
	assert_file_exists "$p/lib/libspoolq.so.0"
	assert_link_exists "$p/lib/libspoolq.so"
	assert_equal "$(readlink "$p/lib/libspoolq.so")" libspoolq.so.0
	assert_file_exists "$p/lib/libspoolq.a"
	for h in spoolq exchange inspect output repair; do
		assert_file_exists "$p/include/spoolq/$h.h"
	done
	assert_file_exists "$p/share/man/man3/libspoolq.3"
	for e in producer consumer; do
		cmp "$TOP/examples/$e.c" "$p/share/doc/spoolq/examples/$e.c"
	done
	run grep -x 'prefix=/usr/local' "$p/lib/pkgconfig/spoolq.pc"
	assert_success
	# uninstall takes the library back out.
	make -s --no-print-directory -C "$TOP" uninstall DESTDIR="$d" \
	    PREFIX=/usr/local >/dev/null 2>&1
	assert_file_not_exists "$p/lib/libspoolq.so.0"
	assert_file_not_exists "$p/lib/pkgconfig/spoolq.pc"
	assert_dir_not_exists "$p/include/spoolq"
	assert_dir_not_exists "$p/share/doc/spoolq"
}

@test "the example producer and consumer build against the installed library" {
	local d=$T/dest p=$T/dest/usr/local flags
	make -s --no-print-directory -C "$TOP" install DESTDIR="$d" \
	    PREFIX=/usr/local >"$T/make.out" 2>&1 || {
		cat "$T/make.out"
		fail "make install failed"
	}
	export PKG_CONFIG_PATH=$p/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$d
	flags=$(pkg-config --cflags --libs spoolq)
	[[ $flags == *"-I$p/include/spoolq"* ]] || fail "cflags: $flags"
	for prog in producer consumer; do
		# shellcheck disable=SC2086
		cc -Wall -Wextra -Werror \
		    -o "$T/$prog" "$TOP/examples/$prog.c" $flags
	done
	run objdump -p "$T/consumer"
	assert_line --regexp '^ +NEEDED +libspoolq\.so\.0$'
	export LD_LIBRARY_PATH=$p/lib
	mkq jobs
	"$T/producer" jobs one 'two words' three
	qsend jobs four
	assert_count new jobs 4
	run "$T/consumer" jobs
	assert_success
	assert_output $'one\ntwo words\nthree\nfour'
	assert_count new jobs 0
	assert_count cur jobs 0
	# What the example sent, the tools claim, and the other way round.
	"$T/producer" jobs five
	run qrecv -A jobs
	assert_output five
	# A queue argument is a name under the spool root or, with a slash,
	# a path, as for the tools (sq_queue_open_arg).
	"$T/producer" "$SPOOLQ_DIR/jobs" six
	run qrecv -A jobs
	assert_output six
	expect_fail 66 "$T/consumer" nosuchqueue
	assert_output "consumer: $SPOOLQ_DIR/nosuchqueue: no such queue"
	expect_fail 66 "$T/producer" -jobs one
	assert_output 'producer: -jobs: bad queue name'
	expect_fail 64 "$T/producer" jobs
	# A claim that fails is an error, not an empty queue: the consumer
	# says so and exits 74, and the message stays ready.
	"$T/producer" jobs six
	expect_fail 74 strace -f -o /dev/null -e inject=renameat2:error=EIO \
	    "$T/consumer" jobs
	assert_output 'consumer: jobs: Input/output error'
	assert_count new jobs 1
	# A body it cannot print goes back to new/ at once, its attempt not
	# counted, and the consumer stops with 74: a full disk, and a closed
	# pipe (EPIPE and SIGPIPE), which neither kills it holding the claim
	# until its lease nor sends the rest of the queue to retry/.
	"$T/producer" jobs seven
	# shellcheck disable=SC2016
	expect_fail 74 sh -c '"$0" jobs >/dev/full' "$T/consumer"
	assert_output 'consumer: standard output: No space left on device'
	assert_count new jobs 2
	assert_count cur jobs 0
	assert_count retry jobs 0
	expect_fail 74 strace -f -o /dev/null \
	    -e inject=write:error=EPIPE:signal=SIGPIPE "$T/consumer" jobs
	assert_count new jobs 2
	assert_count cur jobs 0
	assert_count retry jobs 0
	run qrecv jobs
	assert_success
	[[ $output == *,a=1,* ]] || fail "attempt counted by a failed print: $output"
}

# calls: "A B" for each library module A (lib/A.o of the build tree) that
# calls a function or uses data defined in module B, one a line, sorted.
calls() {
	local o
	for o in "$TOP"/lib/*.o; do
		nm "$o" | awk -v m="$(basename "$o" .o)" \
		    '$1 == "U" { print "U", $2, m } NF == 3 && $2 ~ /^[TDBR]$/ { print "D", $3, m }'
	done | awk '$1 == "D" { def[$2] = $3; next } { use[NR] = $2 " " $3 }
	    END { for (i in use) { split(use[i], u, " ");
		if ((u[1] in def) && def[u[1]] != u[2]) print u[2], def[u[1]] } }' | sort -u
}

@test "no two library modules call each other: the calls between lib/*.c form no cycle, with the state machine (move.c) at the bottom" {
	[[ -e $TOP/lib/move.o ]] || skip "the objects are not built"
	local edges m
	run calls
	assert_success
	edges=$output
	# The graph is there to judge: the moves between states are move.c's.
	assert_line "claim move"
	for m in settle send dedup admin worker group gc archive check; do
		grep -qx "$m move" <<<"$edges" || fail "$m does not move messages by move.c"
	done
	# move.c calls nothing but the name rules and the file system.
	assert_equal "$(awk '$1 == "move" { print $2 }' <<<"$edges" | tr '\n' ' ')" "fsutil name "
	run tsort <<<"$edges"
	assert_success
	refute_output --partial loop
}
