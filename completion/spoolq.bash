# bash completion for spoolq: qsend, qrecv, qack, qworker, qbridge and
# qadmin.
#
# Completes options, qadmin commands, queue and exchange names, state
# names, dead-letter reasons, queue.conf keys and their values (after
# "qadmin config QUEUE set KEY=" and "qadmin create QUEUE KEY="),
# durations and sizes.  Queue and
# exchange names are read from the spool root that the tool would use
# (spoolq(7)): -d ROOT on the command line, else $SPOOLQ_DIR, else
# /var/spool/spoolq for root, else ${XDG_STATE_HOME:-~/.local/state}/spoolq.
# A queue is a directory there with a new/ subdirectory, an exchange one
# with an exchange.conf; only these directories are looked at, never the
# messages, so completion costs the same on a queue of a million messages.
#
# Installed as completions/qadmin, with the other tools' names linked to
# it, for the bash-completion loader; or source it from ~/.bashrc.  It
# needs nothing of bash-completion itself.

# _spoolq_root: print the spool root named by the words before the cursor.
_spoolq_root()
{
	local i w root=
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		[[ $w == -- ]] && break
		if [[ $w == -d ]] && ((i + 1 < COMP_CWORD)); then
			root=${COMP_WORDS[i + 1]}
		elif [[ $w == -d?* ]]; then
			root=${w#-d}
		fi
	done
	if [[ -z $root ]]; then
		if [[ -n ${SPOOLQ_DIR-} ]]; then
			root=$SPOOLQ_DIR
		elif ((EUID == 0)); then
			root=/var/spool/spoolq
		else
			root=${XDG_STATE_HOME:-$HOME/.local/state}/spoolq
		fi
	fi
	[[ $root == "~"* ]] && root=$HOME${root#"~"}
	printf '%s\n' "$root"
}

# _spoolq_names queues|exchanges: the names of the spool root's queues or
# exchanges, one a line.
_spoolq_names()
{
	local root d mark=new/
	root=$(_spoolq_root)
	[[ $1 == exchanges ]] && mark=exchange.conf
	for d in "$root"/*/"$mark"; do
		[[ -e $d ]] || continue
		d=${d%/"$mark"}
		d=${d%/}
		printf '%s\n' "${d##*/}"
	done
}

# _spoolq_add WORD...: offer those of the words that begin with the
# current word.
_spoolq_add()
{
	local cur=${COMP_WORDS[COMP_CWORD]} IFS=$'\n'
	COMPREPLY+=($(compgen -W "$*" -- "$cur"))
}

_spoolq_queues() { _spoolq_add $(_spoolq_names queues); }
_spoolq_exchanges() { _spoolq_add $(_spoolq_names exchanges); }

# _spoolq_durations: durations (spoolq(5)): a number typed so far with
# each unit, or a few common ones.
_spoolq_durations()
{
	local cur=${COMP_WORDS[COMP_CWORD]} u
	if [[ $cur =~ ^[0-9]+$ ]]; then
		for u in ms s m h d; do
			COMPREPLY+=("$cur$u")
		done
	else
		_spoolq_add 500ms 10s 30s 1m 5m 15m 30m 1h 2h 6h 12h 1d 4d 7d
	fi
}

# _spoolq_sizes: sizes (spoolq(5)): a number typed so far with each
# unit, or a few common ones.
_spoolq_sizes()
{
	local cur=${COMP_WORDS[COMP_CWORD]} u
	if [[ $cur =~ ^[0-9]+$ ]]; then
		for u in k M G T; do
			COMPREPLY+=("$cur$u")
		done
	else
		_spoolq_add 64k 1M 10M 100M 1G 10G
	fi
}

# _spoolq_value KEY: offer what a value of the queue.conf KEY may be
# (spoolq(5)); nothing for numbers.
_spoolq_value()
{
	case $1 in
	lease | retry_delay | retry_max_delay | ttl | job_timeout | \
	    dedup_window | retention | poll_interval) _spoolq_durations ;;
	max_bytes | min_free_disk | retention_bytes) _spoolq_sizes ;;
	durability) _spoolq_add none fsync ;;
	overflow) _spoolq_add reject block drop-oldest ;;
	archive) _spoolq_add yes no ;;
	dead_letter) _spoolq_queues ;;
	esac
}

