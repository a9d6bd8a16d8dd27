#!/usr/bin/env bash
# rdia GPU check (issue #5), one prepared run for a machine with a CUDA GPU:
#   1. the CUDA tests (tests/test_cuda.py: Φ on cuda vs cpu, X stays CSR on the GPU, every CLI
#      stage with --device cuda);
#   2. bench/bench_scale.py at the full avazu-app shape (14,596,137 rows × 1,000,000 features,
#      15 nonzeros a row) on the GPU, with `score` and its mat-vec lower bound on the CPU in the
#      same run;
#   3. if time is left, relabel + retrain (GPU) on the same files.
# Everything lands in $OUT (log, JUnit XML, scale-gpu*.md/.json). Each step has a timeout and
# the benchmark writes its files after every stage, so a run cut short still reports.
#
#   OUT=/path/to/results bash bench/gpu_check.sh      # from the repository root
#
# Knobs (environment): ROWS (default 14596137), CACHE (synthetic data, default
# /tmp/rdia_scale_cache), T_TESTS / T_BENCH / T_MORE (timeouts in seconds, default 150/480/240).
# Steps 1-2 take about 10 minutes on a 16-core H100/H200 box; step 3 runs only if the whole
# stays under about 11.5 minutes.
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu_check_out}"
mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu_check.log") 2>&1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # the working tree, installed or not
export PYTHONWARNINGS=ignore
ROWS="${ROWS:-14596137}"
CACHE="${CACHE:-/tmp/rdia_scale_cache}"
T_TESTS="${T_TESTS:-150}"
T_BENCH="${T_BENCH:-480}"
T_MORE="${T_MORE:-240}"
START=$(date +%s)

echo "== machine  $(date -u +%FT%TZ)"
uptime; nproc; free -g | head -2
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
python - <<'EOF'
import importlib
for m in ("torch", "numpy", "scipy", "pyarrow", "typer", "rich", "sklearn", "pytest"):
    try:
        mod = importlib.import_module(m)
        print(f"ok {m} {getattr(mod, '__version__', '')}")
    except Exception as e:  # noqa: BLE001
        print(f"MISSING {m}: {e}")
import torch
print("cuda available:", torch.cuda.is_available(), "cuda", torch.version.cuda,
      "devices", torch.cuda.device_count())
EOF

echo "== 1. CUDA tests"
timeout "$T_TESTS" python -m pytest tests/test_cuda.py -q -rs -p no:cacheprovider \
    --junitxml="$OUT/test_cuda.xml"
echo "tests exit code: $?"

echo "== 2. scale benchmark: train + score on cuda, score on cpu alongside"
timeout "$T_BENCH" python bench/bench_scale.py --rows "$ROWS" --device cuda --compare-cpu \
    --stages train,score --nice 0 --cache "$CACHE" --out "$OUT/scale-gpu.md"
echo "bench exit code: $?"
cat "$OUT/scale-gpu.md" 2>/dev/null

LEFT=$(( 690 - ($(date +%s) - START) ))
if [ "$LEFT" -gt 150 ]; then
  echo "== 3. relabel + retrain on cuda (${LEFT} s left)"
  timeout "$(( LEFT < T_MORE ? LEFT : T_MORE ))" python bench/bench_scale.py --rows "$ROWS" \
      --device cuda --stages relabel,retrain --no-lower-bound --nice 0 --cache "$CACHE" \
      --out "$OUT/scale-gpu-relabel-retrain.md"
  echo "exit code: $?"
  cat "$OUT/scale-gpu-relabel-retrain.md" 2>/dev/null
fi
echo "== done in $(( $(date +%s) - START )) s"
