#!/usr/bin/env bash
# Behaviour snapshot for refactors (issue #20): every --help text, `rdia demo`, and a fixed set of
# pipeline commands (stdout, stderr, exit code, sha256 of every file written), for one source tree.
#
#   bash bench/golden.sh TREE OUTDIR      # e.g. a `git worktree` of the old commit, then this tree
#   diff -r OUT_OLD OUT_NEW               # empty = unchanged
#
# Runs the tree's code through a `rdia` shim on PATH with PYTHONPATH=TREE (nothing installed).
set -uo pipefail
TREE=$(cd "$1" && pwd); OUT=$(mkdir -p "$2" && cd "$2" && pwd)
DATA=${RDIA_SHARED_DATA:-$TREE/../shared/data}
[ -d "$DATA" ] || DATA=/work/shared/data
W=${RDIA_GOLDEN_WORK:-/tmp/rdia-golden-work}  # fixed: files record absolute input paths
rm -rf "$W"; mkdir -p "$W"
mkdir -p "$W/bin"; printf '#!/usr/bin/env python\nfrom rdia_cli.cli import main\nmain()\n' > "$W/bin/rdia"
chmod +x "$W/bin/rdia"
export PATH="$W/bin:$PATH" PYTHONPATH="$TREE" COLUMNS=100 OMP_NUM_THREADS=1 PYTHONHASHSEED=0
cd "$W"; n=0
step() {  # step NAME CMD...: record output and exit code
  n=$((n + 1)); local f; f=$(printf '%s/%03d-%s' "$OUT" "$n" "$1"); shift
  "$@" >"$f.out" 2>"$f.err"; echo "$?" >"$f.rc"
  # run-to-run noise: timings and the scratch folder's name
  sed -i -E -e "s#$W#W#g" -e 's/[0-9]+(\.[0-9]+)? ?(s|ms|min)\b/T/g' "$f.out" "$f.err"
}
step help rdia --help
for c in train score relabel retrain evaluate split noise convert inspect report run demo synth; do
  step "help-$c" rdia "$c" --help
done
step demo rdia demo
cp "$TREE/fixtures/tiny.csv" "$TREE/fixtures/tiny.svm" .
python - <<'PY'
from sklearn.datasets import load_breast_cancer, load_digits
import numpy as np
for name, loader in (("bc", load_breast_cancer), ("dg", load_digits)):
    X, y = loader(return_X_y=True)
    with open(f"{name}.csv", "w") as f:
        f.write(",".join(f"x{j}" for j in range(X.shape[1])) + ",label\n")
        for row, lab in zip(X, y):
            f.write(",".join(f"{v:g}" for v in row) + f",{lab}\n")
PY
step split rdia split bc.csv -o sp --val 0.1 --seed 3
step noise rdia noise sp/train.parquet --rate 0.3 --seed 1 -o noisy.parquet
step noise-pair rdia noise sp/train.parquet --rate 0.2 --kind pair --seed 2 -o noisy_pair.parquet
step train rdia train noisy.parquet --val sp/val.parquet -o lr.pt
step score rdia score noisy.parquet --val sp/val.parquet --model lr.pt -o scores.parquet
step score-cg rdia score noisy.parquet --val sp/val.parquet --model lr.pt --solver cg -o scores_cg.parquet
step relabel-alpha rdia relabel noisy.parquet --scores scores.parquet --alpha 0.002 -o c_alpha.parquet
step relabel-frac rdia relabel noisy.parquet --scores scores.parquet --fraction 0.2 -o c_frac.parquet
step relabel-phi rdia relabel noisy.parquet --scores scores.parquet --phi-threshold 0 -o c_phi.parquet
for s in drop uids optlr random; do
  step "relabel-$s" rdia relabel noisy.parquet --scores scores.parquet --fraction 0.1 --strategy "$s" -o "c_$s.parquet"
