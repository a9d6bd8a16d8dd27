"""Outputs in the format the name asks for: a user's table back out with the new labels,
LIBSVM-derived data as plain columns, CSV/TSV, LIBSVM text, and ``Dataset.to_pandas``."""

from __future__ import annotations

import gzip
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp

from rdia_cli.data import Dataset, read_dataset, write_dataset
from rdia_cli.data.readers import DataWarning
from rdia_cli.data.writers import DENSE_COLUMNS_MAX, output_format
from rdia_cli.errors import InputError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"

USER_CSV = (
    "patient,name,age,dose,diagnosis\n"
    "p1,ann,31,0.5,yes\n"
    "p2,,45,1.25,no\n"
    "p3,\"Lee, Bo\",52,,yes\n"
    "p4,dan,29,2,no\n"
)


def user_dataset(tmp_path: Path, *, target: bool = True) -> Dataset:
    """What the CSV reader gives for USER_CSV with `--label-col diagnosis --id-col patient`
    (built by hand): the table as read, features age/dose, rows 1 and 2 relabeled."""
    path = tmp_path / "patients.csv"
    path.write_text(USER_CSV)
    table = pacsv.read_csv(path)
    X = np.array([[31, 0.5], [45, 1.25], [52, 0.0], [29, 2.0]], np.float32)
    y_orig = np.array([1, 0, 1, 0])
    y_new = np.array([1, 1, 0, 0])  # rows 1 and 2 relabeled
    extra = {"original_label": np.array(["yes", "no", "yes", "no"], dtype=object),
             "relabeled": np.array([False, True, True, False]),
             "phi": np.array([0.5, -2.0, -1.5, 0.25])}
    t = None
    if target:
        t = np.eye(2, dtype=np.float32)[y_new]
        t[1] = [0.25, 0.75]
    return Dataset(
        X=X, y=y_new if target else y_orig, classes=["no", "yes"], row_id=np.arange(4),
        target=t, feature_names=["age", "dose"], extra=extra if target else {},
        meta={"columns": {"label": "diagnosis", "id": "patient", "ignore": ["name"],
                          "format": "csv", "delimiter": ","}},
        source=str(path), table=table,
    )


def libsvm_dataset() -> Dataset:
    return read_dataset(str(FIXTURES / "tiny.svm"))  # 1-based, 5 features, classes -1/1


# --------------------------------------------------------------------------------------------
# Extensions
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, fmt", [
    ("a.parquet", ("parquet", None)), ("a.PQ", ("parquet", None)), ("a.csv", ("csv", None)),
    ("a.tsv", ("tsv", None)), ("a.csv.gz", ("csv", "gzip")), ("a.svm", ("libsvm", None)),
    ("a.libsvm.xz", ("libsvm", "xz")), ("-", ("parquet", None)),
])
def test_output_format_by_extension(name, fmt):
    assert output_format(name) == fmt


@pytest.mark.parametrize("name", ["x.json", "x", "x.parquet.gz", "x.txt", "dir/x.csv.zip"])
def test_other_extensions_are_refused_and_nothing_is_written(tmp_path, name):
    (tmp_path / "dir").mkdir()
    with pytest.raises(InputError, match=r"give -o a name ending in \.parquet|Parquet compresses"):
        write_dataset(libsvm_dataset(), str(tmp_path / name))
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["dir"]


def test_json_message():
    with pytest.raises(InputError) as e:
        output_format("x.json")
    assert str(e.value) == ("Cannot write `x.json`: give -o a name ending in .parquet, .csv, "
                            ".tsv, .svm or .libsvm.")


def test_stdout_and_devices_are_parquet():
    assert output_format("/dev/null") == ("parquet", None)
    assert output_format("-", "csv") == ("csv", None)
    with pytest.raises(InputError, match="a libsvm name"):
        output_format("a.svm", "csv")


@pytest.mark.parametrize("ext", [".parquet", ".pq", ".csv", ".tsv", ".csv.gz", ".tsv.bz2",
                                 ".svm", ".libsvm", ".svm.gz", ".libsvm.xz"])
def test_every_extension_round_trips(tmp_path, ext):
    ds = libsvm_dataset()
    path = tmp_path / f"out{ext}"
    write_dataset(ds, str(path))
    back = read_dataset(str(path))
    dense = ds.X.toarray()
    got = back.X.toarray() if back.is_sparse else back.X
    if ".csv" in ext or ".tsv" in ext:  # text tables hold row_id as a trailing column
        got = got[:, :5]
    np.testing.assert_array_equal(got, dense)
    np.testing.assert_array_equal(back.label_values(), ds.label_values())


