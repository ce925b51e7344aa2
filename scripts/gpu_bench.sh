#!/usr/bin/env bash
# The GPU benchmarks recorded in docs/benchmarks.md, in one run on a machine with torch + CUDA:
#   the inference bench (issue #2) and the training bench (issue #4), both on MODELS=sd15-random.
# Wheels missing on that machine (e.g. diffusers) may be dropped in .whl/ and are installed first.
# Usage: OUT=results/ scripts/gpu_bench.sh [stylize|train|all]
set -uo pipefail
what=${1:-all}
OUT=${OUT:-bench-out}
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site
fi
export MODELS=sd15-random DATA_DIR=${DATA_DIR:-$PWD/data-bench} PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch, diffusers, transformers, peft; print('torch', torch.__version__, 'diffusers', diffusers.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__)" | tee -a "$OUT/gpu.txt"

if [[ $what == all || $what == stylize ]]; then
    python3 -m inference bench --out "$OUT/bench.json" --iters 10 2>&1 | tee "$OUT/bench.log" | grep -v '^\[' | tail -40
fi
if [[ $what == all || $what == train ]]; then
    python3 -m inference train --bench --class man --bench-batch-sizes 2 >"$OUT/train_bench.json" 2>"$OUT/train_bench.log"
    cat "$OUT/train_bench.json"; tail -5 "$OUT/train_bench.log"
fi