done
step relabel-auto rdia relabel noisy.parquet --scores scores.parquet --val sp/val.parquet --model lr.pt -o c_auto.parquet
step pipe sh -c 'rdia score noisy.parquet --val sp/val.parquet --model lr.pt | rdia relabel --alpha 0.002 -o c_pipe.parquet'
step retrain rdia retrain c_alpha.parquet --model lr.pt -o lr_r.pt
step retrain-auto rdia retrain c_auto.parquet --model lr.pt -o lr_auto.pt
step evaluate rdia evaluate lr.pt lr_r.pt lr_auto.pt --data sp/test.parquet --json metrics.json
step inspect rdia inspect scores.parquet --data noisy.parquet
step run rdia run noisy.parquet --val sp/val.parquet --test sp/test.parquet -o runA --compare
step run-alpha rdia run noisy_pair.parquet --val sp/val.parquet --test sp/test.parquet -o runB --alpha 0.002
step report rdia report runA -o report.html
step split-dg rdia split dg.csv -o dsp --val 0.1 --seed 3
step noise-dg rdia noise dsp/train.parquet --rate 0.4 --seed 1 -o dnoisy.parquet
step run-dg rdia run dnoisy.parquet --val dsp/val.parquet --test dsp/test.parquet -o runD --compare
step train-mlp rdia train dnoisy.parquet --val dsp/val.parquet --model-type mlp --epochs 3 -o mlp.pt
step score-mlp rdia score dnoisy.parquet --val dsp/val.parquet --model mlp.pt -o mscores.parquet
step relabel-mlp rdia relabel dnoisy.parquet --scores mscores.parquet --fraction 0.1 -o mc.parquet
step retrain-mlp rdia retrain mc.parquet --model mlp.pt -o mlp_r.pt
for m in co-teaching sigua f-correction s-model rdia-ls; do
  step "train-$m" rdia train dnoisy.parquet --model-type mlp --epochs 2 --method "$m" --noise-rate 0.4 -o "n_$m.pt"
done
step evaluate-dg rdia evaluate mlp.pt mlp_r.pt n_co-teaching.pt n_rdia-ls.pt --data dsp/test.parquet
step svm rdia train tiny.svm -o tiny.pt
step csv rdia convert tiny.csv -o tiny.parquet
step synth rdia synth --rows 2000 --seed 1 -o syn.parquet
if [ -d "$DATA/libsvm" ]; then
  f=$(ls "$DATA"/libsvm/diabetes_scale* 2>/dev/null | head -1)
  if [ -n "$f" ]; then
    step split-diabetes rdia split "$f" -o esp --val 0.05 --seed 3
    step run-diabetes rdia run esp/train.parquet --val esp/val.parquet --test esp/test.parquet -o runE --compare
  fi
fi
# errors: exit code and message
step err-missing rdia train nope.svm -o x.pt
step err-alpha rdia relabel noisy.parquet --scores scores.parquet --alpha -1 -o x.parquet
step err-model rdia score noisy.parquet --val sp/val.parquet --model noisy.parquet -o x.parquet
step err-width rdia score tiny.svm --val sp/val.parquet --model lr.pt -o x.parquet
step err-cuda rdia train noisy.parquet --device cuda -o x.pt
# every file written, by content
# (timings removed first: JSON keys named *seconds*/timings, "N.NN s" in HTML)
find . -type f ! -path './bin/*' ! -name '*.csv' ! -name 'tiny.svm' | sort | while read -r f; do
  case "$f" in
    *.json) python -c 'import json, sys
def strip(o):
    if isinstance(o, dict):
        return {k: strip(v) for k, v in o.items() if "seconds" not in k and k != "timings"}
    return [strip(v) for v in o] if isinstance(o, list) else o
print(json.dumps(strip(json.load(open(sys.argv[1]))), sort_keys=True))' "$f" ;;
    *.html) python -c 'import re, sys
html = open(sys.argv[1]).read()
html = re.sub(r"<tr[^>]*>(?:(?!</tr>).)*?(?:seconds|data-key=\"timing\")(?:(?!</tr>).)*?</tr>", "", html, flags=re.S)
print(re.sub(r"[0-9]+(\.[0-9]+)? ?(s|ms)\b", "T", html))' "$f" ;;
    *) cat "$f" ;;
  esac | echo "$(sha256sum | cut -c1-16) $f"
done > "$OUT/zz-files.txt"
for j in metrics.json runA/metrics.json runD/metrics.json; do [ -f "$j" ] && cp "$j" "$OUT/zz-$(echo "$j" | tr / _)"; done
