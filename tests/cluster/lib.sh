# tests/cluster/lib.sh - set up and tear down GlusterFS on loopback for the
# cluster scenarios (sourced by tests/cluster/run and tests/cluster/bench).
#
#   cl_unusable		print why the cluster cannot be set up here (not
#			root, no /dev/fuse, a package missing, port 24007
#			taken) and return 0; return 1 when it can
#   cl_setup WORK	start glusterd as a child of this shell, with its
#			working, run and log directories under WORK (never
#			/var/lib/glusterd), bound to 127.0.0.1; create and
#			start volume "sq1" (one brick) and "sq2" (two bricks,
#			distributed); mount each twice through FUSE, at
#			WORK/mnt/VOL/A and WORK/mnt/VOL/B.  Returns 1, with
#			the reason in $cl_why, when glusterd or a volume
#			does not come up.
#   cl_teardown		unmount, stop and delete the volumes, end the brick,
#			client and glusterd processes by their pids, and
#			check that no process, mount or socket of WORK is
#			left (prints what is, and returns 1).  Safe to call
#			twice, and from an EXIT trap after a failure.
#   cl_on HOST CMD...	run CMD in a UTS namespace of its own whose host
#			name is HOST: message IDs and worker locks then
#			differ as on two machines.
#
# glusterd insists on port 24007 (the bricks fetch their volume files
# from it whatever port it listens on), so only one such cluster can run
# on a machine at a time; a second one finds the port taken and is
# skipped with that reason.  Brick ports are taken from 49400 up.
# The brick sockets go to /run/gluster/HASH.socket (glusterd names them
# there whatever its run-directory); teardown removes those of its bricks.

CL_VOLUMES="sq1 sq2"
cl_pids=()		# client and glusterd pids, ended by teardown
cl_mounts=()		# mount points, unmounted by teardown
cl_vols=()		# volumes created
cl_work=
cl_why=

cl_unusable() {
	local c
	if [ "$(id -u)" != 0 ]; then
		echo "not root (glusterd and FUSE mounts need root)"
		return 0
	fi
	if [ ! -c /dev/fuse ]; then
		echo "no /dev/fuse"
		return 0
	fi
	for c in glusterd gluster glusterfs unshare; do
		if ! PATH=$PATH:/usr/sbin:/sbin command -v "$c" >/dev/null; then
			echo "$c not installed (apt-get install glusterfs-server glusterfs-client)"
			return 0
		fi
	done
	if ss -Hltn 'sport = :24007' 2>/dev/null | grep -q .; then
		echo "port 24007 is taken (another glusterd runs here)"
		return 0
	fi
	return 1
}

# cl_gluster ARGS...: the gluster CLI against our glusterd's own socket.
cl_gluster() {
	gluster --glusterd-sock="$cl_work/run/glusterd.socket" --mode=script \
	    --log-file="$cl_work/log/cli.log" "$@"
}

# cl_wait SECONDS CMD...: run CMD every 0.1 s until it succeeds.
cl_wait() {
	local n=$(($1 * 10))
	shift
	while ! "$@"; do
		n=$((n - 1))
		[ "$n" -gt 0 ] || return 1
		sleep 0.1
	done
}

cl_is_fuse() {
	[ "$(stat -f -c %T "$1" 2>/dev/null)" = fuseblk ] ||
	    grep -q " $1 fuse" /proc/mounts
}

