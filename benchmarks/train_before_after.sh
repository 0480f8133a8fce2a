#!/bin/bash
# Training speed before and after (issue 12, part 4), on the same machine, in turns:
#   BEFORE: a checkout of an earlier commit with its own .venv, e.g.
#     git worktree add --detach ../before 2140e98 && (cd ../before && ./dev.sh setup)
#   run with MXNet's own thread choice (OMP_NUM_THREADS=1 on 2 cores), against this checkout's
#   `ner-fast train` (every core) and with one CPU context per core (--context cpu:0,cpu:1).
# Same data (the first 10,000 corpus sentences), recipe and seed; 2 epochs; ROUNDS rounds.
# Usage: benchmarks/train_before_after.sh BEFORE_CHECKOUT OUT.json [ROUNDS]
set -euo pipefail
before=$(cd "$1" && pwd); out=$2; rounds=${3:-2}
here=$(cd "$(dirname "$0")/.." && pwd); work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
for round in $(seq "$rounds"); do
  for cfg in before after after-split; do
    dir=$work/$cfg-$round
    case $cfg in
      before) tree=$before; env=(OMP_NUM_THREADS=1); extra=() ;;
      after) tree=$here; env=(); extra=() ;;
      after-split) tree=$here; env=(); extra=(--context cpu:0,cpu:1) ;;
    esac
    load=$(cut -d' ' -f1 /proc/loadavg)
    (cd "$tree" && env "${env[@]}" /usr/bin/time -f "cpu %U %S %e" .venv/bin/ner-fast train --max-sentences 10000 \
        --epochs 2 --out "$dir" --no-progress "${extra[@]}") > "$dir.log" 2>&1
    echo "$cfg $round $load $dir.log"
  done
done > "$work/runs.txt"
"$here/.venv/bin/python" - "$work/runs.txt" "$out" "$here/benchmarks" <<'PY'
import json, re, sys
sys.path.insert(0, sys.argv[3])
from _machine import write_json  # the CPU (model, flags, cores) in every result
runs = []
for line in open(sys.argv[1]):
    cfg, rnd, load, log = line.split()
    text = open(log).read()
    speeds = [int(x.replace(",", "")) for x in re.findall(r"^epoch \d+/2: .*?train ([\d,]+) tokens/s", text, re.M)]
    f1 = float(re.search(r"^best epoch \d+: validation entity F1 ([\d.]+)", text, re.M).group(1))
    user, sys_, wall = map(float, re.search(r"^cpu ([\d.]+) ([\d.]+) ([\d.]+)", text, re.M).groups())
    runs.append({"code": cfg, "round": int(rnd), "load": float(load), "train_tokens_per_s": speeds,
                 "wall_s": wall, "cpu_per_wall": round((user + sys_) / wall, 2), "valid_f1": f1})
mean = lambda c: sum(r["train_tokens_per_s"][-1] for r in runs if r["code"] == c) / sum(r["code"] == c for r in runs)
doc = {"benchmark": "train-before-after", "runs": runs,
       "ratio_after_over_before": round(mean("after") / mean("before"), 3),
       "ratio_split_over_before": round(mean("after-split") / mean("before"), 3)}
write_json(sys.argv[2], doc)
print(json.dumps({k: v for k, v in doc.items() if k != "runs"}))
PY