# --------------------------------------------------------------------------------------------
# A user's table
# --------------------------------------------------------------------------------------------
def test_user_csv_comes_back_for_pandas(tmp_path):
    ds = user_dataset(tmp_path)
    out = tmp_path / "cleaned.csv"
    write_dataset(ds, str(out))
    given = pd.read_csv(tmp_path / "patients.csv")
    back = pd.read_csv(out)
    cols = list(given.columns)
    assert list(back.columns[: len(cols)]) == cols  # same names, same order, first
    assert list(back.columns[len(cols):]) == ["original_label", "target_no", "target_yes",
                                              "relabeled", "phi"]  # no row_id: the table has an ID
    for c in ("patient", "name", "age", "dose"):  # ID, strings, blanks untouched
        pd.testing.assert_series_equal(back[c], given[c])
    assert back["diagnosis"].tolist() == ["yes", "yes", "no", "no"]  # the new labels
    assert back["original_label"].tolist() == given["diagnosis"].tolist()
    assert back["target_yes"].tolist() == [1.0, 0.75, 0.0, 0.0]
    assert back["relabeled"].dtype == bool


def test_user_table_to_parquet_keeps_types_and_row_id(tmp_path):
    ds = user_dataset(tmp_path)
    out = tmp_path / "cleaned.parquet"
    write_dataset(ds, str(out))
    table = pq.read_table(out)
    assert table.column_names == ["patient", "name", "age", "dose", "diagnosis",
                                  "original_label", "target", "relabeled", "phi", "row_id"]
    for name in ("patient", "name", "age", "dose", "diagnosis"):
        assert table.schema.field(name).type == ds.table.schema.field(name).type
    assert table.column("dose").to_pylist() == [0.5, 1.25, None, 2.0]
    assert table.column("diagnosis").to_pylist() == ["yes", "yes", "no", "no"]
    assert table.schema.field("target").type == pa.list_(pa.float32())
    meta = {k.decode(): json.loads(v) for k, v in table.schema.metadata.items()}
    assert meta["rdia.label_column"] == "diagnosis"
    assert meta["rdia.added_columns"] == ["original_label", "target", "relabeled", "phi",
                                          "row_id"]
    assert meta["rdia.columns"]["id"] == "patient"
    assert meta["rdia.fingerprint"] == ds.fingerprint()


def test_user_table_dropped_rows_are_absent(tmp_path):
    ds = user_dataset(tmp_path).subset(np.array([0, 3]))  # a drop strategy removed rows 1, 2
    out = tmp_path / "cleaned.csv"
    write_dataset(ds, str(out))
    back = pd.read_csv(out)
    assert back["patient"].tolist() == ["p1", "p4"]
    assert back["diagnosis"].tolist() == ["yes", "no"]


def test_user_table_without_id_gets_row_id_last_in_csv(tmp_path):
    ds = user_dataset(tmp_path, target=False)
    ds.meta["columns"]["id"] = None
    out = tmp_path / "noisy.tsv"
    write_dataset(ds, str(out))
    back = pd.read_csv(out, sep="\t")
    assert list(back.columns) == ["patient", "name", "age", "dose", "diagnosis", "row_id"]
    assert back["row_id"].tolist() == [0, 1, 2, 3]


def test_integer_label_keeps_its_type(tmp_path):
    table = pa.table({"id": ["a", "b", "c"], "x": [1.0, 2.0, 3.0],
                      "y": pa.array([0, 1, 1], pa.int32())})
    ds = Dataset(X=np.array([[1.0], [2.0], [3.0]], np.float32), y=[1, 1, 0], classes=[0, 1],
                 row_id=np.arange(3), feature_names=["x"], table=table,
                 meta={"columns": {"label": "y", "id": "id"}})
    write_dataset(ds, str(tmp_path / "o.parquet"))
    out = pq.read_table(tmp_path / "o.parquet")
    assert out.schema.field("y").type == pa.int32()
    assert out.column("y").to_pylist() == [1, 1, 0]


