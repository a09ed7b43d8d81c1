# shellcheck shell=bash disable=SC2154 # $only, $work and $round are the sourcing script's
# Sourced by the bench scripts: messages, the ODD_BENCH_ONLY filter and the result files. The
# script that sources it sets $only (the benchmarks to run), $work (its temp dir) and $round.

say() { echo "bench: $*" >&2; }
wants() { [[ " $only " == *" $1 "* ]]; }

# Results live in $work/BENCH.PEER.ROUND.json (the JSON line) or, for a peer that failed,
# $work/BENCH.PEER.ROUND.err alone: a failing peer is reported, not the end of the run.
save_result() {
  echo "$3" >"$work/$1.$2.$round.json"
  if [ -n "${ODD_BENCH_JSON:-}" ]; then
    echo "{\"bench\":\"$1\",\"peer\":\"$2\",\"result\":$3}" >>"$ODD_BENCH_JSON"
  fi
}

# run_peer BENCH PEER CMD...: a peer that prints its own JSON line.
run_peer() {
  local bench="$1" peer="$2" out
  shift 2
  say "$bench: $peer"
  if out="$("$@" 2>"$work/$bench.$peer.$round.err" </dev/null)" && [ -n "$out" ]; then
    save_result "$bench" "$peer" "$out"
  else
    say "$bench: $peer failed: $(tail -n 3 "$work/$bench.$peer.$round.err")"
  fi
}
