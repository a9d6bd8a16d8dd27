#!/usr/bin/env bash
# Run bench/default_strategy.py cells in parallel, one cell per process, until DEADLINE (epoch s).
#   JOBS=file P=10 DEVICE=cpu DEADLINE=... OUT=... DATA=... bash bench/device_grid.sh
# JOBS lines: "dataset seed clean tau max_rows [earlier.json]" ('#' comments allowed); a line
# with earlier.json recomputes only auto (unless METHODS says otherwise) on the cell read from it. Each cell writes
# $OUT/grid/<dataset>_s<seed>_c<clean>_t<tau>_<device>.{json,md,log}; a cell still running at the
# deadline is stopped and leaves nothing but its log.
set -u
mkdir -p "$OUT/grid"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
grep -v '^#' "$JOBS" | grep . | xargs -r -P "$P" -L 1 bash -c '
  name="$0_s$1_c$2_t$3_'"$DEVICE"'"
  budget=$(( '"$DEADLINE"' - $(date +%s) ))
  [ "$budget" -gt 20 ] || exit 0
  timeout "$budget" python3 bench/default_strategy.py --datasets "$0" --first-seed "$1" \
      --seeds 1 --clean "$2" --taus "$3" --max-rows "$4" --data-root '"$DATA"' \
      --device '"$DEVICE"' --methods "${METHODS:-${5:+auto}}" \
      ${5:+--merge "$5"} --out '"$OUT"'/grid/"$name" > '"$OUT"'/grid/"$name".log 2>&1 || true'
