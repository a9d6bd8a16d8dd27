"""Every bad file or option exits 2 with one line naming what is wrong (#28): never a traceback,
never "internal error", no output written, the inputs unchanged.

One row per case: how to make the bad input in the test's folder (from a good model and scores
file), the command's arguments, the exit code and a fragment of the message."""

from __future__ import annotations

import copy
import gzip
import shutil
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from rdia_cli.models.io import _deterministic_bytes
from tests.cli_helpers import ok, rdia, shell


@pytest.fixture(scope="module")
def good(tmp_path_factory, cancer_svm):
    """A folder with train.svm, val.svm, a logistic-regression model m.pt and its scores."""
    d = tmp_path_factory.mktemp("good")
    for name in ("train.svm", "val.svm"):
        shutil.copy(cancer_svm / name, d / name)
    ok(rdia("train", d / "train.svm", "-o", d / "m.pt", "--device", "cpu", "-q"))
    ok(rdia("score", d / "train.svm", "--val", d / "val.svm", "--model", d / "m.pt",
            "-o", d / "s.parquet", "--device", "cpu", "-q"))
    return d


# --- makers: (folder) -> the command's arguments; they write the bad input into the folder -----

def _model(change):
    def make(d):
        payload = torch.load(d / "m.pt", weights_only=True)
        payload = copy.deepcopy(payload)
        change(payload)
        if "meta" in payload:
            (d / "bad.pt").write_bytes(_deterministic_bytes(payload))
        else:  # _deterministic_bytes needs one
            torch.save(payload, d / "bad.pt")
        return ["evaluate", d / "bad.pt", "--data", d / "val.svm", "--device", "cpu"]
    return make


def _scores(change):
    def make(d):
        t = pq.read_table(d / "s.parquet")
        t, md = change(t, dict(t.schema.metadata))
        pq.write_table(t.replace_schema_metadata(md), d / "bad.parquet")
        return ["relabel", d / "train.svm", "--scores", d / "bad.parquet", "-o", d / "out.parquet"]
    return make


def _set_meta(key, value):
    def change(t, md):
        if value is None:
            del md[key]
        else:
            md[key] = value
        return t, md
    return change


def _string_phi(t, md):
    i = t.column_names.index("phi")
    return t.set_column(i, "phi", pa.array([str(v) for v in t.column("phi").to_pylist()])), md


def _setitem(path, value):
    def change(payload):
        *head, last = path
        target = payload
        for k in head:
            target = target[k]
        if value is _DELETE:
            del target[last]
        else:
            target[last] = value
    return change


_DELETE = object()


def _nan_weight(payload):
    payload["state"]["weight"][0, 0] = float("nan")


def _long_name(d):
    return ["relabel", d / "train.svm", "--scores", d / "s.parquet", "-o",
            d / ("a" * 250 + ".parquet")]


def _soft(d):
    pq.write_table(pa.table({"a": [0.1, 0.2, 0.3], "label": [0, 1, 1],
                             "target": pa.array([[0.5, 0.3, 0.2]] * 3, pa.list_(pa.float32()))}),
                   d / "soft.parquet")
    return ["convert", d / "soft.parquet", "-o", d / "out.parquet"]


def _convert(name, write):
    def make(d):
        write(d / name)
        return ["convert", d / name, "-o", d / "out.parquet"]
    return make


def _dup_parquet(path):
    pq.write_table(pa.Table.from_arrays([pa.array([0.1, 0.2]), pa.array([0.3, 0.4]),
                                         pa.array([0, 1])], names=["a", "a", "label"]), path)


def _cp1252_csv(path):
    path.write_bytes("café,label\n0.1,0\n0.2,1\n".encode("cp1252"))


def _huge_idx(d):
    import struct

    (d / "x-idx3-ubyte").write_bytes(struct.pack(">IIII", 0x0803, 2**31, 2**31, 2**31)
                                     + bytes(16))
    (d / "y-idx1-ubyte").write_bytes(struct.pack(">II", 0x0801, 2) + b"\0\1")
    return ["convert", d / "x-idx3-ubyte", "--labels", d / "y-idx1-ubyte", "-o",
            d / "out.parquet"]