# _spoolq_setting: a KEY=VALUE operand: the key with its "=", then, once
# the "=" is typed, the values of that key.
_spoolq_setting()
{
	local cur=${COMP_WORDS[COMP_CWORD]} save i
	if [[ $cur == *=* ]]; then
		save=("${COMP_WORDS[@]}")
		COMP_WORDS[COMP_CWORD]=${cur#*=}
		_spoolq_value "${cur%%=*}"
		COMP_WORDS=("${save[@]}")
		for i in "${!COMPREPLY[@]}"; do
			COMPREPLY[i]=${cur%%=*}=${COMPREPLY[i]}
		done
	else
		compopt -o nospace 2>/dev/null
		_spoolq_arg key
		COMPREPLY=("${COMPREPLY[@]/%/=}")
	fi
}

_spoolq_files()
{
	local cur=${COMP_WORDS[COMP_CWORD]} IFS=$'\n'
	compopt -o filenames 2>/dev/null
	COMPREPLY+=($(compgen -f -- "$cur"))
}

_spoolq_dirs()
{
	local cur=${COMP_WORDS[COMP_CWORD]} IFS=$'\n'
	compopt -o filenames 2>/dev/null
	COMPREPLY+=($(compgen -d -- "$cur"))
}

# _spoolq_arg KIND: offer what an option's argument or an operand of
# KIND may be.
_spoolq_arg()
{
	case $1 in
	queue) _spoolq_queues ;;
	exchange) _spoolq_exchanges ;;
	target) _spoolq_queues; _spoolq_exchanges ;;
	duration) _spoolq_durations ;;
	size) _spoolq_sizes ;;
	setting) _spoolq_setting ;;
	dir) _spoolq_dirs ;;
	file) _spoolq_files ;;
	state) _spoolq_add ready inflight retry dead held grouped ;;
	reason) _spoolq_add attempts expired rejected timeout overflow ;;
	type) _spoolq_add fanout direct topic ;;
	key) _spoolq_add max_attempts lease retry_delay retry_max_delay ttl \
	    durability job_timeout dedup_window max_messages max_bytes \
	    overflow min_free_disk archive retention retention_bytes \
	    poll_interval rate dead_letter ;;
	esac
}

# _spoolq_scan OPTS-WITH-ARGS START: walk the words from START to the
# cursor.  Sets prev_opt to the option whose argument is being typed (or
# empty) and sets nargs to the operands before the cursor.  Options that
# take an argument are listed as "-k:KIND --delay:KIND ...".
_spoolq_scan()
{
	local spec=$1 i w o
	prev_opt= nargs=0 dashdash=
	for ((i = $2; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		if [[ -n $dashdash ]]; then
			nargs=$((nargs + 1))
			continue
		fi
		case $w in
		--) dashdash=$i ;;
		--*=*) ;;
		-?*)
			for o in $spec; do
				if [[ ${o%%:*} == "$w" ]]; then
					((i + 1 == COMP_CWORD)) && prev_opt=${o#*:}
					i=$((i + 1))
					break
				fi
			done ;;
		*) nargs=$((nargs + 1)) ;;
		esac
	done
}