def test_name_clash_gets_the_rdia_suffix(tmp_path):
    ds = user_dataset(tmp_path)
    ds.table = ds.table.append_column("phi", pa.array(["keep", "these", "user", "values"]))
    ds.table = ds.table.append_column("target_no", pa.array([9, 9, 9, 9]))
    write_dataset(ds, str(tmp_path / "c.parquet"))
    table = pq.read_table(tmp_path / "c.parquet")
    assert table.column("phi").to_pylist() == ["keep", "these", "user", "values"]
    assert table.column("phi_rdia").to_pylist() == [0.5, -2.0, -1.5, 0.25]
    meta = json.loads(table.schema.metadata[b"rdia.renamed"])
    assert meta == {"phi": "phi_rdia"}
    write_dataset(ds, str(tmp_path / "c.csv"))
    back = pd.read_csv(tmp_path / "c.csv")
    assert back["target_no"].tolist() == [9, 9, 9, 9]
    assert back["target_no_rdia"].tolist() == [0.0, 0.25, 1.0, 1.0]
    assert back["phi_rdia"].tolist() == [0.5, -2.0, -1.5, 0.25]


def test_extra_from_the_table_is_not_written_twice(tmp_path):
    ds = user_dataset(tmp_path, target=False)
    ds.extra = {"name": np.array(["ann", "", "Lee, Bo", "dan"], dtype=object),
                "is_noisy": np.array([True, False, False, False])}
    write_dataset(ds, str(tmp_path / "n.csv"))
    back = pd.read_csv(tmp_path / "n.csv")
    assert list(back.columns) == ["patient", "name", "age", "dose", "diagnosis", "is_noisy"]


def test_semicolon_csv_keeps_its_delimiter(tmp_path):
    ds = user_dataset(tmp_path)
    ds.meta["columns"]["delimiter"] = ";"
    write_dataset(ds, str(tmp_path / "c.csv"))
    assert (tmp_path / "c.csv").read_text().splitlines()[0].startswith('"patient";"name"')
    back = pd.read_csv(tmp_path / "c.csv", sep=";")
    assert back["name"].tolist()[2] == "Lee, Bo"


def test_to_pandas_has_the_csv_columns(tmp_path):
    ds = user_dataset(tmp_path)
    write_dataset(ds, str(tmp_path / "c.csv"))
    df = ds.to_pandas()
    assert list(df.columns) == list(pd.read_csv(tmp_path / "c.csv").columns)
    assert df["diagnosis"].tolist() == ["yes", "yes", "no", "no"]
    plain = libsvm_dataset().to_pandas()
    assert list(plain.columns) == ["label", "x1", "x2", "x3", "x4", "x5", "row_id"]
    assert plain["x5"].tolist()[0] == -2.0


# --------------------------------------------------------------------------------------------
# No table: rdia's layout
# --------------------------------------------------------------------------------------------
def test_libsvm_input_becomes_x1_to_xp(tmp_path):
    ds = libsvm_dataset()
    write_dataset(ds, str(tmp_path / "o.parquet"))
    table = pq.read_table(tmp_path / "o.parquet")
    assert table.column_names == ["row_id", "label", "x1", "x2", "x3", "x4", "x5"]
    assert table.column("x1").type == pa.float32()
    meta = {k.decode(): json.loads(v) for k, v in table.schema.metadata.items()}
    assert meta["rdia.sparse"] is True and meta["rdia.index_base"] == 1
    assert meta["rdia.feature_names"] == ["x1", "x2", "x3", "x4", "x5"]
    df = pd.read_csv(_write(ds, tmp_path / "o.csv"))
    assert list(df.columns) == ["label", "x1", "x2", "x3", "x4", "x5", "row_id"]
    zero = read_dataset(str(FIXTURES / "tiny_zero.svm"))
    df = pd.read_csv(_write(zero, tmp_path / "z.csv"))
    assert list(df.columns)[1] == "x0"


def test_libsvm_columns_read_back_as_the_same_sparse_data(tmp_path):
    ds = libsvm_dataset()
    back = read_dataset(_write(ds, tmp_path / "o.parquet"))
    assert back.is_sparse and back.feature_names is None
    assert back.fingerprint() == ds.fingerprint()


def test_wide_sparse_keeps_indices_and_values(tmp_path):
    p = DENSE_COLUMNS_MAX + 1
    X = sp.random(4, p, density=0.01, format="csr", dtype=np.float32, random_state=0)
    ds = Dataset(X=X, y=[0, 1, 0, 1], classes=[0, 1], row_id=np.arange(4),
                 meta={"zero_based": True})
    back = read_dataset(_write(ds, tmp_path / "w.parquet"))
    assert back.is_sparse and back.fingerprint() == ds.fingerprint()
    schema = pq.read_schema(tmp_path / "w.parquet")
    assert "indices" in schema.names and "x0" not in schema.names
    assert json.loads(schema.metadata[b"rdia.index_base"]) == 0
    assert json.loads(schema.metadata[b"rdia.n_features"]) == p
    with pytest.raises(InputError, match=r"write \.parquet or \.svm"):
        write_dataset(ds, str(tmp_path / "w.csv"))
    assert not (tmp_path / "w.csv").exists()


