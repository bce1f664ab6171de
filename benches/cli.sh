#!/usr/bin/env bash
# The command line against plain TCP, same run (issue: throughput close to
# the physical limit through the command line):
#
#   bash benches/cli.sh            # 11 rounds, full sizes
#   RUNS=1 SCALE=16 bash benches/cli.sh   # a quick look: 1/16 of the bytes
#   CIRCUIT=/tmp/circuit-old bash benches/cli.sh   # another build's command
#   LEAD=1048576 bash benches/cli.sh   # clients paced: 1 MiB in flight a run
#
# Over loopback TCP on this machine, each round runs, one after the other:
#   raw     benches/examples/tcp_echo.rs: a full-duplex TCP echo server
#           (reads while it writes, 256 KiB buffers) and a client that
#           writes the pattern in 64 KiB writes and checks every byte of the
#           echo, as `circuit bench` does;
#   credit  `circuit node --echo` and `circuit bench` (credit flow control
#           negotiated, the default);
#   v0      the same with `--credit off` on both ends;
# for W1 (1 stream x 256 MiB echoed) and W2-16 (16 streams x 16 MiB), the
# three in a different order each round (raw first, then credit first, then
# v0 first, and so on), so that no kind always runs after the same one. It
# prints each run, then the median of each in MB/s (10^6 bytes of echo per
# second of wall time, the client's own count) and two ratios to raw: the
# ratio of the medians, and the median of each round's own ratio (with the
# lowest and highest), which pairs runs taken seconds apart and so leaves
# out most of the machine's drift between rounds.
#
# With LEAD (bytes) every client, raw and circuit alike, keeps at most
# LEAD / streams bytes of each stream written and not yet echoed back
# (`tcp_echo bench ... LEAD`, `circuit bench --lead`). Without it (the
# issue's baseline) a client writes as fast as its connection takes bytes,
# and what it has in flight is bounded by the kernel's socket buffers (and,
# in credit mode, by circuit's windows).
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${RUNS:-11}
lead=${LEAD:-}
scale=${SCALE:-1}
base_port=${PORT:-7100}
w1=$((256 * 1024 * 1024 / scale))
w2=$((16 * 1024 * 1024 / scale))

cargo build --release -q -p circuit-cli
cargo build --release -q -p circuit-benches --example tcp_echo
bin=${CARGO_TARGET_DIR:-target}/release
# CIRCUIT=path measures another build of the command (an A/B).
circuit=${CIRCUIT:-$bin/circuit}
tcp_echo=$bin/examples/tcp_echo

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

# Waits until something listens on 127.0.0.1:$1.
wait_listening() {
    for _ in $(seq 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "nothing listens on port $1" >&2
    exit 1
}

raw_port=$base_port
credit_port=$((base_port + 1))
v0_port=$((base_port + 2))
"$tcp_echo" serve "127.0.0.1:$raw_port" & pids+=($!)
"$circuit" node --name echo-credit --listen "127.0.0.1:$credit_port" --echo \
    2>/dev/null >&2 & pids+=($!)
"$circuit" node --name echo-v0 --credit off --listen "127.0.0.1:$v0_port" \
    --echo 2>/dev/null >&2 & pids+=($!)
for port in $raw_port $credit_port $v0_port; do wait_listening "$port"; done

# One measurement: prints MB/s.
measure() {
    local kind=$1 each=$2 streams=$3 out raw_lead=() circuit_lead=()
    if [ -n "$lead" ]; then
        raw_lead=($((lead / streams)))
        circuit_lead=(--lead $((lead / streams)))
    fi
    case $kind in
    raw) out=$("$tcp_echo" bench "127.0.0.1:$raw_port" "$each" "$streams" "${raw_lead[@]}") ;;
    credit) out=$("$circuit" bench --name me --connect "127.0.0.1:$credit_port" \
        --peer echo-credit --bytes "$each" --streams "$streams" "${circuit_lead[@]}" 2>/dev/null) ;;
    v0) out=$("$circuit" bench --name me --credit off --connect "127.0.0.1:$v0_port" \
        --peer echo-v0 --bytes "$each" --streams "$streams" "${circuit_lead[@]}" 2>/dev/null) ;;
    esac
    sed -n 's/^throughput: \([0-9.]*\) MB\/s.*/\1/p' <<<"$out"
}

declare -A got
kinds=(raw credit v0)
for round in $(seq "$runs"); do
    for workload in W1 W2-16; do
        if [ "$workload" = W1 ]; then each=$w1 streams=1; else each=$w2 streams=16; fi
        declare -A this=()
        for i in 0 1 2; do
            kind=${kinds[$(((round - 1 + i) % 3))]}
            mbs=$(measure "$kind" "$each" "$streams")
            echo "round $round $workload $kind: $mbs MB/s"
            got[$workload.$kind]="${got[$workload.$kind]:-} $mbs"
            this[$kind]=$mbs
        done
        for kind in credit v0; do
            ratio=$(awk -v c="${this[$kind]}" -v r="${this[raw]}" 'BEGIN { printf "%.3f", c / r }')
            got[$workload.$kind.ratio]="${got[$workload.$kind.ratio]:-} $ratio"
        done
    done
done

median() { tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# "median (lowest-highest)" of a list of ratios.
spread() { tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -g | awk '{ v[NR] = $1 } END { printf "%.2f (%.2f-%.2f)", v[int((NR + 1) / 2)], v[1], v[NR] }'; }
echo
echo "| workload | raw TCP MB/s | credit MB/s | credit/raw | per round | v0 MB/s | v0/raw | per round |"
echo "|---|---|---|---|---|---|---|---|"
for workload in W1 W2-16; do
    raw=$(median "${got[$workload.raw]}")
    credit=$(median "${got[$workload.credit]}")
    v0=$(median "${got[$workload.v0]}")
    credit_rounds=$(spread "${got[$workload.credit.ratio]}")
    v0_rounds=$(spread "${got[$workload.v0.ratio]}")
    awk -v w="$workload" -v r="$raw" -v c="$credit" -v v="$v0" \
        -v cr="$credit_rounds" -v vr="$v0_rounds" \
        'BEGIN { printf "| %s | %.0f | %.0f | %.2f | %s | %.0f | %.2f | %s |\n", w, r, c, c / r, cr, v, v / r, vr }'
done