# _spoolq_optarg SPEC: offer the argument of the option before the
# cursor, or of --opt=; return 1 if the cursor is on no option argument.
_spoolq_optarg()
{
	local cur=${COMP_WORDS[COMP_CWORD]} o save
	if [[ -n $prev_opt ]]; then
		_spoolq_arg "$prev_opt"
		return 0
	fi
	if [[ $cur == --*=* ]]; then
		for o in $1; do
			if [[ ${o%%:*} == "${cur%%=*}" ]]; then
				save=("${COMP_WORDS[@]}")
				COMP_WORDS[COMP_CWORD]=${cur#*=}
				_spoolq_arg "${o#*:}"
				COMP_WORDS=("${save[@]}")
				COMPREPLY=("${COMPREPLY[@]/#/${cur%%=*}=}")
				return 0
			fi
		done
	fi
	return 1
}

_spoolq_qsend()
{
	local spec='-d:dir -g:none -H:none -k:none --at:none --dedup-id:none
	    --delay:duration --timeout:duration --ttl:duration' f= w
	local prev_opt nargs dashdash
	_spoolq_scan "$spec" 1
	_spoolq_optarg "$spec" && return
	if [[ ${COMP_WORDS[COMP_CWORD]} == -* ]]; then
		_spoolq_add -0 -c -d -f -g -H -h -k -l -p -q -v --at --dedup-id \
		    --delay --help --timeout --ttl --version
		return
	fi
	for w in "${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
		[[ $w == -*f* && $w != --* ]] && f=1
	done
	if ((nargs == 0)); then
		_spoolq_arg target
	elif [[ -n $f ]]; then
		_spoolq_files
	fi
}

_spoolq_qrecv()
{
	local spec='-d:dir -n:none -w:none --lease:duration'
	local prev_opt nargs dashdash
	_spoolq_scan "$spec" 1
	_spoolq_optarg "$spec" && return
	if [[ ${COMP_WORDS[COMP_CWORD]} == -* ]]; then
		_spoolq_add -0 -A -d -h -n -q -v -w --auto-ack --help --lease \
		    --meta --raw --version
	elif ((nargs == 0)); then
		_spoolq_queues
	fi
}

_spoolq_qack()
{
	local spec='-d:dir --delay:duration --touch:duration --reject:reason'
	local prev_opt nargs dashdash
	_spoolq_scan "-d:dir --delay:duration --touch:duration" 1
	_spoolq_optarg "$spec" && return
	if [[ ${COMP_WORDS[COMP_CWORD]} == -* ]]; then
		_spoolq_add - -d -h -q -v --delay --help --reject --reject= \
		    --retry --touch --version
	else
		_spoolq_files
	fi
}

_spoolq_qworker()
{
	local spec='-d:dir -j:none -n:none -t:duration --grace:duration
	    --slots:none --output:dir --output-max:size --output-age:duration
	    --batch:none --batch-wait:duration --rate:none'
	local cur=${COMP_WORDS[COMP_CWORD]}
	local prev_opt nargs dashdash
	_spoolq_scan "$spec" 1
	if [[ -n $dashdash ]]; then
		if ((dashdash + 1 == COMP_CWORD)); then
			local IFS=$'\n'
			COMPREPLY=($(compgen -c -- "$cur" | sort -u))
		else
			_spoolq_files
		fi
		return
	fi
	_spoolq_optarg "$spec" && return
	if [[ $cur == -* ]]; then
		_spoolq_add -- -d -h -j -n -q -t -v --batch --batch-wait \
		    --drain --grace --help --output --output-age --output-max \
		    --rate --slots --version
	else
		_spoolq_queues
	fi
}

# qbridge out QUEUE URL, qbridge in URL QUEUE: the queue is offered where
# it goes; a URL is the user's to type.
_spoolq_qbridge()
{
	local spec='-d:dir --batch:none --cacert:file --credentials:file --timeout:duration'
	local prev_opt nargs dashdash
	if ((COMP_CWORD == 1)); then
		_spoolq_add in out
		return
	fi
	_spoolq_scan "$spec" 2
	_spoolq_optarg "$spec" && return
	if [[ ${COMP_WORDS[COMP_CWORD]} == -* ]]; then
		_spoolq_add -d -h -q -v --batch --cacert --credentials --drain \
		    --help --timeout --version
	elif [[ ${COMP_WORDS[1]} == out ]] && ((nargs == 0)); then
		_spoolq_queues
	elif [[ ${COMP_WORDS[1]} == in ]] && ((nargs == 1)); then
		_spoolq_queues
	fi
}

# qadmin: the command table.  Each entry: NAME, its options ("-o" alone
# or "-o:KIND" when it takes an argument), and the kinds of its
# operands, the last repeated ("-" for anything, "." for nothing more).
_spoolq_qadmin_table()
{
	cat <<'EOF'
bind|-|exchange queue - .
cat|--meta --output:dir|queue - .
check|--repair|queue .
config|-|queue config key
create|-|- setting
delete|-|queue -
destroy|-f|queue .
exchange|-|xcmd exchange type - .
gc|--tmp-age:duration|queue .
hold|-|queue -
list|-|.
ls|--json -n:none|queue state
peek|--json -n:none|queue state
purge|-|queue state
move|-|queue queue -
recover|-|queue .
redrive|--reason:reason --older-than:duration --limit:none --to:queue|queue -
release|-|queue -
replay|--since:none --to:queue|queue .
retry-now|-|queue .
stats|--age --json --prometheus -o:file|queue
unbind|-|exchange queue - .
EOF
}

_spoolq_qadmin()
{
	local cur=${COMP_WORDS[COMP_CWORD]} i w cmd= at name= opts kinds spec
	local o k
	# The command is the first operand after the global options.
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		case $w in
		-d) i=$((i + 1)) ;;
		-*) ;;
		*) cmd=$w at=$i; break ;;
		esac
	done
	if [[ -z $cmd ]]; then
		if [[ ${COMP_WORDS[COMP_CWORD - 1]} == -d ]] && ((COMP_CWORD > 1)); then
			_spoolq_dirs
		elif [[ $cur == -* ]]; then
			_spoolq_add -d -h -n -q -v --dry-run --help --version
		else
			o=
			while IFS='|' read -r name _; do
				o+=" $name"
			done < <(_spoolq_qadmin_table)
			_spoolq_add $o
		fi
		return
	fi
	while IFS='|' read -r name opts kinds; do
		[[ $name == "$cmd" ]] && break
	done < <(_spoolq_qadmin_table)
	[[ $name == "$cmd" ]] || return
	# After the command come only its own options (-d, -n, -q and -v
	# go before it).
	spec=
	for o in $opts; do
		[[ $o == *:* ]] && spec+=" $o"
	done
	local prev_opt nargs dashdash
	_spoolq_scan "$spec" $((at + 1))
	_spoolq_optarg "$spec" && return
	if [[ $cur == -* ]]; then
		o=
		for w in $opts; do
			[[ $w == - ]] || o+=" ${w%%:*}"
		done
		_spoolq_add -h --help $o
		return
	fi
	read -r -a kinds <<<"$kinds"
	if ((nargs < ${#kinds[@]})); then
		k=${kinds[nargs]}
	else
		k=${kinds[${#kinds[@]} - 1]}
	fi
	case $cmd/$k in
	config/config) _spoolq_add get set show ;;
	config/key)
		case ${COMP_WORDS[COMP_CWORD - 1]} in
		get) _spoolq_arg key ;;
		set | *=*) _spoolq_setting ;;
		esac ;;
	exchange/xcmd) _spoolq_add create destroy list show ;;
	exchange/exchange)
		# create takes a new name; destroy and show an existing one.
		[[ ${COMP_WORDS[COMP_CWORD - 1]} == create ]] ||
		    _spoolq_exchanges ;;
	exchange/type)
		[[ ${COMP_WORDS[COMP_CWORD - 2]} == create ]] && _spoolq_arg type ;;
	*) _spoolq_arg "$k" ;;
	esac
}