def test_soft_targets_in_csv_are_one_column_per_class(tmp_path):
    ds = libsvm_dataset()
    ds.target = np.tile(np.array([[0.25, 0.75]], np.float32), (6, 1))
    ds.extra = {"target_raw": ds.target * 0.5}
    df = pd.read_csv(_write(ds, tmp_path / "s.csv"))
    assert list(df.columns[6:]) == ["target_-1", "target_1", "target_raw_-1", "target_raw_1",
                                    "row_id"]
    assert df["target_1"].tolist() == [0.75] * 6
    assert df["target_raw_-1"].tolist() == [0.125] * 6


def test_dense_data_keeps_its_feature_names_in_csv(tmp_path):
    ds = Dataset(X=np.arange(6, dtype=np.float32).reshape(3, 2), y=[0, 1, 0], classes=[0, 1],
                 row_id=[0, 1, 2], feature_names=["f_a", "f b"])
    df = pd.read_csv(_write(ds, tmp_path / "d.csv"))
    assert list(df.columns) == ["label", "f_a", "f b", "row_id"]


def test_csv_input_written_as_csv_reads_the_same_in_pandas(tmp_path):
    ds = read_dataset(str(FIXTURES / "tiny.csv"))
    df = pd.read_csv(_write(ds, tmp_path / "d.csv"))
    given = pd.read_csv(FIXTURES / "tiny.csv")
    pd.testing.assert_frame_equal(df[list(given.columns)], given)
    assert list(df.columns) == [*given.columns, "row_id"]  # no ID column: row_id trails


# --------------------------------------------------------------------------------------------
# LIBSVM out
# --------------------------------------------------------------------------------------------
def test_libsvm_out_keeps_the_index_base(tmp_path):
    one = _write(libsvm_dataset(), tmp_path / "one.svm")
    assert Path(one).read_text().splitlines()[0] == "1 1:0.5 3:1 5:-2"
    zero = read_dataset(str(FIXTURES / "tiny_zero.svm"))
    text = Path(_write(zero, tmp_path / "zero.svm")).read_text()
    src = [ln for ln in (FIXTURES / "tiny_zero.svm").read_text().splitlines()
           if ln and not ln.startswith("#")]
    assert " 0:" in text
    back = read_dataset(str(tmp_path / "zero.svm"), )
    assert back.meta["zero_based"] is True
    assert back.fingerprint() == zero.fingerprint()
    assert len(text.splitlines()) == len(src)


def test_libsvm_out_is_float32_exact_and_compressed(tmp_path):
    X = sp.csr_matrix(np.array([[0.1, 0, 1e-7], [0, 3.4028235e38, 0]], np.float32))
    ds = Dataset(X=X, y=[0, 1], classes=[0, 1], row_id=[0, 1])
    path = _write(ds, tmp_path / "f.svm.gz")
    lines = gzip.decompress(Path(path).read_bytes()).decode().splitlines()
    assert lines == ["0 1:0.100000001 3:1.00000001e-07", "1 2:3.40282347e+38"]
    back = read_dataset(path)
    np.testing.assert_array_equal(back.X.toarray(), X.toarray())


def test_libsvm_out_hard_labels_and_a_warning_for_soft_targets(tmp_path):
    ds = libsvm_dataset()  # labels 1 -1 1 -1 1 -1 (classes [-1, 1])
    ds.target = np.eye(2, dtype=np.float32)[ds.y]
    ds.target[0] = [0.9, 0.1]  # row 0 relabeled to -1, softly
    ds.extra = {"relabeled": np.arange(6) == 0}
    with pytest.warns(DataWarning, match="hard labels only"):
        path = _write(ds, tmp_path / "h.svm")
    labels = [ln.split()[0] for ln in Path(path).read_text().splitlines()]
    assert labels == ["-1", "-1", "1", "-1", "1", "-1"]
    ds.target = np.eye(2, dtype=np.float32)[ds.y]  # one-hot: nothing is lost, no warning
    ds.extra = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _write(ds, tmp_path / "h2.svm")


def test_libsvm_out_refuses_string_classes(tmp_path):
    ds = read_dataset(str(FIXTURES / "tiny.csv"))
    with pytest.raises(InputError, match="LIBSVM labels are numbers"):
        write_dataset(ds, str(tmp_path / "s.svm"))
    assert not (tmp_path / "s.svm").exists()


def _write(ds: Dataset, path: Path) -> str:
    write_dataset(ds, str(path))
    return str(path)
