#!/usr/bin/env bash
# GPU checks for one lent session (called by bench/device_session.sh; OUT and DATA come from
# there): the CUDA tests, then LeNet train + score on MNIST (60,000 images) with --device cuda.
set -u
W=$(mktemp -d)
since() { awk "BEGIN{printf \"%.2f\", $EPOCHREALTIME - $1}"; }
echo "== 1. CUDA tests"
timeout 150 python3 -m pytest tests/test_cuda.py -q -rs -p no:cacheprovider \
    --junitxml="$OUT/test_cuda.xml"
echo "tests exit code: $?"

echo "== 2. LeNet on MNIST (60,000 images, 40% noise), --device cuda"
M="$DATA/mnist"
python3 -m rdia_cli convert "$M/train-images-idx3-ubyte.gz" --labels "$M/train-labels-idx1-ubyte.gz" \
    -o "$W/mnist.parquet" &&
python3 -m rdia_cli convert "$M/t10k-images-idx3-ubyte.gz" --labels "$M/t10k-labels-idx1-ubyte.gz" \
    -o "$W/t10k.parquet" &&
python3 -m rdia_cli split "$W/t10k.parquet" -o "$W/t" --val 0.5 --test 0 --seed 0 &&
python3 -m rdia_cli noise "$W/mnist.parquet" --rate 0.4 --seed 0 -o "$W/noisy.parquet"
echo "data exit code: $?"; ls "$W" "$W/t"
t0=$EPOCHREALTIME
timeout 200 python3 -m rdia_cli train "$W/noisy.parquet" --model-type lenet --epochs 2 \
    --device cuda -o "$W/lenet.pt"
echo "RESULT lenet train cuda 2 epochs: exit $? seconds $(since "$t0")"
for rep in 1 2 3; do
  t0=$EPOCHREALTIME
  timeout 120 python3 -m rdia_cli score "$W/noisy.parquet" --val "$W/t/val.parquet" \
      --model "$W/lenet.pt" --device cuda -o "$W/scores.parquet"
  echo "RESULT lenet score cuda run $rep (whole command, 60,000 rows): exit $? seconds $(since "$t0")"
done
python3 - "$W/scores.parquet" "$W/noisy.parquet" <<'PY'
import sys, numpy as np, pyarrow.parquet as pq
s = pq.read_table(sys.argv[1]).to_pandas(); d = pq.read_table(sys.argv[2], columns=["is_noisy"]).to_pandas()
phi = s["phi"].to_numpy(); noisy = d["is_noisy"].to_numpy().astype(bool)
top = np.argsort(-phi)[: len(phi) // 100]
print(f"RESULT lenet cuda: top-1% by phi precision (share noisy) {noisy[top].mean():.3f}; base rate {noisy.mean():.3f}")
PY

rm -rf "$W"
