"""rdia at Avazu scale: time and peak memory of train, score, relabel, retrain, plus the lower
bound of `score` (the bare sparse mat-vecs its solver needs), on synthetic Avazu-shaped data.

    python bench/bench_scale.py                          # full avazu-app shape, CPU
    python bench/bench_scale.py --rows 1000000 --tag 1m  # a smaller shape
    python bench/bench_scale.py --device cuda --compare-cpu   # GPU, with CPU score alongside

Data: `rdia synth` files (label noise τ = 0.1, 100,000 clean validation rows from the same
planted model) cached under --cache (default /tmp/rdia_scale_cache; never in the repository).
Each stage runs as its own `rdia` process under `/usr/bin/time -v` (wall, CPU, peak RSS) with
the load average read before and after. The lower bound runs in a separate process right after
`score`: the same Design (the same tensors `score` builds), 2 mat-vecs per CG iteration `score`
reported plus 1 for the scores, timed bare.

Writes bench/results/scale[-TAG].md and .json (override with --out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchlib import quick_defaults, results_dir

AVAZU = {"rows": 14_596_137, "features": 1_000_000, "nnz": 15}


def load_avg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def run_timed(cmd: list[str], *, env=None, cwd=None, timeout=None) -> dict:
    """Run ``cmd`` under /usr/bin/time -v; wall, user, sys, peak RSS, load before/after."""
    gnu_time = shutil.which("time") or "/usr/bin/time"
    full = [gnu_time, "-v", *cmd] if os.path.exists(gnu_time) else cmd
    load0 = load_avg()
    t0 = time.perf_counter()
    r = subprocess.run(full, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - t0
    out = {"cmd": " ".join(cmd), "rc": r.returncode, "wall_s": wall, "load_before": load0,
           "load_after": load_avg()}
    for key, pat in (("user_s", r"User time \(seconds\): ([\d.]+)"),
                     ("sys_s", r"System time \(seconds\): ([\d.]+)"),
                     ("max_rss_kb", r"Maximum resident set size \(kbytes\): (\d+)")):
        m = re.search(pat, r.stderr)
        out[key] = float(m.group(1)) if m else None
    if r.returncode != 0:
        out["stderr_tail"] = r.stderr[-3000:]
        print(r.stdout[-2000:], r.stderr[-3000:], file=sys.stderr)
    return out


def rdia_cmd(*args: str, nice: int) -> list[str]:
    base = [sys.executable, "-m", "rdia_cli", *args]
    return (["nice", "-n", str(nice)] + base) if nice else base


def ensure_data(
    cache: Path, rows: int, features: int, nnz: int, nice: int, val_rows: int = 100_000
) -> tuple[Path, Path, dict]:
    cache.mkdir(parents=True, exist_ok=True)
    tag = f"synth_{rows}x{features}x{nnz}_s7"
    train = cache / f"{tag}_train.parquet"
    val = cache / (f"{tag}_val.parquet" if val_rows == 100_000 else f"{tag}_val{val_rows}.parquet")
    info = {}
    if not train.exists():
        info["synth_train"] = run_timed(rdia_cmd(
            "synth", "-o", str(train), "--rows", str(rows), "--features", str(features), "--nnz",
            str(nnz), "--noise", "0.1", "--seed", "7", "--jobs", "0", nice=nice))
    if not val.exists():
        info["synth_val"] = run_timed(rdia_cmd(
            "synth", "-o", str(val), "--rows", str(val_rows), "--features", str(features), "--nnz",
            str(nnz), "--seed", "7", "--stream", "1", nice=nice))
    return train, val, info


LOWER_BOUND = r'''
import json, sys, time
import torch
from rdia_cli.data.readers import read_dataset
from rdia_cli.models.logreg.design import Design
path, device, k, reps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ds = read_dataset(path)
dev = torch.device(device)
D = Design(ds.X, device=dev, dtype=torch.float64)
del ds
N, P = D.shape
v = torch.randn(P, 1, dtype=torch.float64, device=dev)
u = torch.randn(N, 1, dtype=torch.float64, device=dev)
def sync():
    if dev.type == "cuda":
        torch.cuda.synchronize()
D.mm(v); D.rmm(u); sync()  # warm-up
best = None
for _ in range(reps):
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range(k):  # fixed inputs: no overflow, the same work as CG's products
        D.mm(v)
        D.rmm(u)
    D.mm(v)
    sync()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if best is None or wall < best[0]:
        best = (wall, cpu)
print(json.dumps({"matvecs": 2 * k + 1, "wall_s": best[0], "cpu_s": best[1],
                  "threads": torch.get_num_threads()}))
'''


def parse_lb(stdout_json: str) -> dict:
    return json.loads(stdout_json.strip().splitlines()[-1])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", type=int, default=AVAZU["rows"])
    ap.add_argument("--features", type=int, default=AVAZU["features"])
    ap.add_argument("--nnz", type=int, default=AVAZU["nnz"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--compare-cpu", action="store_true",
                    help="with a GPU --device: also run score and its lower bound on the CPU")
    ap.add_argument("--stages", default="train,score,relabel,retrain")
    ap.add_argument("--fraction", type=float, default=0.05, help="relabel --fraction")
    ap.add_argument("--no-lower-bound", action="store_true",
                    help="skip the bare mat-vec lower bound of `score`")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/rdia_scale_cache"))
    ap.add_argument("--work", type=Path, default=None, help="folder for stage outputs")
    ap.add_argument("--nice", type=int, default=5)
    ap.add_argument("--tag", default="")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--val-rows", type=int, default=100_000, help="clean validation rows")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 20,000 rows × 5,000 features, 2,000 validation rows, data "
                         "and results in a scratch folder")
    args = ap.parse_args(argv)
    if args.quick:
        quick_defaults(ap, args, rows=20_000, features=5_000, val_rows=2_000, nice=0, tag="quick",
                       cache=results_dir(quick=True) / "scale_cache")

    tag = f"-{args.tag}" if args.tag else ""
    out = args.out or results_dir(args.quick) / f"scale{tag}.md"
    work = args.work or args.cache / f"work_{args.rows}_{args.device.replace(':', '')}"
    work.mkdir(parents=True, exist_ok=True)
    train, val, synth = ensure_data(args.cache, args.rows, args.features, args.nnz, args.nice,
                                    args.val_rows)
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    results: dict = {"machine": machine(), "shape": {"rows": args.rows, "features": args.features,
                     "nnz": args.nnz}, "device": args.device, "nice": args.nice, "synth": synth,
                     "stages": {}}
    stages = args.stages.split(",")
    dev = args.device
    files = {"model": work / "lr.pt", "scores": work / "scores.parquet",
             "cleaned": work / "cleaned.parquet", "model2": work / "lr_r.pt"}
    plan = {
        "train": ["train", str(train), "-o", str(files["model"]), "--device", dev],
        "score": ["score", str(train), "--val", str(val), "--model", str(files["model"]), "-o",
                  str(files["scores"]), "--device", dev],
        "relabel": ["relabel", str(train), "--scores", str(files["scores"]), "--fraction",
                    str(args.fraction), "-o", str(files["cleaned"])],
        "retrain": ["retrain", str(files["cleaned"]), "--model", str(files["model"]), "-o",
                    str(files["model2"]), "--device", dev],
    }
    out.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:  # after every step, so that a run cut short keeps what it measured
        out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
        out.write_text(report(results))

    for st in stages:
        print(f"[{time.strftime('%H:%M:%S')}] {st} (load {load_avg()})", flush=True)
        res = run_timed(rdia_cmd(*plan[st], nice=args.nice), env=env)
        results["stages"][st] = res
        print(json.dumps(res), flush=True)
        if st == "score" and res["rc"] == 0:
            results["score_meta"] = score_meta(files["scores"])
        if st in ("train", "retrain") and res["rc"] == 0:
            results[f"{st}_meta"] = model_meta(files["model" if st == "train" else "model2"])
        save()
    if "score_meta" not in results and files["scores"].exists():
        results["score_meta"] = score_meta(files["scores"])
    sm = results.get("score_meta")
    if sm and not args.no_lower_bound:
        k = int(sm["iterations"])
        print(f"[{time.strftime('%H:%M:%S')}] lower bound: {2 * k + 1} bare mat-vecs", flush=True)
        results["lower_bound"] = bare(train, dev, k, args.nice)
        save()
        if args.compare_cpu and dev != "cpu":
            cpu_scores = work / "scores_cpu.parquet"
            cmd = ["score", str(train), "--val", str(val), "--model", str(files["model"]), "-o",
                   str(cpu_scores), "--device", "cpu"]
            results["score_cpu"] = run_timed(rdia_cmd(*cmd, nice=args.nice), env=env)
            if results["score_cpu"]["rc"] == 0:
                results["score_cpu_meta"] = score_meta(cpu_scores)
                kc = int(results["score_cpu_meta"]["iterations"])
                results["lower_bound_cpu"] = bare(train, "cpu", kc, args.nice)
    save()
    print(f"wrote {out} and {out.with_suffix('.json')}")


def bare(train: Path, device: str, k: int, nice: int) -> dict:
    cmd = [sys.executable, "-c", LOWER_BOUND, str(train), device, str(k), "1"]
    if nice:
        cmd = ["nice", "-n", str(nice), *cmd]
    load0 = load_avg()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        return {"error": r.stderr[-2000:]}
    res = parse_lb(r.stdout)
    res.update(load_before=load0, load_after=load_avg())
    return res


def score_meta(path: Path) -> dict:
    import pyarrow.parquet as pq

    raw = pq.read_schema(path).metadata or {}
    meta = {k.decode()[5:]: json.loads(v) for k, v in raw.items() if k.startswith(b"rdia.")}
    keep = ("iterations", "residual", "solver", "preconditioner", "setup_seconds",
            "solve_seconds", "score_seconds", "seconds", "n_train", "n_val", "val_loss",
            "world_size")
    return {k: meta.get(k) for k in keep}


def model_meta(path: Path) -> dict:
    import torch

    meta = torch.load(path, map_location="cpu", weights_only=True)["meta"]
    return dict(meta.get("metrics", {}), l2=meta.get("l2"))


def machine() -> dict:
    import torch

    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            names = (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
            cpu = next(names, cpu)
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads()}
    try:
        with open("/proc/meminfo") as f:
            info["mem_gb"] = round(int(f.readline().split()[1]) / 1e6, 1)
    except OSError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _gb(kb) -> str:
    return "-" if kb is None else f"{kb / 1e6:.2f}"


def _s(x) -> str:
    return "-" if x is None else f"{x:.1f}"


def report(res: dict) -> str:
    m, shp = res["machine"], res["shape"]
    lines = [
        f"# rdia at scale: {shp['rows']:,} rows × {shp['features']:,} features, "
        f"{shp['nnz']} nonzeros a row (device {res['device']})",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m.get('mem_gb', '?')} GB RAM"
        + (f", GPU {m['gpu']}" if m.get("gpu") else "")
        + f"; torch {m['torch']} ({m['torch_threads']} threads). The load average (1/5/15 min) is "
        "recorded before and after each stage, as the machine may be shared"
        + (f"; stages run with `nice -n {res['nice']}`." if res.get("nice") else "."),
        "",
        "| stage | wall s | CPU s (user+sys) | peak RSS GB | load before → after |",
        "|---|---:|---:|---:|---|",
    ]
    for st, r in res["stages"].items():
        cpu = None if r.get("user_s") is None else r["user_s"] + r["sys_s"]
        flag = "" if r["rc"] == 0 else f" (exit {r['rc']})"
        lines.append(f"| `{st}`{flag} | {_s(r['wall_s'])} | {_s(cpu)} | {_gb(r.get('max_rss_kb'))} "
                     f"| {r['load_before']} → {r['load_after']} |")
    if "score_cpu" in res:
        r = res["score_cpu"]
        cpu = None if r.get("user_s") is None else r["user_s"] + r["sys_s"]
        lines.append(f"| `score` on CPU | {_s(r['wall_s'])} | {_s(cpu)} | "
                     f"{_gb(r.get('max_rss_kb'))} | {r['load_before']} → {r['load_after']} |")
    for st in ("train", "retrain"):
        mm = res.get(f"{st}_meta")
        if mm:
            lines.append("")
            lines.append(f"`{st}`: {mm.get('iterations')} Newton steps, {mm.get('cg_iterations')} "
                         f"CG iterations in all, relative gradient norm "
                         f"{mm.get('rel_grad_norm', float('nan')):.1e}, λ = {mm.get('l2', 0):.3g}.")
    sm, lb = res.get("score_meta"), res.get("lower_bound")
    if sm and lb and "error" not in lb:
        sc = res["stages"].get("score", {})
        # the scores file records no timings since it became byte-reproducible (then: the
        # library's setup/solve/score seconds; now only the whole command's wall time)
        timed = all(sm.get(k) is not None for k in ("setup_seconds", "solve_seconds",
                                                     "score_seconds"))
        inside = (f"; inside the library: setup {sm['setup_seconds']:.1f} s, solve "
                  f"{sm['solve_seconds']:.1f} s, scores {sm['score_seconds']:.1f} s"
                  if timed else "")
        lines += [
            "",
            f"`score`: {sm['iterations']} CG iterations (relative residual {sm['residual']:.1e})"
            f"{inside}.",
            "",
            "| lower bound: bare mat-vecs, same tensors | mat-vecs | wall s | CPU s | load |",
            "|---|---:|---:|---:|---|",
            f"| 2 per CG iteration + 1 for the scores | {lb['matvecs']} | {lb['wall_s']:.1f} | "
            f"{lb['cpu_s']:.1f} | {lb['load_before']} → {lb['load_after']} |",
            "",
            "| ratio to the lower bound | wall |",
            "|---|---:|",
        ]
        if timed:
            lib = sm["setup_seconds"] + sm["solve_seconds"] + sm["score_seconds"]
            lines += [f"| `score_logreg` (solve + scores) | "
                      f"{(sm['solve_seconds'] + sm['score_seconds']) / lb['wall_s']:.2f}× |",
                      f"| `score_logreg` (setup + solve + scores) | {lib / lb['wall_s']:.2f}× |"]
        if sc.get("wall_s"):
            lines.append(f"| whole `rdia score` command (read, fingerprint, solve, write) | "
                         f"{sc['wall_s'] / lb['wall_s']:.2f}× |")
    if res.get("lower_bound_cpu") and "error" not in res["lower_bound_cpu"]:
        lbc, smc = res["lower_bound_cpu"], res["score_cpu_meta"]
        solve = (f", solve {smc['solve_seconds']:.1f} s" if smc.get("solve_seconds") is not None
                 else f", whole command {res['score_cpu']['wall_s']:.1f} s")
        lines += ["", f"CPU in the same run: `score` {smc['iterations']} iterations{solve}; "
                  f"lower bound {lbc['matvecs']} mat-vecs {lbc['wall_s']:.1f} s."]
    lines += ["", "Raw numbers: the .json file beside this one.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