def _image_shape(path):
    pq.write_table(pa.table({"label": [0, 1], "pixels": pa.array([[0.1, 0.2]] * 2)})
                   .replace_schema_metadata({b"rdia.image_shape": b"[-1, -2]"}), path)


def _n_features(path):
    pq.write_table(pa.table({"label": [0, 1],
                             "indices": pa.array([[0], [1]], pa.list_(pa.int32())),
                             "values": pa.array([[1.0], [2.0]], pa.list_(pa.float32()))})
                   .replace_schema_metadata({b"rdia.n_features": b'"abc"'}), path)


def _text(text, name="bad.svm"):
    def make(d):
        (d / name).write_text(text)
        return ["train", d / name, "-o", d / "out.pt", "--device", "cpu", "-q"]
    return make


def _sparse(indices, typ, meta=None):
    def write(path):
        t = pa.table({"label": [0, 1], "indices": pa.array(indices, pa.list_(typ)),
                      "values": pa.array([[1.0], [2.0]], pa.list_(pa.float32()))})
        pq.write_table(t.replace_schema_metadata(meta or {}), path)
    return _convert("sp.parquet", write)


def _latin1_csv(column):
    def write(path):
        rows = ["a,b,label", "0.1,x,0", "0.2,y,1", "0.3,z,1"]
        rows[2] = rows[2].replace("y" if column == "b" else "1", "thé")
        path.write_bytes(("\n".join(rows) + "\n").encode("latin-1"))
    return _convert("lat.csv", write)


def _loop(d):
    (d / "loop1").symlink_to("loop2")
    (d / "loop2").symlink_to("loop1")


def _input_loop(d):
    _loop(d)
    return ["train", d / "loop1", "-o", d / "out.pt"]


def _output_loop(d):
    _loop(d)
    return ["convert", d / "train.svm", "-o", d / "loop1"]


def _parquet(table, name="t.parquet"):
    return _convert(name, lambda path: pq.write_table(table, path))


def _weights(values):
    def write(path):
        pq.write_table(pa.table({"a": [0.1, 0.2, 0.3], "label": [0, 1, 1], "weight": values})
                       .replace_schema_metadata({b"rdia.format_version": b"1"}), path)
    return _convert("w.parquet", write)