cl_setup() {
	local w=$1 v b side host
	cl_work=$w
	host=$(hostname)
	mkdir -p "$w/wd" "$w/run" "$w/log" "$w/bricks" "$w/mnt" || return
	cat >"$w/glusterd.vol" <<EOF
volume management
    type mgmt/glusterd
    option working-directory $w/wd
    option run-directory $w/run
    option logging-directory $w/log
    option glusterd-sockfile $w/run/glusterd.socket
    option transport-type socket
    option transport.socket.listen-port 24007
    option transport.socket.bind-address 127.0.0.1
    option ping-timeout 0
    option event-threads 1
    option base-port 49400
    option max-port 49599
end-volume
EOF
	glusterd -N -f "$w/glusterd.vol" -p "$w/run/glusterd.pid" \
	    -l "$w/log/glusterd.log" &
	cl_pids+=($!)
	if ! cl_wait 20 test -S "$w/run/glusterd.socket" ||
	    ! cl_wait 20 cl_gluster volume list >/dev/null 2>&1; then
		cl_why="glusterd did not start (see $w/log/glusterd.log)"
		return 1
	fi
	# The volume names a host that resolves to this machine: gluster
	# refuses 127.0.0.1 and localhost.
	if ! getent hosts "$host" | grep -q '^127\.'; then
		cl_why="host name $host does not resolve to 127.0.0.x (/etc/hosts)"
		return 1
	fi
	for v in $CL_VOLUMES; do
		local bricks=()
		case $v in
		sq1) bricks=("$host:$w/bricks/${v}a") ;;
		*) bricks=("$host:$w/bricks/${v}a" "$host:$w/bricks/${v}b") ;;
		esac
		if ! cl_gluster volume create "$v" "${bricks[@]}" force \
		    >>"$w/log/setup.out" 2>&1; then
			cl_why="gluster volume create $v failed (see $w/log/setup.out)"
			return 1
		fi
		cl_vols+=("$v")
		if ! cl_gluster volume start "$v" >>"$w/log/setup.out" 2>&1; then
			cl_why="gluster volume start $v failed (see $w/log/)"
			return 1
		fi
		for side in A B; do
			b=$w/mnt/$v/$side
			mkdir -p "$b"
			glusterfs --volfile-server=127.0.0.1 --volfile-id="$v" \
			    -p "$w/run/mnt-$v-$side.pid" \
			    -l "$w/log/mnt-$v-$side.log" "$b" || {
				cl_why="mounting $v at $b failed"
				return 1
			}
			cl_mounts+=("$b")
			if ! cl_wait 20 cl_is_fuse "$b"; then
				cl_why="$b: not mounted (see $w/log/mnt-$v-$side.log)"
				return 1
			fi
		done
	done
}

# cl_pidfile_kill FILE: end the process whose pid FILE holds, if it is
# still running, and wait for it (up to 10 s, then SIGKILL).
cl_pidfile_kill() {
	local pid
	pid=$(cat "$1" 2>/dev/null) || return 0
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	cl_wait 10 cl_gone "$pid" || kill -KILL "$pid" 2>/dev/null
	cl_wait 5 cl_gone "$pid"
}

cl_gone() {
	! kill -0 "$1" 2>/dev/null
}

cl_teardown() {
	local w=$cl_work m v f pid left=
	[ -n "$w" ] || return 0
	for m in ${cl_mounts[@]+"${cl_mounts[@]}"}; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	# Each client process exits on unmount; end any that did not.
	for f in "$w"/run/mnt-*.pid; do
		[ -e "$f" ] && cl_pidfile_kill "$f"
	done
	for v in ${cl_vols[@]+"${cl_vols[@]}"}; do
		cl_gluster volume stop "$v" force >/dev/null 2>&1
		cl_gluster volume delete "$v" >/dev/null 2>&1
	done
	# Bricks that volume stop did not end (glusterd gone, or a failure).
	for f in "$w"/run/vols/*/*.pid; do
		[ -e "$f" ] && cl_pidfile_kill "$f"
	done
	for pid in ${cl_pids[@]+"${cl_pids[@]}"}; do
		kill -TERM "$pid" 2>/dev/null
		cl_wait 10 cl_gone "$pid" || kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	# What is left: mounts under WORK, processes naming WORK, sockets.
	if grep -qF " $w/" /proc/mounts; then
		left="$left mounts:$(grep -F " $w/" /proc/mounts | cut -d' ' -f2 | tr '\n' ' ')"
	fi
	for pid in $(pgrep -f -- "$w/" 2>/dev/null); do
		[ "$pid" != $$ ] && left="$left pid:$pid"
	done
	if ss -Hltn 'sport = :24007' 2>/dev/null | grep -q .; then
		left="$left port:24007"
	fi
	# The brick processes' sockets, named in their command lines.
	for f in $(grep -ho -- '-S /[^ ]*\.socket' "$w"/log/bricks/*.log 2>/dev/null |
	    cut -c4- | sort -u); do
		rm -f -- "$f"
	done
	cl_mounts=() cl_pids=() cl_vols=() cl_work=
	if [ -n "$left" ]; then
		echo "cluster teardown: left behind:$left" >&2
		return 1
	fi
	rm -rf -- "$w"
}

cl_on() {
	local host=$1
	shift
	unshare --uts -- sh -c 'hostname "$0" && exec "$@"' "$host" "$@"
}
