# bridge.bash - real brokers for the qbridge suites (tests/97-qbridge-*.bats):
# each is started as a child of the test on 127.0.0.1, on a free port, with
# a private directory, and stopped by its pid.  A broker that cannot start
# here makes its tests skip with the reason, never pass.
#
# QBRIDGE_TEST_N: messages of the round trips (default 1000; 10000 in
# make check-bridge).

BRIDGE_N=${QBRIDGE_TEST_N:-1000}

# free_port: a TCP port free on 127.0.0.1 right now.
free_port() {
	perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(Listen => 1,
	    LocalAddr => "127.0.0.1", LocalPort => 0, ReuseAddr => 1)->sockport, "\n"'
}

# redis_start DIR [PORT]: start redis-server (appendfsync always) with its
# files in DIR; sets REDIS_PID and REDIS_PORT.  Returns 1, with the reason
# in BRIDGE_SKIP, when it cannot start.
redis_start() {
	local dir=$1 port=${2:-} tries
	command -v redis-server >/dev/null ||
	    { BRIDGE_SKIP="redis-server not installed"; return 1; }
	mkdir -p "$dir"
	for tries in 1 2 3; do
		[[ -n $port ]] || port=$(free_port)
		# Not a job of the test: it outlives the test that restarts it.
		REDIS_PID=$(redis-server --port "$port" --bind 127.0.0.1 \
		    --dir "$dir" --appendonly yes --appendfsync always \
		    --save '' --daemonize no --logfile "$dir/log" \
		    </dev/null >/dev/null 2>&1 & echo $!)
		REDIS_PORT=$port
		if wait_until 10 redis_up; then
			return 0
		fi
		redis_kill
		port=${2:-}
	done
	BRIDGE_SKIP="redis-server does not start: $(tail -n 3 "$dir/log" 2>/dev/null)"
	return 1
}

