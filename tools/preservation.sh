#!/usr/bin/env bash
# Behaviour preservation across a refactor: train a fixed set of runs (small, CPU, 1 thread) and
# write each run's history.csv under OUT/<case>/. Run it at two commits, then compare the trees
# with `diff -r` after dropping the wall-clock columns (epoch_time_s), which are not deterministic:
#   tools/preservation.sh /tmp/before && (git checkout NEW && tools/preservation.sh /tmp/after)
#   python tools/compare_histories.py /tmp/before /tmp/after
set -euo pipefail
out=${1:?usage: tools/preservation.sh OUT}
common=(--dataset fashion-mnist --epochs 2 --train-limit 1000 --eval-limit 500
        --set model=small --set channels_last=true --set lr_step=1)
run() {  # case name, then flags
  local name=$1; shift
  mkdir -p "$out/$name"
  OMP_NUM_THREADS=1 auxbench train "${common[@]}" "$@" --seed 0 --out "$out/$name" \
    > "$out/$name/log.txt" 2>&1
}
run single --method single
run human --method human --lam 0.5
run rl-aux --method rl-aux
run wa-rl-aux --method wa-rl-aux
for w in dwa uncertainty olaux autolambda; do
  run "human+noise-$w" --method human --set noise_task=true --weighting "$w"
done
run human+noise-gcs+pcgrad --method human --set noise_task=true --weighting gcs --gradient pcgrad
run maxl --method maxl
run maxl-fo --method maxl-fo
run wa-maxl --method wa-maxl
# MAXL with plain SGD (no momentum, no weight decay): the virtual step is then θ − α∇L in every
# version, so this run isolates the one intended change of the look-ahead refactor.
run maxl-plain-sgd --method maxl --set momentum=0 --set weight_decay=0
