#!/usr/bin/env bash
# One lent device session (16 CPU cores + one CUDA GPU), run once, everything into $OUT:
#   * on cores 0..GPU_CORES-1: GPU checks alone on the GPU (bench/device_gpu.sh: the CUDA tests,
#     LeNet train + score on MNIST with --device cuda), then the GPU share of the issue #7 grid
#     (bench/default_strategy.py cells with --device cuda, GPU_CORES processes at a time);
#   * on the other cores: the CPU share of the grid, one cell per process (OMP_NUM_THREADS=1).
# Cells still running at the deadline are stopped; finished cells keep their JSON. Everything
# comes back as $OUT/{machine.txt,gpu.log,test_cuda.xml,grid.tgz}; merge the cells with
#   python bench/default_strategy.py --merge "$(ls grid/*.json | paste -sd,)" --report-only
#
#   OUT=/tmp/out bash bench/device_session.sh      # from the repository root
#
# Knobs: BUDGET (seconds for the whole, default 540), GPU_CORES (default 6), GPU_CHECKS (0 skips
# bench/device_gpu.sh and gives the GPU to the grid at once), DATA (the shared
# data folder, default .benchdata), CPU_JOBS / GPU_JOBS (lines "dataset seed clean tau
# max_rows"; default bench/device_jobs_{cpu,gpu}.txt). Where cleanlab is not installed its
# wheels are taken from .whl/ (pip download cleanlab termcolor).
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/device_out}"
DATA="${DATA:-$PWD/.benchdata}"
CPU_JOBS="${CPU_JOBS:-bench/device_jobs_cpu.txt}"
GPU_JOBS="${GPU_JOBS:-bench/device_jobs_gpu.txt}"
BUDGET="${BUDGET:-540}"
NCPU=$(nproc)
GPU_CORES="${GPU_CORES:-$(( NCPU > 4 ? 6 : 1 ))}"
START=$(date +%s)
mkdir -p "$OUT/grid"
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
if ls .whl/*.whl >/dev/null 2>&1 && ! python3 -c "import cleanlab" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
      .whl/*.whl && export PYTHONPATH="/tmp/site"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

{
  echo "== machine $(date -u +%FT%TZ), $NCPU cores, GPU processes on $GPU_CORES of them"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  python3 -c "import torch, numpy, sklearn; print('torch', torch.__version__, 'numpy', numpy.__version__, 'sklearn', sklearn.__version__, 'cuda', torch.cuda.is_available())"
  python3 -c "import cleanlab; print('cleanlab', cleanlab.__version__)" 2>&1
} > "$OUT/machine.txt" 2>&1

DEADLINE=$(( START + BUDGET - 15 ))
# GPU: checks first (alone on the GPU), then the GPU share of the grid
( export DEADLINE OUT DATA
  if [ "${GPU_CHECKS:-1}" != 0 ]; then
    taskset -c "0-$(( GPU_CORES - 1 ))" bash bench/device_gpu.sh > "$OUT/gpu.log" 2>&1
  fi
  JOBS="$GPU_JOBS" P="$GPU_CORES" DEVICE=cuda taskset -c "0-$(( GPU_CORES - 1 ))" \
      bash bench/device_grid.sh ) &
GPU_PID=$!
# CPU: the rest of the grid on the other cores
JOBS="$CPU_JOBS" P="$(( NCPU - GPU_CORES ))" DEVICE=cpu DEADLINE="$DEADLINE" OUT="$OUT" \
    DATA="$DATA" taskset -c "$GPU_CORES-$(( NCPU - 1 ))" bash bench/device_grid.sh
wait "$GPU_PID"
tar czf "$OUT/grid.tgz" -C "$OUT" grid && rm -rf "$OUT/grid"
echo "done in $(( $(date +%s) - START )) s" >> "$OUT/machine.txt"