redis_up() {
	kill -0 "$REDIS_PID" 2>/dev/null &&
	    [[ $(redis-cli -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]
}

# redis_kill: kill -9 the server and wait until it is gone.
redis_kill() {
	kill -9 "$REDIS_PID" 2>/dev/null
	wait_until 10 gone "$REDIS_PID" || true
}

# gone PID: no such process any more.
gone() {
	! kill -0 "$1" 2>/dev/null
}

# nats_start DIR [PORT [OPTION...]]: start nats-server with JetStream, its
# store in DIR; sets NATS_PID and NATS_PORT.  Returns 1, with the reason
# in BRIDGE_SKIP, when it cannot start.
nats_start() {
	local dir=$1 port=${2:-} tries
	shift $(($# > 1 ? 2 : 1))
	command -v nats-server >/dev/null ||
	    { BRIDGE_SKIP="nats-server not installed"; return 1; }
	mkdir -p "$dir"
	for tries in 1 2 3; do
		[[ -n $port ]] || port=$(free_port)
		: >"$dir/log"
		NATS_PID=$(nats-server -js -a 127.0.0.1 -p "$port" -sd "$dir" \
		    -l "$dir/log" "$@" </dev/null >/dev/null 2>&1 & echo $!)
		NATS_PORT=$port
		if wait_until 10 nats_up "$dir"; then
			return 0
		fi
		nats_kill
		port=
	done
	BRIDGE_SKIP="nats-server does not start: $(tail -n 3 "$dir/log" 2>/dev/null)"
	return 1
}

# nats_up DIR: the server of DIR is ready.
nats_up() {
	kill -0 "$NATS_PID" 2>/dev/null && grep -q 'Server is ready' "$1/log"
}

nats_kill() {
	kill -9 "$NATS_PID" 2>/dev/null
	wait_until 10 gone "$NATS_PID" || true
}

# bridge_digest QUEUE: per ready message in ID order, its body and its
# routing key and attributes (the attr/ sidecar), in hex, on one line.
bridge_digest() {
	perl -e '
		my $d = shift;
		opendir(my $dh, "$d/new") or die "$d/new: $!\n";
		for my $n (sort grep { !/^\./ } readdir($dh)) {
			(my $id = $n) =~ s/,.*//;
			my @v;
			for my $f ("$d/new/$n", "$d/attr/$id") {
				my $s = "";
				if (open(my $fh, "<", $f)) {
					local $/;
					$s = <$fh>;
				}
				push @v, unpack("H*", $s);
			}
			print "@v\n";
		}' "$(qdir "$1")"
}

# bridge_fill QUEUE N: N messages in groups of 100, each group with its own
# routing key and attributes, bodies of varied bytes (NUL, newline, UTF-8).
bridge_fill() {
	local q=$1 n=$2 g
	for ((g = 0; g * 100 < n; g++)); do
		perl -e 'my ($g, $n) = @ARGV;
		    for my $i (0 .. $n - 1) {
			printf "msg %d.%d \x01\xc3\xa9\n%s\0", $g, $i,
			    "x" x (($g * 7 + $i) % 300);
		    }' "$g" "$(( n - g * 100 < 100 ? n - g * 100 : 100 ))" |
		    qsend -0 "$q" -k "route.$g" -H "group=$g" -H "h-$((g % 3))=v $g" ||
		    return 1
	done
}

# bridge_kill_rounds URL-OUT URL-IN: six rounds of an outbox (queue a to
# URL-OUT) and an inbox (URL-IN to queue b) killed with SIGKILL after a
# random 0.1 to 0.4 seconds.
bridge_kill_rounds() {
	local round out in
	for round in 1 2 3 4 5 6; do
		qbridge out -q a "$1" &
		out=$!
		qbridge in -q "$2" b &
		in=$!
		sleep "0.$((RANDOM % 4 + 1))"
		kill -9 "$out" "$in"
		wait "$out" "$in" || true
	done
}

# bridge_bodies QUEUE: every ready body in hex, sorted (a multiset).
bridge_bodies() {
	bridge_digest "$1" | cut -d' ' -f1 | sort
}

# rabbit_start DIR [PORTS]: start rabbitmq-server (its Erlang node, epmd
# and files all private: RABBITMQ_MNESIA_BASE, _LOG_BASE, _NODENAME,
# _NODE_PORT, _DIST_PORT, ERL_EPMD_PORT) with its files in DIR; PORTS,
# "AMQP DIST EPMD", restarts it on the ports it had.  Sets RABBIT_PID (the
# Erlang VM), RABBIT_PORT and RABBIT_PORTS.  It takes 10 to 30 seconds.
# Returns 1, with the reason in BRIDGE_SKIP, when it cannot start.
rabbit_start() {
	local dir=$1 ports=${2:-} amqp dist epmd
	[[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]] ||
	    { BRIDGE_SKIP="rabbitmq-server not installed"; return 1; }
	[[ -n $ports ]] || ports="$(free_port) $(free_port) $(free_port)"
	read -r amqp dist epmd <<<"$ports"
	mkdir -p "$dir/home"
	echo '[].' >"$dir/plugins"
	rm -f "$dir/pid"
	# The script, not the wrapper in /usr/sbin, which would switch to
	# the rabbitmq user; not a job of the test, so that it outlives the
	# test that restarts it.
	(
		export HOME=$dir/home RABBITMQ_MNESIA_BASE=$dir/mnesia \
		    RABBITMQ_LOG_BASE=$dir/log \
		    RABBITMQ_NODENAME=spoolq-$epmd@localhost \
		    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
		    RABBITMQ_NODE_PORT=$amqp RABBITMQ_DIST_PORT=$dist \
		    ERL_EPMD_PORT=$epmd RABBITMQ_PID_FILE=$dir/pid \
		    RABBITMQ_ENABLED_PLUGINS_FILE=$dir/plugins \
		    RABBITMQ_CONFIG_FILE=$dir/rabbitmq \
		    RABBITMQ_ADVANCED_CONFIG_FILE=$dir/advanced.config
		/usr/lib/rabbitmq/bin/rabbitmq-server </dev/null \
		    >"$dir/out.log" 2>&1 &
	)
	RABBIT_PORT=$amqp RABBIT_PORTS=$ports
	if ! wait_until 120 rabbit_up "$dir"; then
		BRIDGE_SKIP="rabbitmq-server does not start: $(tail -n 3 "$dir/out.log" 2>/dev/null)"
		rabbit_kill "$dir"
		return 1
	fi
	RABBIT_PID=$(cat "$dir/pid")
}

# rabbit_up DIR: the server of DIR takes AMQP connections.
rabbit_up() {
	[[ -s $1/pid ]] && kill -0 "$(cat "$1/pid")" 2>/dev/null &&
	    (exec 3<>"/dev/tcp/127.0.0.1/$RABBIT_PORT") 2>/dev/null
}

# rabbit_kill DIR: kill -9 the server's Erlang VM (if not gone already).
rabbit_kill() {
	local pid
	pid=$(cat "$1/pid" 2>/dev/null) || return 0
	kill -9 "$pid" 2>/dev/null || true
	wait_until 10 gone "$pid" || true
}

# rabbit_ctl DIR ARG...: rabbitmqctl against the server of DIR (its node
# name, epmd and cookie), quietly.
rabbit_ctl() {
	local dir=$1 epmd=${RABBIT_PORTS##* }
	shift
	HOME=$dir/home ERL_EPMD_PORT=$epmd /usr/lib/rabbitmq/bin/rabbitmqctl \
	    -q -n "spoolq-$epmd@localhost" "$@"
}

# RABBIT_SYNC_ERL: Erlang, run in the server, that puts on its disk what
# its metadata store (Mnesia) has committed.  RabbitMQ 3.x answers a
# queue.declare of a new durable queue once Mnesia logged the transaction
# as "presumed aborted" and synced that log; the "committed" decision goes
# to the log afterwards (mnesia_recover, asynchronously) and waits in the
# log's write cache for up to 2 s, or until the next synced transaction.
# A kill -9 meanwhile loses it: started again, Mnesia drops the
# declaration, and RabbitMQ deletes the queue's directory as garbage, with
# every message it had confirmed into the queue.  So: the decision logged
# (mnesia_recover has handled what was sent to it before), then the log
# synced.
RABBIT_SYNC_ERL='_ = sys:get_state(mnesia_recover), ok = disk_log:sync(latest_log)'

# rabbit_meta_sync DIR: the metadata the server of DIR has committed (the
# queues declared so far) is on its disk; a kill -9 after this keeps them.
rabbit_meta_sync() {
	rabbit_ctl "$1" eval "$RABBIT_SYNC_ERL, ok." >/dev/null
}

# rabbit_stop DIR: kill the server and its epmd.
rabbit_stop() {
	rabbit_kill "$1"
	# epmd refuses while it still lists the node it has not seen go.
	wait_until 10 epmd_kill "${RABBIT_PORTS##* }" || true
}

epmd_kill() {
	ERL_EPMD_PORT=$1 epmd -kill >/dev/null 2>&1
}

# tls_certs DIR: a throw-away CA (DIR/ca.pem) and a server certificate
# it signed for the name localhost only (DIR/server.pem, DIR/server.key),
# and a CA that signed nothing here (DIR/other.pem).  Returns 1, with the
# reason in BRIDGE_SKIP, without openssl.
tls_certs() {
	local d=$1
	command -v openssl >/dev/null ||
	    { BRIDGE_SKIP="openssl not installed"; return 1; }
	mkdir -p "$d"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 \
	    -subj '/CN=spoolq test CA' -keyout "$d/ca.key" -out "$d/ca.pem" \
	    2>/dev/null &&
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 \
	    -subj '/CN=spoolq other CA' -keyout "$d/other.key" \
	    -out "$d/other.pem" 2>/dev/null &&
	openssl req -newkey rsa:2048 -nodes -subj '/CN=localhost' \
	    -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null &&
	printf 'subjectAltName = DNS:localhost\n' >"$d/ext" &&
	openssl x509 -req -days 2 -in "$d/server.csr" -CA "$d/ca.pem" \
	    -CAkey "$d/ca.key" -CAcreateserial -extfile "$d/ext" \
	    -out "$d/server.pem" 2>/dev/null ||
	    { BRIDGE_SKIP="openssl cannot make certificates"; return 1; }
}

# rabbit_tls DIR CERTS PORT: the server of DIR (before rabbit_start) also
# listens for AMQP over TLS on 127.0.0.1:PORT with the certificate of
# CERTS (tls_certs), asking none of its clients.
rabbit_tls() {
	mkdir -p "$1"
	cat >"$1/rabbitmq.conf" <<-EOF
	listeners.ssl.1 = 127.0.0.1:$3
	ssl_options.cacertfile = $2/ca.pem
	ssl_options.certfile = $2/server.pem
	ssl_options.keyfile = $2/server.key
	ssl_options.verify = verify_none
	ssl_options.fail_if_no_peer_cert = false
	EOF
}

# bridge_groups QUEUE: per message waiting in QUEUE (new/ and groups/),
# its group key (g=, "-" for none) and its body, by group, in ID order
# within each (the order a bridge keeps: a group's next message is
# published only after its head).
bridge_groups() {
	perl -e '
		my $d = shift;
		my %m;
		for my $dir ("$d/new", glob("$d/groups/*")) {
			opendir(my $dh, $dir) or next;
			for my $n (grep { !/^[.,]/ } readdir($dh)) {
				(my $id = $n) =~ s/,.*//;
				my ($g) = $n =~ /,g=([^,]+)/;
				open(my $fh, "<", "$dir/$n") or die "$dir/$n: $!\n";
				local $/;
				$m{$id} = [$g // "-", <$fh>];
			}
		}
		print "$m{$_}[0] $m{$_}[1]\n" for sort {
			$m{$a}[0] cmp $m{$b}[0] or $a cmp $b } keys %m;' \
	    "$(qdir "$1")"
}