# _spoolq: the completion function of every tool.  Readline breaks words
# at "=", so "--ttl=3" comes as "--ttl" "=" "3": such words are joined
# again for the functions above, and the "--ttl=" part, which is not in
# the word being completed, is taken off what they offer.
_spoolq()
{
	local -a words=()
	local i cword=0 pfx= tool=${COMP_WORDS[0]##*/}
	for ((i = 0; i < ${#COMP_WORDS[@]}; i++)); do
		if ((i > 1)) && [[ ${COMP_WORDS[i]} == = || ${COMP_WORDS[i - 1]} == = ]]; then
			words[${#words[@]} - 1]+=${COMP_WORDS[i]}
		else
			words+=("${COMP_WORDS[i]}")
		fi
		if ((i == COMP_CWORD)); then
			cword=$((${#words[@]} - 1))
			[[ ${words[cword]} != "${COMP_WORDS[i]}" ]] &&
			    pfx=${words[cword]%"${COMP_WORDS[i]}"}
		fi
	done
	local COMP_WORDS=("${words[@]}") COMP_CWORD=$cword
	COMPREPLY=()
	case $tool in
	qsend | qrecv | qack | qworker | qbridge | qadmin) "_spoolq_$tool" ;;
	esac
	if [[ -n $pfx ]]; then
		for i in "${!COMPREPLY[@]}"; do
			COMPREPLY[i]=${COMPREPLY[i]#"$pfx"}
		done
	fi
}

complete -F _spoolq qsend qrecv qack qworker qbridge qadmin