CASES = [
    # widths and allocations (before any model is built)
    ("LIBSVM index 10^8 in a tiny file", _text("1 100000000:1\n0 1:1\n"), 2,
     "100,000,000 features wide for 2 stored values"),
    ("LIBSVM index 2^31", _text("1 2147483648:1\n0 1:1\n"), 2,
     "feature index 2147483648 on line 1"),
    ("sparse Parquet index 10^12", _sparse([[0], [10**12]], pa.int64()), 2,
     "rdia handles at most 2,147,483,647"),
    ("rdia.n_features 1e11", _sparse([[0], [1]], pa.int32(), {b"rdia.n_features": b"100000000000"}),
     2, "integer from 1 to 2,147,483,647"),
    ("--n-features 1e10", lambda d: ["train", d / "train.svm", "--n-features", "10000000000",
                                     "-o", d / "out.pt"], 2, "--n-features must be 1 to"),
    ("a gzip of 4 MB of zeros",
     _convert("z.svm.gz", lambda p: p.write_bytes(gzip.compress(bytes(4_300_000)))), 2,
     "holds binary data once decompressed"),
    ("--n-features 2e9 (a 30 GiB model)",
     lambda d: ["train", d / "train.svm", "--n-features", "2000000000", "-o", d / "out.pt",
                "--device", "cpu"], 2, "for its weights alone"),
    # silent misreads
    ("LIBSVM float index", _text("1 1.5:3\n0 1:1\n"), 2, "integer feature index in `1.5:3`"),
    ("sparse Parquet float indices", _sparse([[0.5], [1.0]], pa.float64()), 2,
     "`indices` of type float64"),
    ("negative weight in rdia's file", _weights([1.0, -2.0, 1.0]), 2, "negative `weight` -2"),
    ("all-zero weights", _weights([0.0, 0.0, 0.0]), 2, "`weight` 0 on every row"),
    # values beyond float32 (they were "NaN or infinity", with numpy's overflow warning)
    ("LIBSVM value 1e39", _text("1 1:0.5\n1 1:1e39\n0 1:0.1\n"), 2,
     "has the value 1e39 on line 2, feature index 1, beyond the float32 range (±3.4e38)"),
    ("CSV value -1e39", _text("a,b,label\n0.1,0.2,0\n0.3,-1e39,1\n", "big.csv"), 2,
     "has the value -1e+39 on line 3, column `b`, beyond the float32 range"),
    ("CSV value 1e39 in a column with missing cells",
     _text("a,b,label\n0.1,,0\n0.3,1e39,1\n0.2,0.5,0\n", "big.csv"), 2,
     "has the value 1e+39 on line 3, column `b`, beyond the float32 range"),
    ("Parquet value 1e39", _parquet(pa.table({"a": [0.1, 1e39], "label": [0, 1]})), 2,
     "has the value 1e+39 in row 2, column `a`, beyond the float32 range"),
    ("sparse Parquet value 1e40",
     _parquet(pa.table({"label": [0, 1], "indices": pa.array([[0], [3]], pa.list_(pa.int32())),
                        "values": pa.array([[1.0], [1e40]], pa.list_(pa.float64()))})), 2,
     "has the value 1e+40 in row 2, feature index 3, beyond the float32 range"),
    # CSV lines: a quoted value may span lines; text that is not UTF-8
    ("CSV row after a quoted newline",
     _text('note,a,label\n"two\nlines",0.1,0\n"x",0.2,1\n"y",abc,1\n', "q.csv"), 2,
     "non-numeric value `abc` in column `a` on line 5"),
    ("CSV short row with quoted newlines",
     _text('note,a,label\n"two\nlines",0.1,0\n\n"x",0.2,1\n"y\nz",0.3\n', "q.csv"), 2,
     "has 2 fields on line 6, but its header has 3"),
    ("CSV label in Latin-1", _latin1_csv("label"), 2,
     "is not UTF-8 text on line 3: column `label` holds"),
    ("CSV text feature in Latin-1", _latin1_csv("b"), 2,
     "is not UTF-8 text on line 3: column `b` holds `th"),
    # standard input, links
    ("standard input for DATA and --val",
     lambda d: ["train", "-", "--val", "-", "-o", d / "out.pt"], 2,
     "DATA and --val are both `-`: standard input can be read only once"),
    ("standard input for DATA and (by default) --scores",
     lambda d: ["relabel", "-", "--alpha", "0.1", "-o", d / "out.parquet"], 2,
     "DATA is `-`, and so is --scores when not given"),
    ("an input that is a loop of links", _input_loop, 2, "is a symbolic link to nothing"),
    ("an output that is a loop of links", _output_loop, 2, "is a loop of symbolic links"),
    # degenerate data
    ("LIBSVM with labels only", _text("1\n0\n"), 2, "has no features"),
    ("CSV with only a label column", _text("label\n1\n0\n", "lab.csv"), 2, "has no features"),

    # model files
    ("model without arch_args", _model(_setitem(["arch_args"], _DELETE)), 2, "`arch_args` entry"),
    ("model without a weight", _model(_setitem(["state", "bias"], _DELETE)), 2,
     "missing weights `bias`"),
    ("model with a changed arch", _model(_setitem(["arch"], "mlp")), 2, "`input_shape`"),
    ("model with NaN weights", _model(_nan_weight), 2, "NaN or infinite"),
    ("model whose classes disagree with its weights",
     _model(_setitem(["meta", "classes"], [-1, 1, 2])), 2, "has 3 classes"),
    ("model with a weight of the wrong shape",
     _model(_setitem(["state", "weight"], torch.zeros(5, 1))), 2, "expected [30, 1]"),
    ("model without meta", _model(_setitem(["meta"], _DELETE)), 2, "`meta` entry"),
    # scores files
    ("scores with a string phi", _scores(_string_phi), 2, "column `phi` holds string"),
    ("scores with probs unlike the classes",
     _scores(_set_meta(b"rdia.classes", b"[-1, 1, 2]")), 2, "`probs` has 2 values"),
    ("scores without classes", _scores(_set_meta(b"rdia.classes", None)), 2,
     "`rdia.classes` is missing"),
    ("scores with metadata that is not JSON", _scores(_set_meta(b"rdia.classes", b"[-1, 1")), 2,
     "`rdia.classes` is not JSON"),
    ("scores with no rows", _scores(lambda t, md: (t.slice(0, 0), md)), 2, "it has no rows"),
    ("scores with reordered rows",
     _scores(lambda t, md: (t.take(pa.array(range(len(t) - 1, -1, -1))), md)), 2,
     "both have 400 rows but their row_id differ"),
    # data files
    ("Parquet with a repeated column name", _convert("dup.parquet", _dup_parquet), 2,
     "duplicate column names ['a']"),
    ("CSV with a cp1252 header", _convert("cp.csv", _cp1252_csv), 2,
     "header (line 1) that is not UTF-8"),
    ("Parquet with negative rdia.image_shape", _convert("img.parquet", _image_shape), 2,
     "`rdia.image_shape` [-1, -2]; it must be a list of positive integers"),
    ("Parquet with rdia.n_features \"abc\"", _convert("nf.parquet", _n_features), 2,
     "`rdia.n_features` 'abc'"),
    ("IDX dimensions that overflow", _huge_idx, 2, "needs 9903520314283042199192993792"),
    ("soft targets over other classes, no --classes", _soft, 2,
     "its `target` column and its labels"),
    # outputs and options
    ("--classes 1,1", lambda d: ["convert", d / "train.svm", "-o", d / "out.parquet",
                                 "--classes", "1,1"], 2, "--classes names label 1 twice"),
    ("a 250-character output name", _long_name, 2, "is too long"),
    ("--seed -1", lambda d: ["split", d / "train.svm", "-o", d / "out", "--seed", "-1"], 2,
     "--seed"),
    ("--seed 2^64", lambda d: ["split", d / "train.svm", "-o", d / "out", "--seed",
                               str(2**64)], 2, "--seed"),
    ("--hidden 0", lambda d: ["train", d / "train.svm", "--model-type", "mlp", "--hidden", "0",
                              "-o", d / "out.pt"], 2, "each layer size must be 1 to"),
    ("--hidden 1e11", lambda d: ["train", d / "train.svm", "--model-type", "mlp", "--hidden",
                                 "100000000000", "-o", d / "out.pt"], 2,
     "each layer size must be 1 to"),
]


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(("make", "code", "fragment"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_line(good, tmp_path, make, code, fragment):
    for p in good.iterdir():
        shutil.copy(p, tmp_path / p.name)
    args = make(tmp_path)
    before = _snapshot(tmp_path)
    res = rdia(*args)
    assert res.exit_code == code, (res.stdout, res.stderr)
    text = " ".join((res.stdout + res.stderr).split())  # Typer's boxes wrap lines
    assert fragment in text, text
    assert "Traceback" not in text and "internal error" not in text, text
    assert "RuntimeWarning" not in text, text
    assert _snapshot(tmp_path) == before  # nothing written, no input changed


def test_a_closed_pipe_ends_quietly(good, tmp_path):
    """`rdia relabel ... -o - | head -c 10`: exit 141 (SIGPIPE) silently, as Unix tools do."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "rdia_cli", "relabel", str(good / "train.svm"), "--scores",
         str(good / "s.parquet"), "-o", "-", "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    proc.stdout.read(10)
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    # 0 where the whole file fitted in the pipe's buffer before the reader went away
    code = proc.wait(timeout=120)
    assert code in (141, 0) and stderr == "", (code, stderr)


def test_a_closed_stdout_is_an_error(good, tmp_path):
    """`rdia evaluate ... >&-` printed its metrics nowhere and exited 0 (#28): exit 2, one line."""
    cmd = (f"{sys.executable} -m rdia_cli evaluate {good / 'm.pt'} --data {good / 'val.svm'} "
           "--device cpu >&-")
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, cwd=tmp_path, timeout=120)
    stderr = proc.stderr.decode()
    assert proc.returncode == 2 and "standard output is closed" in stderr, stderr
    assert "Traceback" not in stderr


def test_a_one_class_training_split_warns(tmp_path):
    """`rdia split` of 3 rows left a one-class training set silently (#28): it warns (a
    DataWarning, which the command line prints as one yellow line)."""
    import warnings

    from rdia_cli.data.protocol import split_dataset
    from rdia_cli.data.readers import DataWarning, read_dataset

    (tmp_path / "three.svm").write_text("1 1:0.5\n0 1:0.1\n1 1:0.7\n")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        split_dataset(read_dataset(str(tmp_path / "three.svm")), val=0.2, test=0.2, seed=0)
    assert any(issubclass(w.category, DataWarning)
               and "a model needs at least two classes" in str(w.message) for w in seen)
    assert rdia("split", tmp_path / "three.svm", "-o", tmp_path / "out").exit_code == 0


def test_float32_overflow_is_one_line_without_numpy_warning(tmp_path):
    """1e39 in a feature was "NaN or infinity" after numpy's `RuntimeWarning: overflow
    encountered in cast` with a source path (#28): one line, the file, line and column."""
    (tmp_path / "big.csv").write_text("a,b,label\n0.1,0.2,0\n0.3,1e39,1\n")
    (tmp_path / "big.svm").write_text("1 1:0.5\n0 2:1e39\n")
    for name, where in (("big.csv", "on line 3, column `b`"),
                        ("big.svm", "on line 2, feature index 2")):
        res = shell(f"rdia train {name} -o out.pt --device cpu", tmp_path)
        err = res.stderr.decode()
        assert res.returncode == 2 and err.count("\n") == 1, err
        assert where in err and "beyond the float32 range (±3.4e38)" in err, err
    assert not (tmp_path / "out.pt").exists()


def test_a_pipe_is_read_once(good, tmp_path):
    """A process substitution `<(cat val.svm)` or a named pipe was "empty (0 bytes)" (#28):
    it is read, once, as standard input is (a model file too: loaded, then fingerprinted)."""
    cmd = (f"rdia evaluate {good / 'm.pt'} --data <(cat {good / 'val.svm'}) --device cpu && "
           f"rdia score <(cat {good / 'train.svm'}) --val <(gzip -c {good / 'val.svm'}) "
           f"--model <(cat {good / 'm.pt'}) -o s.parquet --device cpu -q && "
           f"rdia relabel {good / 'train.svm'} --scores <(cat s.parquet) --alpha 0.002 "
           "-o r.parquet -q")
    exe = f"{sys.executable} -m rdia_cli"
    res = subprocess.run(["bash", "-c", cmd.replace("rdia ", exe + " ")], cwd=tmp_path,
                         capture_output=True, timeout=300)
    assert res.returncode == 0, res.stderr.decode()
    assert "accuracy" in res.stdout.decode() and (tmp_path / "r.parquet").exists()
    direct = ok(rdia("evaluate", good / "m.pt", "--data", good / "val.svm", "--device", "cpu"))
    assert direct.stdout.splitlines()[-2].split("│")[2:] == \
        res.stdout.decode().splitlines()[-2].split("│")[2:]  # the same n, loss, accuracy
    meta = pq.read_schema(tmp_path / "s.parquet").metadata
    assert not [k for k in meta if k.endswith(b"_path")]  # a pipe is not recorded as an input
    from rdia_cli.artifacts.scores import file_fingerprint

    assert meta[b"rdia.model_fingerprint"] == f'"{file_fingerprint(good / "m.pt")}"'.encode()

    import os
    import threading

    fifo = tmp_path / "val.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes((good / "val.svm").read_bytes()))
    writer.start()
    res = ok(rdia("evaluate", good / "m.pt", "--data", fifo, "--device", "cpu"))
    writer.join(timeout=60)
    assert "accuracy" in res.stdout
    os.unlink(fifo)
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(b""))
    writer.start()
    res = rdia("evaluate", good / "m.pt", "--data", fifo, "--device", "cpu")
    writer.join(timeout=60)
    assert res.exit_code == 2 and "nothing was written into the pipe" in res.stderr
    os.unlink(fifo)
    os.mkfifo(fifo)  # a named pipe for the model of `score`, which reads it twice
    writer = threading.Thread(target=lambda: fifo.write_bytes((good / "m.pt").read_bytes()))
    writer.start()
    ok(rdia("score", good / "train.svm", "--val", good / "val.svm", "--model", fifo, "-o",
            tmp_path / "s2.parquet", "--device", "cpu", "-q"))
    writer.join(timeout=60)
    assert pq.read_schema(tmp_path / "s2.parquet").metadata[b"rdia.model_fingerprint"] == \
        meta[b"rdia.model_fingerprint"]


def test_decimal_columns_are_numbers(tmp_path):
    """A Parquet decimal128 feature column was "non-numeric `0.7083`" against a model trained
    on floats (#28): decimals are read as float64, as the training path already did."""
    import decimal

    a = [0.7083, 0.1, 0.35, 0.9, 0.2, 0.65]
    labels = [1, 0, 0, 1, 0, 1]
    pq.write_table(pa.table({"a": a, "label": labels}), tmp_path / "f.parquet")
    dec = pa.array([decimal.Decimal(str(v)) for v in a], pa.decimal128(10, 4))
    pq.write_table(pa.table({"a": dec, "label": labels}), tmp_path / "d.parquet")
    ok(rdia("train", tmp_path / "f.parquet", "-o", tmp_path / "m.pt", "--device", "cpu", "-q"))
    floats, decimals = (ok(rdia("evaluate", tmp_path / "m.pt", "--data", tmp_path / name,
                                "--device", "cpu")).stdout.splitlines()[-2].split("│")[2:]
                        for name in ("f.parquet", "d.parquet"))
    assert floats == decimals


def test_advice_names_only_flags_of_the_command(tmp_path):
    """`rdia train` suggested `--damping`, a flag of `score` (#28): the advice of an error
    (``RdiaError.fixes``) keeps the flags the command that was run has."""
    from rdia_cli.cli.commands.retrain import retrain
    from rdia_cli.cli.commands.score import score
    from rdia_cli.cli.commands.train import train
    from rdia_cli.cli.core import as_flags
    from rdia_cli.errors import RuntimeFailure
    from rdia_cli.influence.nets import SOLVE_FIXES

    e = RuntimeFailure("the solve diverged", fixes=[*SOLVE_FIXES, ("solver", "use `solver` cg")])
    assert str(e) == ("the solve diverged; use `hessian` ggn or raise `damping` or use "
                      "`solver` cg.")  # the library names parameters
    assert as_flags(e, score) == ("the solve diverged; use --hessian ggn or raise --damping or "
                                  "use --solver cg.")
    assert as_flags(e, train) == "the solve diverged"
    assert as_flags(RuntimeFailure("x", fixes=SOLVE_FIXES, otherwise="y"), train) == "x; y."
    fit = RuntimeFailure("did not converge", fixes=[("max_iter", "raise `max_iter`"),
                                                    ("l2", "raise `l2`")])
    assert as_flags(fit, train) == "did not converge; raise --max-iter or raise --l2."
    assert as_flags(fit, retrain) == "did not converge; raise --l2."  # retrain has no --max-iter

    (tmp_path / "col.svm").write_text("0 1:1 2:1\n1 1:2 2:2\n0 1:-1 2:-1\n1 1:3 2:3\n")
    res = rdia("train", tmp_path / "col.svm", "--l2", "0", "-o", tmp_path / "m.pt",
               "--device", "cpu")  # collinear features, no λ: Cholesky fails in training
    assert res.exit_code == 1 and "not positive definite" in res.stderr, res.stderr
    assert "use --l2 > 0" in res.stderr and "damping" not in res.stderr, res.stderr
