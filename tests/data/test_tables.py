"""Raw tables in (issue #26): text, boolean, categorical columns and missing cells; the fitted
TablePrep (numpy transform == scikit-learn's); IDs, ignored columns; what a model remembers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from rdia_cli.data import Dataset, ReadOptions, Schema, read_dataset
from rdia_cli.data.formats.common import NULL_VALUES, Source, dense_from_columns
from rdia_cli.data.tables import INFREQUENT, TablePrep, column_kinds, prep_of
from rdia_cli.errors import InputError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
CREDIT = FIXTURES / "credit.csv"
CREDIT_VAL = FIXTURES / "credit_val.csv"
CREDIT_OPTS = ReadOptions(label_col="good_credit", id_col="customer_id")


def write(tmp_path: Path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def credit() -> Dataset:
    return read_dataset(str(CREDIT), CREDIT_OPTS, what="training data")


# --------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------
def test_read_options_defaults_and_effective_label():
    o = ReadOptions()
    assert o.label_col is None and o.label_column == "label"
    assert o.id_col is None and o.ignore_cols == () and o.categorical == ()
    assert ReadOptions(label_col="y").label_column == "y"
    # lists (recorded JSON) come back as tuples
    assert ReadOptions(ignore_cols=["a", "b"], categorical=["c"]).ignore_cols == ("a", "b")


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"id_col": "x", "label_col": "x"}, "`id_col` and `label_col` are the same column `x`"),
        ({"id_col": "label"}, "`id_col` and `label_col` are the same column `label`"),
        ({"ignore_cols": ("y",), "label_col": "y"}, "`ignore_cols` and `label_col`.*`y`"),
        ({"categorical": ("i",), "id_col": "i"}, "`categorical` and `id_col`.*`i`"),
        ({"categorical": ("a",), "ignore_cols": ("a",)}, "`categorical` and `ignore_cols`.*`a`"),
        ({"ignore_cols": ("a", "a")}, "`ignore_cols` names the column `a` twice"),
        ({"id_col": " "}, "`id_col` must be a column name"),
    ],
)
def test_read_options_validation(kw, message):
    with pytest.raises(InputError, match=message):
        ReadOptions(**kw)


def test_inherit_fills_only_unset_options():
    remembered = {"label_col": "good", "id_col": "cid", "ignore_cols": ["n"], "categorical": []}
    o = ReadOptions().inherit(remembered)
    assert (o.label_col, o.id_col, o.ignore_cols) == ("good", "cid", ("n",))
    o = ReadOptions(label_col="other", ignore_cols=("m",)).inherit(remembered)
    assert (o.label_col, o.id_col, o.ignore_cols) == ("other", "cid", ("m",))


# --------------------------------------------------------------------------------------------
# Column kinds and the fitted prep
# --------------------------------------------------------------------------------------------
def test_each_column_kind():
    t = pa.table({
        "num": [1.0, None, 3.0, 4.0],
        "int_text": ["1", "2", "3", "4"],
        "flag": [True, False, None, True],
        "cat": ["a", "b", "a", None],
        "dict": pa.array(["x", "y", "x", "x"]).dictionary_encode(),
        "code": [1, 2, 1, 2],
    })
    kinds = column_kinds(t, t.column_names, categorical=("code",))
    assert kinds == {"num": "numeric", "int_text": "numeric", "flag": "boolean",
                     "cat": "categorical", "dict": "categorical", "code": "categorical"}
    prep = TablePrep.fit(t, categorical=("code",), min_frequency=1)
    assert prep.feature_names == [
        "num", "num__missing", "int_text", "flag", "flag__missing", "cat=<missing>", "cat=a",
        "cat=b", "dict=x", "dict=y", "code=1", "code=2",
    ]
    X = prep.transform(t)
    assert X.dtype == np.float32 and X.shape == (4, 12)
    np.testing.assert_array_equal(X[:, 1], [0, 1, 0, 0])  # num__missing
    np.testing.assert_array_equal(X[:, 3], [1, 0, 1, 1])  # flag: missing -> most frequent
    np.testing.assert_array_equal(X[:, 4], [0, 0, 1, 0])
    np.testing.assert_array_equal(X[:, 5:8], [[0, 1, 0], [0, 0, 1], [0, 1, 0], [1, 0, 0]])
    np.testing.assert_array_equal(X[:, 10:], [[1, 0], [0, 1], [1, 0], [0, 1]])
    # numeric columns standardized (categorical column and missing cells engage the prep)
    assert prep.scaled
    np.testing.assert_allclose(X[:, 2].mean(), 0, atol=1e-6)
    np.testing.assert_allclose(X[:, 2].std(), 1, atol=1e-6)
    # the median fills the missing cell, then the column is standardized
    col = prep.columns[0]
    assert col.fill == 3.0
    np.testing.assert_allclose(X[1, 0], (3.0 - col.mean) / col.scale, rtol=1e-6)


def test_text_column_of_numbers_and_a_typo_is_an_error():
    t = pa.table({"a": ["1", "2", "oops", None]})
    with pytest.raises(InputError, match="non-numeric value `oops` in column `a` in row 3.*"
                       "`--categorical a`"):
        column_kinds(t, ["a"])
    assert column_kinds(t, ["a"], categorical=("a",)) == {"a": "categorical"}


def test_missing_at_transform_where_none_at_fit_is_imputed_without_indicator():
    fit = pa.table({"a": [1.0, 2.0, 4.0], "c": ["x", "y", "x"]})
    prep = TablePrep.fit(fit, min_frequency=1)
    assert prep.feature_names == ["a", "c=x", "c=y"]
    X = prep.transform(pa.table({"c": ["y", None], "a": [None, 4.0]}))
    a = prep.columns[0]
    np.testing.assert_allclose(X[:, 0], (np.array([2.0, 4.0]) - a.mean) / a.scale, rtol=1e-6)
    np.testing.assert_array_equal(X[:, 1:], [[0, 1], [0, 0]])  # `<missing>` unseen: all zero


def test_rare_and_unseen_categories_are_pooled_or_all_zero():
    fit = pa.table({"c": ["a"] * 6 + ["b"] * 5 + ["rare"] * 2, "d": ["p"] * 7 + ["q"] * 6})
    prep = TablePrep.fit(fit)  # min_frequency 5
    assert prep.feature_names == ["c=a", "c=b", f"c={INFREQUENT}", "d=p", "d=q"]
    assert prep.summary.categories_pooled == 1
    X = prep.transform(pa.table({"c": ["rare", "new", "a"], "d": ["new", "q", "p"]}))
    np.testing.assert_array_equal(X, [[0, 0, 1, 0, 0], [0, 0, 1, 0, 1], [1, 0, 0, 1, 0]])


def test_max_categories_caps_the_columns():
    values = [f"v{i:02d}" for i in range(30) for _ in range(6)]
    prep = TablePrep.fit(pa.table({"c": values}), max_categories=10)
    assert len(prep.feature_names) == 10 and prep.feature_names[-1] == f"c={INFREQUENT}"


def test_numpy_transform_equals_sklearn_transform():
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    ds = credit()
    prep = prep_of(ds)
    val = pacsv.read_csv(CREDIT_VAL, convert_options=pacsv.ConvertOptions(
        null_values=list(NULL_VALUES), strings_can_be_null=True))
    got = prep.transform(val)
    names = prep.feature_names
    train = ds.table
    for c in prep.columns:
        if c.kind == "categorical":
            def texts(t, name=c.name):
                v = t.column(name).to_pylist()
                return np.array([["<missing>" if x is None else str(x)] for x in v], dtype=object)

            enc = OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=5,
                                max_categories=100, sparse_output=False).fit(texts(train))
            ref = enc.transform(texts(val))
            cols = [names.index(f) for f in c.feature_names]
        else:
            def nums(t, name=c.name):
                return np.array(t.column(name).to_pylist(), dtype=np.float64)[:, None]

            strategy = "median" if c.kind == "numeric" else "most_frequent"
            imp = SimpleImputer(strategy=strategy, add_indicator=c.missing).fit(nums(train))
            ref = imp.transform(nums(val))
            if c.kind == "numeric":
                ref[:, :1] = StandardScaler().fit(imp.transform(nums(train))[:, :1]).transform(
                    ref[:, :1])
            cols = [names.index(f) for f in c.feature_names]
        np.testing.assert_array_equal(got[:, cols], ref.astype(np.float32), err_msg=c.name)


def test_transform_does_not_import_sklearn():
    prep = prep_of(credit())
    code = (
        "import json, sys, pyarrow as pa\n"
        "from rdia_cli.data.tables import TablePrep\n"
        f"p = TablePrep.from_json(json.loads({json.dumps(json.dumps(prep.to_json()))}))\n"
        "t = pa.table({'checking_status': ['<0 DM'], 'duration': [3], 'credit_amount': [None],\n"
        "              'purpose': ['x'], 'age': [30], 'foreign_worker': [True]})\n"
        "assert p.transform(t).shape == (1, p.n_features)\n"
        "assert 'sklearn' not in sys.modules, 'sklearn imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_json_round_trip():
    prep = prep_of(credit())
    d = json.loads(json.dumps(prep.to_json()))
    assert d["feature_names"] == prep.feature_names
    assert TablePrep.from_json(d) == prep
    with pytest.raises(InputError, match="Malformed table preprocessing"):
        TablePrep.from_json({"format": "something else"})


def test_summary():
    s = prep_of(credit()).summary
    assert s.numeric == ("duration", "credit_amount", "age")
    assert s.boolean == ("foreign_worker",)
    assert s.categorical == ("checking_status", "purpose")
    assert s.n_features == 17 and s.cells_imputed == 13 and s.categories_pooled == 1
    assert s.describe().startswith("3 numeric, 1 boolean, 2 categorical columns → 17 features")


# --------------------------------------------------------------------------------------------
# Reading a raw CSV
# --------------------------------------------------------------------------------------------
def test_credit_csv_with_id_column():
    ds = credit()
    assert ds.n_samples == 60 and ds.classes == ["no", "yes"]
    assert "customer_id" not in " ".join(ds.feature_names)
    assert "checking_status=<0 DM" in ds.feature_names
    assert "credit_amount__missing" in ds.feature_names
    assert "purpose=<infrequent>" in ds.feature_names
    assert np.isfinite(ds.X).all() and ds.X.dtype == np.float32
    # the table comes through as read: all columns, file order, IDs and blanks kept
    assert ds.table.column_names == [
        "customer_id", "checking_status", "duration", "credit_amount", "purpose", "age",
        "foreign_worker", "good_credit",
    ]
    assert ds.table.column("customer_id")[0].as_py() == "C00001"
    assert ds.table.column("credit_amount").null_count > 0
    assert ds.meta["columns"] == {"label": "good_credit", "id": "customer_id", "ignore": [],
                                  "format": "csv", "delimiter": ","}
    sub = ds.subset([3, 1])
    assert sub.table.column("customer_id").to_pylist() == ["C00004", "C00002"]


def test_validation_file_reordered_extra_columns_new_category_options_remembered():
    ds = credit()
    schema = Schema.from_json(json.loads(json.dumps(Schema.of(ds).to_json())))
    assert schema.read_options == {"label_col": "good_credit", "id_col": "customer_id",
                                   "ignore_cols": [], "categorical": []}
    va = read_dataset(str(CREDIT_VAL), ReadOptions(), schema=schema, what="validation data")
    assert va.feature_names == ds.feature_names and va.X.shape == (12, 17)
    assert va.classes == ["no", "yes"]
    assert "notes" in va.table.column_names and va.meta["columns"]["id"] == "customer_id"
    # `overdrawn` was never seen and checking_status has no pooled column: all zero
    names = ds.feature_names
    block = [j for j, n in enumerate(names) if n.startswith("checking_status=")]
    assert not va.X[5, block].any()
    # `vacation` was never seen: the pooled purpose column
    assert va.X[2, names.index("purpose=<infrequent>")] == 1
    # the same rows read as training rows give the same features
    raw = pacsv.read_csv(CREDIT_VAL, convert_options=pacsv.ConvertOptions(
        null_values=list(NULL_VALUES), strings_can_be_null=True))
    np.testing.assert_array_equal(va.X, prep_of(ds).transform(raw))


def test_missing_feature_column_at_transform(tmp_path):
    schema = Schema.of(credit())
    text = CREDIT_VAL.read_text().splitlines()
    header = text[0].split(",")
    drop = header.index("purpose")
    rows = [",".join(v for j, v in enumerate(line.split(",")) if j != drop) for line in text]
    path = write(tmp_path, "v.csv", "\n".join(rows) + "\n")
    with pytest.raises(InputError, match=r"Validation data `.*v.csv` lacks the column `purpose` "
                       "the model was trained on"):
        read_dataset(path, ReadOptions(), schema=schema, what="validation data")


def test_non_unique_id_names_it_and_both_lines(tmp_path):
    path = write(tmp_path, "d.csv", "id,a,label\nA1,1,0\nA2,2,1\n\nA1,3,0\n")
    with pytest.raises(InputError, match="has the ID `A1` twice in column `id`, on line 2 and "
                       "on line 5"):
        read_dataset(path, ReadOptions(id_col="id"))
    path = write(tmp_path, "e.csv", "id,a,label\nA1,1,0\n,2,1\n")
    with pytest.raises(InputError, match="has no ID in column `id` on line 3"):
        read_dataset(path, ReadOptions(id_col="id"))
    with pytest.raises(InputError, match="has no column `nope` \\(given in `id_col`"):
        read_dataset(path, ReadOptions(id_col="nope"))


def test_ignored_columns_are_kept_but_not_features(tmp_path):
    path = write(tmp_path, "d.csv", "a,note,label\n1,x,0\n2,y,1\n3,z,0\n")
    ds = read_dataset(path, ReadOptions(ignore_cols=("note",)))
    assert ds.feature_names == ["a"] and "prep" not in ds.meta  # numbers only: no prep
    assert ds.table.column("note").to_pylist() == ["x", "y", "z"]
    assert ds.meta["columns"]["ignore"] == ["note"]
    assert Schema.of(ds).read_options["ignore_cols"] == ["note"]


def test_identifier_like_string_column_is_an_error(tmp_path):
    n = 100_000
    ids = np.char.add("u", np.arange(n).astype(str))
    t = pa.table({"user": ids, "a": np.arange(n) % 7, "label": np.arange(n) % 2})
    path = str(tmp_path / "ids.csv")
    pacsv.write_csv(t, path)
    with pytest.raises(InputError, match=r"100,000 distinct values in column `user`.*"
                       "`--id-col user`.*`--ignore-cols user`"):
        read_dataset(path)
    ds = read_dataset(path, ReadOptions(id_col="user"))
    assert ds.feature_names == ["a"]


def test_entirely_missing_column_is_an_error(tmp_path):
    path = write(tmp_path, "d.csv", "a,b,label\n1,,0\n2,NA,1\n")
    with pytest.raises(InputError, match="no value at all in column `b`.*--ignore-cols b"):
        read_dataset(path)


def test_missing_label_names_line_and_column(tmp_path):
    path = write(tmp_path, "d.csv", "a,c,y\n1,u,yes\n2,v,NA\n")
    with pytest.raises(InputError, match="no label in column `y` on line 3"):
        read_dataset(path, ReadOptions(label_col="y"))


def test_classes_filter_fits_prep_on_kept_rows(tmp_path):
    path = write(tmp_path, "d.csv", "a,c,label\n1,u,0\n100,v,2\n3,u,1\n,u,1\n")
    ds = read_dataset(path, ReadOptions(classes=("0", "1")))
    assert ds.n_samples == 3 and ds.table.num_rows == 3
    assert prep_of(ds).columns[0].fill == 2.0  # median of 1 and 3, not of 1, 100 and 3
    np.testing.assert_array_equal(ds.row_id, [0, 2, 3])


def test_all_numeric_complete_csv_is_read_as_before():
    ds = read_dataset(str(FIXTURES / "tiny.csv"))
    raw = pacsv.read_csv(FIXTURES / "tiny.csv")
    src = Source(str(FIXTURES / "tiny.csv"), "data")
    before = dense_from_columns(src, raw, ["f_a", "f_b", "f_c"], lambda r: "")
    np.testing.assert_array_equal(ds.X, before)
    assert "prep" not in ds.meta and "table_options" not in ds.meta
    assert ds.meta["columns"] == {"label": "label", "id": None, "ignore": [], "format": "csv",
                                  "delimiter": ","}
    assert ds.table.column_names == ["f_a", "label", "f_b", "f_c"]
    assert list(Schema.of(ds).to_json()) == [
        "n_features", "classes", "feature_names", "image_shape", "sparse", "zero_based",
    ]
    tsv = read_dataset(str(FIXTURES / "tiny.tsv"))
    assert tsv.meta["columns"]["format"] == "tsv" and tsv.meta["columns"]["delimiter"] == "\t"


def test_boolean_only_table_is_not_scaled(tmp_path):
    path = write(tmp_path, "d.csv", "a,f,label\n1.5,true,0\n2,false,1\n7,true,0\n")
    ds = read_dataset(path)
    assert not prep_of(ds).scaled
    np.testing.assert_array_equal(ds.X, [[1.5, 1], [2, 0], [7, 1]])


# --------------------------------------------------------------------------------------------
# Parquet and pandas
# --------------------------------------------------------------------------------------------
def test_parquet_with_dictionary_columns_and_nulls(tmp_path):
    path = str(tmp_path / "u.parquet")
    n = 15
    t = pa.table({
        "id": [f"r{i}" for i in range(n)],
        "color": pa.array(["red", "blue", None] * 5).dictionary_encode(),
        "size": pa.array([1.0, None] + [float(i) for i in range(n - 2)]),
        "ok": pa.array([True, False, True] * 5),
        "label": ["a", "b", "a"] * 5,
    })
    pq.write_table(t, path)
    ds = read_dataset(path, ReadOptions(id_col="id"))
    assert ds.meta["columns"]["format"] == "parquet"
    assert ds.feature_names == ["color=<missing>", "color=blue", "color=red", "size",
                                "size__missing", "ok"]
    assert ds.table.column("color").type == t.column("color").type  # types as read
    np.testing.assert_array_equal(ds.X[:3, :3], np.eye(3)[[2, 1, 0]])
    va = read_dataset(path, ReadOptions(), schema=Schema.of(ds))
    np.testing.assert_array_equal(va.X, ds.X)


def test_rdia_parquet_of_a_prepped_table_reads_back_the_same(tmp_path):
    from rdia_cli.data import write_dataset

    ds = credit()
    path = str(tmp_path / "c.parquet")
    write_dataset(ds, path)
    back = read_dataset(path)
    assert back.fingerprint() == ds.fingerprint()
    assert back.feature_names == ds.feature_names


def test_from_pandas_matches_the_csv_reader():
    pd = pytest.importorskip("pandas")
    df = pd.read_csv(CREDIT)
    ds = Dataset.from_pandas(df, label="good_credit", id="customer_id")
    csv = credit()
    assert ds.feature_names == csv.feature_names
    np.testing.assert_allclose(ds.X, csv.X, rtol=1e-6, atol=1e-6)
    assert ds.classes == csv.classes and (ds.y == csv.y).all()
    va = Dataset.from_pandas(pd.read_csv(CREDIT_VAL), label="good_credit", id="customer_id",
                             prep=prep_of(ds))
    assert va.X.shape == (12, ds.n_features)
    with pytest.raises(InputError, match="no label column `label`"):
        Dataset.from_pandas(df)


def test_a_shard_of_a_table_gets_the_whole_files_prep(tmp_path):
    """torchrun reads one row range per process: every shard is encoded with the prep fitted
    on all rows, so the shards' features are the single-process features."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    n = 200
    t = pa.table({"cat": rng.choice(["a", "b", "c"], n).tolist(),
                  "x": [None if i % 7 == 0 else float(i) for i in range(n)],
                  "label": rng.choice(["yes", "no"], n).tolist()})
    pq.write_table(t, tmp_path / "t.parquet", row_group_size=50)
    full = read_dataset(str(tmp_path / "t.parquet"))
    part = read_dataset(str(tmp_path / "t.parquet"), rows=(100, 150))
    assert np.array_equal(full.X[100:150], part.X)
    assert part.meta["prep"] == full.meta["prep"]
