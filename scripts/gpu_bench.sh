#!/usr/bin/env bash
# The GPU benchmarks recorded in docs/benchmarks.md, in one run on a machine with torch + CUDA:
#   the inference bench (issues #2, #9, #10, #11: baseline, album, queue drains normal and fast, portraits,
#   fast mode, /pose, memory), the worker
#   processes bench (issue #16) and the training bench (issue #4), all on MODELS=sd15-random.
# Wheels missing on that machine (e.g. diffusers) may be dropped in .whl/ and are installed first.
# Usage: OUT=results/ scripts/gpu_bench.sh [stylize|compile|workers|train|all]   (WORKERS=2 QUEUE=48 QUEUE_FAST=48 ITERS=10)
#   compile: ARTBOOTH_COMPILE=1, the worker's first start on an empty cache (about 8 min on an H200) and a
#   drain, then the album, portraits, fast mode and /pose on the warm cache (not part of `all`: ~11 min)
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
    python3 -m inference bench --out "$OUT/bench.json" --iters "${ITERS:-10}" --variants 1 2 \
        --queue "${QUEUE:-48}" --queue-fast "${QUEUE_FAST:-48}" --aspects 4:3,3:4,1:1,16:9 --warm-only \
        --portraits --fast --drain 60 --pose >"$OUT/bench.log" 2>&1
    cat "$OUT/bench.json"
fi
if [[ $what == compile ]]; then
    rm -rf "$DATA_DIR/compile-cache"
    ARTBOOTH_COMPILE=1 python3 -m inference bench --out "$OUT/bench_compile_cold.json" --queue "${QUEUE:-16}" \
        --aspects 4:3,3:4,1:1,16:9 --queue-only --warm-only >"$OUT/bench_compile_cold.log" 2>&1
    ARTBOOTH_COMPILE=1 python3 -m inference bench --out "$OUT/bench_compile.json" --iters "${ITERS:-3}" \
        --variants 1 --portraits --fast --drain 60 --pose >"$OUT/bench_compile.log" 2>&1
    cat "$OUT/bench_compile_cold.json" "$OUT/bench_compile.json"
fi
if [[ $what == all || $what == workers ]]; then
    # issue 16: one worker process per GPU (`--device cuda:K`, K cycling over the visible GPUs), on the
    # compile cache the run above left; on a one-GPU machine the workers share that GPU. One aspect and no
    # start-up warm-up keep it to about a minute: each worker prepares the one bucket on its first job.
    ARTBOOTH_WARMUP=0 python3 -m inference bench --out "$OUT/bench_workers.json" --queue "${WORKERS_QUEUE:-16}" \
        --aspects 1:1 --workers "${WORKERS:-2}" --queue-only --warm-only >"$OUT/bench_workers.log" 2>&1
    cat "$OUT/bench_workers.json"
fi
if [[ $what == all || $what == train ]]; then
    python3 -m inference train --bench --class man --bench-batch-sizes 2 >"$OUT/train_bench.json" 2>"$OUT/train_bench.log"
    cat "$OUT/train_bench.json"; tail -5 "$OUT/train_bench.log"
fi
