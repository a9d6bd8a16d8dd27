#!/usr/bin/env bash
# The paper's Table 6 protocol, full grid, on a GPU — one prepared command for a device session:
#
#     bash bench/gpu_table6.sh [SECONDS]        # default 540: stops itself before a 600 s limit
#     GRID=cifar bash bench/gpu_table6.sh 300   # Table 7's CNN row on the CIFAR-10 subset
#
# Grid `full` (bench/table6.py): 60,000 MNIST training images; MLP 784-256-10 and LeNet; ERM,
# S-model, F-correction, self-teaching, Co-teaching, SIGUA, RDIA-LS (paper and reference);
# τ = 0.2/0.4/0.6/0.8; seeds 0/1/2; Adam 1e-3, batch 128, 200 epochs, linear decay from epoch 80;
# T_k = 4,690 steps. 192 trainings; our estimate (not measured) is ~1.5 ms per step with 12
# processes sharing one GPU, i.e. ~30-40 GPU-minutes in all: more than one session's device time,
# so the script is resumable: finished runs are appended to bench/results/table6_<grid>.jsonl
# (carried back through $OUT) and a rerun with that file in place skips them. Seeds come
# outermost, so a partial run holds whole seeds.
set -u
cd "$(dirname "$0")/.."
BUDGET=${1:-540}
GRID=${GRID:-full}
JOBS=${JOBS:-12}
DEST=${OUT:-bench/results}
python - <<'PY' || { echo "no CUDA device: run 'python bench/table6.py run --grid cpu' instead"; exit 1; }
import torch
assert torch.cuda.is_available()
print("device:", torch.cuda.get_device_name(0), "torch", torch.__version__)
PY
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv || true
# timeout signals the whole process group (the pool's workers too); finished runs are kept
timeout -k 15 "$BUDGET" python bench/table6.py run --grid "$GRID" --jobs "$JOBS" --device cuda
python bench/table6.py report --grid "$GRID" --device cuda
mkdir -p "$DEST"
cp bench/results/table6_"$GRID".jsonl bench/results/table6_"$GRID".md "$DEST"/ 2>/dev/null || true
wc -l bench/results/table6_"$GRID".jsonl
