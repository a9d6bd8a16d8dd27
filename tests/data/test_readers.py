"""Readers: LIBSVM, CSV/TSV, Parquet, IDX, CIFAR; label maps; schema alignment; errors."""

from __future__ import annotations

import bz2
import gzip
import json
import struct
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp

from rdia_cli.data import ReadOptions, Schema, read_dataset
from rdia_cli.errors import InputError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"

TINY_DENSE = np.array(
    [
        [0.5, 0, 1, 0, -2],
        [0, 1.5, 0, 0.25, 0],
        [1, 1, 1, 0, 0],
        [0, 0, 0.75, 0, 0],
        [0, 0, 0, -1, 0],
        [2, 0.5, 0, 0, 0],
    ],
    dtype=np.float32,
)


def write(tmp_path: Path, name: str, text: str | bytes) -> str:
    p = tmp_path / name
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return str(p)


def read(path, **kw) -> object:
    schema = kw.pop("schema", None)
    what = kw.pop("what", "data")
    return read_dataset(str(path), ReadOptions(**kw), schema=schema, what=what)


# --------------------------------------------------------------------------------------------
# LIBSVM
# --------------------------------------------------------------------------------------------
def test_libsvm_tiny_round_trip():
    ds = read(FIXTURES / "tiny.svm")
    assert sp.isspmatrix_csr(ds.X)
    assert ds.X.dtype == np.float32
    assert ds.X.indices.dtype == np.int32 and ds.X.indptr.dtype == np.int32
    assert ds.X.shape == (6, 5)
    np.testing.assert_array_equal(ds.X.toarray(), TINY_DENSE)
    assert ds.classes == [-1, 1]
    np.testing.assert_array_equal(ds.y, [1, 0, 1, 0, 1, 0])
    np.testing.assert_array_equal(ds.row_id, np.arange(6))
    assert ds.meta["zero_based"] is False
    assert ds.feature_names is None
    assert ds.source == str(FIXTURES / "tiny.svm")


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz"])
def test_libsvm_compressed(suffix):
    plain = read(FIXTURES / "tiny.svm")
    packed = read(FIXTURES / f"tiny.svm{suffix}")
    assert packed.fingerprint() == plain.fingerprint()


def test_libsvm_compression_detected_by_content_not_name(tmp_path):
    path = write(tmp_path, "data.txt", gzip.compress((FIXTURES / "tiny.svm").read_bytes()))
    assert read(path).fingerprint() == read(FIXTURES / "tiny.svm").fingerprint()


def test_libsvm_zero_based_detected():
    ds = read(FIXTURES / "tiny_zero.svm")
    assert ds.X.shape == (6, 4)
    assert ds.meta["zero_based"] is True
    assert ds.X[0, 0] == 1.0 and ds.X[0, 2] == 0.5
    assert ds.classes == [1, 2, 3]


def test_libsvm_force_zero_based_keeps_column_zero_empty():
    ds = read(FIXTURES / "tiny.svm", zero_based=True)
    assert ds.X.shape == (6, 6)
    assert ds.X[:, 0].nnz == 0
    np.testing.assert_array_equal(ds.X.toarray()[:, 1:], TINY_DENSE)


def test_libsvm_force_one_based_rejects_index_zero():
    with pytest.raises(InputError, match=r"feature index 0 on line 1.*zero_based"):
        read(FIXTURES / "tiny_zero.svm", zero_based=False)


def test_libsvm_n_features_fixes_width():
    assert read(FIXTURES / "tiny.svm", n_features=9).X.shape == (6, 9)
    with pytest.raises(InputError, match=r"feature index 5 on line 2, beyond `n_features` = 3"):
        read(FIXTURES / "tiny.svm", n_features=3)


@pytest.mark.parametrize(
    ("labels", "classes", "y"),
    [
        (["-1", "+1", "-1"], [-1, 1], [0, 1, 0]),
        (["2", "4", "4"], [2, 4], [0, 1, 1]),
        (["1", "3", "2"], [1, 2, 3], [0, 2, 1]),
        (["0", "2", "1"], [0, 1, 2], [0, 2, 1]),
        (["-1.0", "1.0", "1.0"], [-1, 1], [0, 1, 1]),
        (["0.5", "1.5", "0.5"], [0.5, 1.5], [0, 1, 0]),
        (["7", "7", "7"], [7], [0, 0, 0]),
    ],
)
def test_libsvm_label_mapping(tmp_path, labels, classes, y):
    path = write(tmp_path, "l.svm", "".join(f"{lab} 1:1\n" for lab in labels))
    ds = read(path)
    assert ds.classes == classes
    assert all(type(c) is type(classes[0]) for c in ds.classes)
    np.testing.assert_array_equal(ds.y, y)


def test_libsvm_classes_filter_keeps_row_id():
    ds = read(FIXTURES / "tiny_zero.svm", classes=("3", "1"))
    assert ds.classes == [1, 3]
    np.testing.assert_array_equal(ds.row_id, [0, 2, 3, 5])
    np.testing.assert_array_equal(ds.y, [0, 1, 0, 1])
    assert ds.X.shape == (4, 4)


def test_classes_filter_compares_numerically(tmp_path):
    path = write(tmp_path, "f.svm", "-1.0 1:1\n1.0 1:2\n2.0 1:3\n")
    ds = read(path, classes=("-1", "1"))
    assert ds.classes == [-1, 1]
    np.testing.assert_array_equal(ds.row_id, [0, 1])


def test_classes_filter_errors():
    with pytest.raises(InputError, match=r"no rows with label 8 \(labels found: \[1, 2, 3\]\)"):
        read(FIXTURES / "tiny_zero.svm", classes=("1", "8"))
    with pytest.raises(InputError, match="`classes` value `cat` is not a number"):
        read(FIXTURES / "tiny_zero.svm", classes=("cat",))


@pytest.mark.parametrize(
    ("text", "line", "expect"),
    [
        ("1 1:2\nabc 1:2\n", 2, "numeric label first, got `abc`"),
        ("1 1:2\n\n# note\n1 x:2\n", 4, "integer feature index in `x:2`"),
        ("1 1:2\n-1 3:2 1:2\n", 2, "increasing and unique, got 1 after 3"),
        ("1 1:2\n1 2:1 2:2\n", 2, "increasing and unique, got 2 after 2"),
        ("1 1:2\n1 1:2:3\n", 2, "numeric value in `1:2:3`"),
        ("1 1:2\n1 1:2\n-1 4\n", 3, "`index:value` pairs after the label, got `4`"),
        ("1 1:oops\n", 1, "numeric value in `1:oops`"),
        ("1 -3:1\n", 1, "negative feature index"),
    ],
)
def test_libsvm_malformed_line(tmp_path, text, line, expect):
    path = write(tmp_path, "bad.svm", text)
    with pytest.raises(InputError) as exc:
        read(path, what="training data")
    msg = str(exc.value)
    assert msg.startswith(f"Training data `{path}`")
    assert f"malformed line {line}:" in msg
    assert expect in msg


def test_binary_data_without_nul_bytes_is_named_as_binary(tmp_path):
    # random bytes (no NUL in the first 4 KiB) read as LIBSVM: named, never printed raw
    data = np.random.default_rng(0).integers(1, 256, 600, dtype=np.uint8).tobytes()
    with pytest.raises(InputError, match="holds binary data, not LIBSVM/SVMlight text"):
        read(write(tmp_path, "random.bin", data), format="libsvm", what="training data")


def test_a_malformed_token_is_escaped_and_cut(tmp_path):
    path = write(tmp_path, "bad.svm", b"1 1:2\n1 1:\x1b[31m" + b"9" * 100 + b"\n")
    with pytest.raises(InputError) as exc:
        read(path, what="training data")
    msg = str(exc.value)
    assert "malformed line 2: expected a numeric value in `1:\\x1b[31m999" in msg
    assert msg.isprintable() and "9" * 41 not in msg


def test_libsvm_nan_and_inf_name_line_and_feature(tmp_path):
    path = write(tmp_path, "nan.svm", "# header\n1 1:2\n\n-1 2:1 5:nan\n")
    with pytest.raises(InputError, match=r"NaN or infinity\) on line 4, feature index 5"):
        read(path)
    path = write(tmp_path, "inf.svm", "1 0:2\n-1 0:1 3:-inf\n")
    with pytest.raises(InputError, match=r"on line 2, feature index 3"):
        read(path)


def test_libsvm_only_comments_is_an_error(tmp_path):
    path = write(tmp_path, "c.svm", "# nothing here\n\n")
    with pytest.raises(InputError, match="has no data rows"):
        read(path)


def test_libsvm_truncated_gzip(tmp_path):
    blob = gzip.compress((FIXTURES / "tiny.svm").read_bytes() * 50)
    path = write(tmp_path, "t.svm.gz", blob[: len(blob) // 2])
    with pytest.raises(InputError, match="truncated or corrupt"):
        read(path)


# --------------------------------------------------------------------------------------------
# CSV / TSV
# --------------------------------------------------------------------------------------------
def test_csv_tiny():
    ds = read(FIXTURES / "tiny.csv")
    assert ds.feature_names == ["f_a", "f_b", "f_c"]
    assert ds.classes == ["bird", "cat", "dog"]
    np.testing.assert_array_equal(ds.y, [1, 2, 1, 0, 2, 0])
    assert ds.X.dtype == np.float32 and ds.X.shape == (6, 3)
    np.testing.assert_array_equal(ds.X[1], [1.5, 0, 0.25])
    np.testing.assert_array_equal(ds.row_id, np.arange(6))


def test_tsv_numeric_labels_2_4():
    ds = read(FIXTURES / "tiny.tsv")
    assert ds.classes == [2, 4]
    np.testing.assert_array_equal(ds.y, [0, 1, 0, 0, 1, 0])
    assert ds.X.shape == (6, 3)


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress])
def test_csv_compressed(tmp_path, compress):
    raw = (FIXTURES / "tiny.csv").read_bytes()
    path = write(tmp_path, "t.csv.gz", compress(raw))
    assert read(path).fingerprint() == read(FIXTURES / "tiny.csv").fingerprint()


def test_csv_label_col_and_classes_filter(tmp_path):
    path = write(tmp_path, "t.csv", "a,target\n1,5\n2,6\n3,7\n4,5\n")
    ds = read(path, label_col="target", classes=("5", "7"))
    assert ds.classes == [5, 7]
    np.testing.assert_array_equal(ds.row_id, [0, 2, 3])
    np.testing.assert_array_equal(ds.X[:, 0], [1, 3, 4])


def test_csv_string_classes_filter():
    ds = read(FIXTURES / "tiny.csv", classes=("dog", "cat"))
    assert ds.classes == ["cat", "dog"]
    np.testing.assert_array_equal(ds.row_id, [0, 1, 2, 4])


def test_csv_non_numeric_value_names_line_and_column(tmp_path):
    path = write(tmp_path, "t.csv", "a,b,label\n1,2,0\n3,4,1\n5,oops,1\n")
    with pytest.raises(InputError) as exc:
        read(path, what="validation data")
    msg = str(exc.value)
    assert msg.startswith(f"Validation data `{path}`")
    assert "non-numeric value `oops` in column `b` on line 4" in msg


def test_csv_line_numbers_count_blank_lines(tmp_path):
    path = write(tmp_path, "t.csv", "a,b,label\n1,2,0\n\n3,x,1\n")
    with pytest.raises(InputError, match="column `b` on line 4"):
        read(path)


def test_csv_missing_label_column_lists_columns(tmp_path):
    path = write(tmp_path, "t.csv", "a,b,y\n1,2,0\n")
    with pytest.raises(
        InputError, match=r"no label column `label` \(columns found: \['a', 'b', 'y'\]"
    ):
        read(path)


def test_csv_missing_and_nonfinite_values(tmp_path):
    # a missing cell is imputed since issue #26 (tests/data/test_tables.py); infinity is not
    path = write(tmp_path, "t.csv", "a,b,label\n1,2,0\n3,,1\n")
    assert read(path).feature_names == ["a", "b", "b__missing"]
    path = write(tmp_path, "v.csv", "a,b,label\n1,2,0\n3,,1\n4,inf,0\n")
    with pytest.raises(InputError, match=r"non-finite value \(NaN or infinity\) on line 4, "
                       "column `b`"):
        read(path)
    path = write(tmp_path, "u.csv", "a,b,label\n1,2,0\n3,4,1\ninf,1,0\n")
    with pytest.raises(
        InputError, match=r"non-finite value \(NaN or infinity\) on line 4, column `a`"
    ):
        read(path)


def test_csv_wrong_field_count(tmp_path):
    path = write(tmp_path, "t.csv", "a,b,label\n1,2,0\n3,1\n")
    with pytest.raises(InputError, match="has 2 fields on line 3, but its header has 3"):
        read(path)


def test_csv_missing_label_value(tmp_path):
    path = write(tmp_path, "t.csv", "a,label\n1,x\n2,\n")
    with pytest.raises(InputError, match="no label in column `label` on line 3"):
        read(path)


def test_csv_header_only(tmp_path):
    path = write(tmp_path, "t.csv", "a,label\n")
    with pytest.raises(InputError, match="has no data rows"):
        read(path)


# --------------------------------------------------------------------------------------------
# Parquet written by someone else (rdia's own files are tested in test_data_writers.py)
# --------------------------------------------------------------------------------------------
def test_parquet_dense_user_file(tmp_path):
    path = str(tmp_path / "u.parquet")
    table = pa.table({"x1": [1.0, 2.0, 3.0], "x2": [0, 1, 0], "label": ["b", "a", "b"]})
    pq.write_table(table, path)
    ds = read(path)
    assert ds.feature_names == ["x1", "x2"]
    assert ds.classes == ["a", "b"]
    np.testing.assert_array_equal(ds.y, [1, 0, 1])
    np.testing.assert_array_equal(ds.X, [[1, 0], [2, 1], [3, 0]])


def test_parquet_sparse_with_extras(tmp_path):
    path = str(tmp_path / "s.parquet")
    t = pa.table(
        {
            "row_id": pa.array([10, 11, 12], pa.int64()),
            "label": [1, -1, 1],
            "indices": pa.array([[0, 3], [], [1]], pa.list_(pa.int32())),
            "values": pa.array([[1.0, 2.0], [], [0.5]], pa.list_(pa.float32())),
            "weight": [1.0, 0.5, 2.0],
            "is_noisy": [True, False, False],
        }
    )
    t = t.replace_schema_metadata({b"rdia.n_features": b"6", b"rdia.note": b'"hi"'})
    pq.write_table(t, path)
    ds = read(path)
    assert ds.X.shape == (3, 6) and sp.isspmatrix_csr(ds.X)
    np.testing.assert_array_equal(ds.X.toarray()[0], [1, 0, 0, 2, 0, 0])
    np.testing.assert_array_equal(ds.row_id, [10, 11, 12])
    np.testing.assert_array_equal(ds.weight, [1.0, 0.5, 2.0])
    np.testing.assert_array_equal(ds.extra["is_noisy"], [True, False, False])
    assert ds.meta == {"n_features": 6, "note": "hi"}
    assert ds.classes == [-1, 1]


def test_parquet_rdia_classes_order_used_when_a_class_is_absent(tmp_path):
    path = str(tmp_path / "c.parquet")
    t = pa.table({"f0": [1.0, 2.0], "label": [7, 7]})
    pq.write_table(t.replace_schema_metadata({b"rdia.classes": b"[1, 7]"}), path)
    ds = read(path)
    assert ds.classes == [1, 7]
    np.testing.assert_array_equal(ds.y, [1, 1])


def test_parquet_images_need_shape_metadata(tmp_path):
    path = str(tmp_path / "i.parquet")
    t = pa.table(
        {"pixels": pa.array([[0.0] * 4, [1.0] * 4], pa.list_(pa.float32())), "label": [0, 1]}
    )
    pq.write_table(t, path)
    with pytest.raises(InputError, match="rdia.image_shape"):
        read(path)
    pq.write_table(t.replace_schema_metadata({b"rdia.image_shape": b"[1, 2, 2]"}), path)
    ds = read(path)
    assert ds.X.shape == (2, 1, 2, 2) and ds.image_shape == (1, 2, 2)


def test_parquet_nan_names_row_and_column(tmp_path):
    path = str(tmp_path / "n.parquet")
    pq.write_table(pa.table({"a": [1.0, 2.0], "b": [0.0, float("nan")], "label": [0, 1]}), path)
    with pytest.raises(InputError, match="in row 2, column `b`"):
        read(path)


def test_parquet_missing_label_column(tmp_path):
    path = str(tmp_path / "n.parquet")
    pq.write_table(pa.table({"a": [1.0], "y": [0]}), path)
    with pytest.raises(InputError, match=r"no label column `label` \(columns found: \['a', 'y'\]"):
        read(path)


def test_parquet_corrupt(tmp_path):
    path = write(tmp_path, "bad.parquet", b"PAR1 not really")
    with pytest.raises(InputError, match="not a valid Parquet file"):
        read(path)


# --------------------------------------------------------------------------------------------
# IDX and CIFAR
# --------------------------------------------------------------------------------------------
IDX_IMAGES = FIXTURES / "tiny-images-idx3-ubyte.gz"
IDX_LABELS = FIXTURES / "tiny-labels-idx1-ubyte.gz"


def test_idx_images_and_labels():
    ds = read(IDX_IMAGES, labels=str(IDX_LABELS))
    assert ds.X.shape == (12, 1, 6, 6) and ds.X.dtype == np.float32
    assert ds.image_shape == (1, 6, 6)
    assert ds.X.max() == 1.0 and ds.X.min() == 0.0
    assert ds.X[1, 0, 1, 1] == pytest.approx((255 - 10) / 255)
    assert ds.classes == [0, 1, 2, 3]
    np.testing.assert_array_equal(ds.y, [0, 1, 2, 3] * 3)


def test_idx_classes_filter():
    ds = read(IDX_IMAGES, labels=str(IDX_LABELS), classes=("1", "3"))
    assert ds.classes == [1, 3]
    np.testing.assert_array_equal(ds.row_id, [1, 3, 5, 7, 9, 11])


def test_idx_errors(tmp_path):
    with pytest.raises(InputError, match="holds no labels; pass the matching IDX label file"):
        read(IDX_IMAGES)
    with pytest.raises(InputError, match="is an IDX label file"):
        read(IDX_LABELS)
    short = write(
        tmp_path, "short-labels-idx1", b"\x00\x00\x08\x01" + struct.pack(">I", 3) + b"\x00\x01\x02"
    )
    with pytest.raises(InputError, match="has 3 labels, but the image file has 12 images"):
        read(IDX_IMAGES, labels=short)
    with pytest.raises(InputError, match="Label file `nope.gz`.*does not exist"):
        read(IDX_IMAGES, labels="nope.gz")
    trunc = write(
        tmp_path,
        "trunc-idx3-ubyte",
        gzip.decompress(IDX_IMAGES.read_bytes())[:-5],
    )
    with pytest.raises(InputError, match="truncated or corrupt"):
        read(trunc, labels=str(IDX_LABELS))


def test_labels_option_only_for_idx():
    with pytest.raises(InputError, match="only for IDX"):
        read(FIXTURES / "tiny.svm", labels=str(IDX_LABELS))


def test_cifar_binary():
    ds = read(FIXTURES / "tiny_cifar.bin.gz")
    assert ds.X.shape == (6, 3, 32, 32) and ds.X.dtype == np.float32
    assert ds.classes == list(range(10))
    np.testing.assert_array_equal(ds.y, [3, 5, 3, 5, 0, 9])
    # pixel (c=1, h=2, w=3) of record 1: (yy * 2 + xx * 1) % 256 / 255
    assert ds.X[1, 1, 2, 3] == pytest.approx((2 * 2 + 3) / 255)
    cats_dogs = read(FIXTURES / "tiny_cifar.bin.gz", classes=("3", "5"))
    assert cats_dogs.classes == [3, 5]
    np.testing.assert_array_equal(cats_dogs.row_id, [0, 1, 2, 3])
    np.testing.assert_array_equal(cats_dogs.y, [0, 1, 0, 1])


def test_cifar_wrong_size(tmp_path):
    path = write(tmp_path, "x.bin", b"\x01" * 3000)
    with pytest.raises(InputError, match="not a whole number of 3073-byte CIFAR-10 records"):
        read(path)


# --------------------------------------------------------------------------------------------
# Common checks and format detection
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["x.svm", "x.csv", "x.parquet", "x-idx3-ubyte", "x.bin"])
def test_missing_and_empty_files(tmp_path, name):
    with pytest.raises(InputError, match=r"Test data `.*` does not exist"):
        read(tmp_path / name, what="test data")
    path = write(tmp_path, name, b"")
    with pytest.raises(InputError, match=r"Test data `.*` is empty"):
        read(path, what="test data")


def test_folder_is_not_a_file(tmp_path):
    with pytest.raises(InputError, match="is a folder"):
        read(tmp_path)


def test_unknown_format_option():
    with pytest.raises(InputError, match="Unknown input format `json`"):
        ReadOptions(format="json")


def test_explicit_format_overrides_name(tmp_path):
    path = write(tmp_path, "data.txt", (FIXTURES / "tiny.csv").read_bytes())
    assert read(path, format="csv").feature_names == ["f_a", "f_b", "f_c"]


def test_idx_detected_by_magic_bytes(tmp_path):
    path = write(tmp_path, "images.gz", IDX_IMAGES.read_bytes())
    assert read(path, labels=str(IDX_LABELS)).X.shape == (12, 1, 6, 6)


# --------------------------------------------------------------------------------------------
# Reading against a model's schema
# --------------------------------------------------------------------------------------------
def sparse_schema(**kw) -> Schema:
    base = {"n_features": 5, "classes": [-1, 1], "sparse": True}
    base.update(kw)
    return Schema(**base)


def test_schema_pads_narrower_sparse(tmp_path):
    path = write(tmp_path, "t.svm", "1 1:1\n-1 3:2\n")
    ds = read(path, schema=sparse_schema(), what="test data")
    assert ds.X.shape == (2, 5)
    assert ds.classes == [-1, 1]


def test_schema_rejects_wider(tmp_path):
    path = write(tmp_path, "t.svm", "1 1:1\n-1 7:2\n")
    with pytest.raises(InputError, match="has 7 features but the model was trained on 5"):
        read(path, schema=sparse_schema(), what="test data")


def test_schema_unseen_label(tmp_path):
    path = write(tmp_path, "t.svm", "1 1:1\n2 3:2\n3 1:1\n")
    with pytest.raises(InputError) as exc:
        read(path, schema=sparse_schema(), what="test data")
    msg = str(exc.value)
    assert msg.startswith(f"Test data `{path}` has label values [2, 3] the model never saw")
    assert "(model classes: [-1, 1])" in msg


def test_schema_class_order_wins(tmp_path):
    path = write(tmp_path, "t.svm", "1 1:1\n1 3:2\n")  # only class 1 present
    ds = read(path, schema=sparse_schema())
    assert ds.classes == [-1, 1]
    np.testing.assert_array_equal(ds.y, [1, 1])


def test_schema_zero_based_carried_to_test_file(tmp_path):
    train = read(FIXTURES / "tiny_zero.svm")
    schema = Schema.of(train)
    assert schema.zero_based is True
    # no index 0 here: auto-detection alone would read it as one-based and shift every feature
    path = write(tmp_path, "t.svm", "1 1:1\n2 3:2\n")
    ds = read(path, schema=schema)
    assert ds.X[0, 1] == 1.0 and ds.X[1, 3] == 2.0


def test_schema_dense_reorders_and_rejects_columns(tmp_path):
    train = read(FIXTURES / "tiny.csv")
    schema = Schema.of(train)
    path = write(tmp_path, "r.csv", "f_c,f_b,label,f_a\n3,2,dog,1\n")
    ds = read(path, schema=schema)
    assert ds.feature_names == ["f_a", "f_b", "f_c"]
    np.testing.assert_array_equal(ds.X, [[1, 2, 3]])
    assert ds.classes == ["bird", "cat", "dog"] and ds.y.tolist() == [2]
    path = write(tmp_path, "m.csv", "f_a,f_b,f_d,label\n1,2,3,cat\n")
    with pytest.raises(
        InputError, match=r"lacks the model's columns \['f_c'\].*never saw \['f_d'\]"
    ):
        read(path, schema=schema)


def test_schema_string_vs_numeric_labels(tmp_path):
    schema = Schema(n_features=1, classes=["1", "7"], feature_names=["a"])
    path = write(tmp_path, "t.csv", "a,label\n0,7\n1,1\n")
    ds = read(path, schema=schema)
    assert ds.classes == ["1", "7"]
    np.testing.assert_array_equal(ds.y, [1, 0])


def test_schema_sparse_file_against_dense_model(tmp_path):
    schema = Schema(n_features=5, classes=[-1, 1], feature_names=list("abcde"))
    ds = read(FIXTURES / "tiny.svm", schema=schema)
    assert isinstance(ds.X, np.ndarray)
    np.testing.assert_array_equal(ds.X, TINY_DENSE)
    assert ds.feature_names == list("abcde")


def test_schema_dense_file_against_sparse_model(tmp_path):
    schema = Schema(n_features=3, classes=["bird", "cat", "dog"], sparse=True)
    ds = read(FIXTURES / "tiny.csv", schema=schema)
    assert sp.isspmatrix_csr(ds.X) and ds.X.shape == (6, 3)
    assert ds.feature_names is None
    schema = Schema(n_features=4, classes=["bird", "cat", "dog"], sparse=True)
    with pytest.raises(InputError, match="has 3 features but the model was trained on 4"):
        read(FIXTURES / "tiny.csv", schema=schema)


def test_schema_sparse_to_dense_too_large(monkeypatch):
    import rdia_cli.data.readers as readers

    monkeypatch.setattr(readers, "MAX_DENSE_ELEMENTS", 10)
    schema = Schema(n_features=5, classes=[-1, 1])
    with pytest.raises(InputError, match="too many to convert"):
        read(FIXTURES / "tiny.svm", schema=schema)


def test_schema_image_shape():
    good = Schema(n_features=36, classes=[0, 1, 2, 3], image_shape=(1, 6, 6))
    assert read(IDX_IMAGES, labels=str(IDX_LABELS), schema=good).image_shape == (1, 6, 6)
    bad = Schema(n_features=784, classes=[0, 1, 2, 3], image_shape=(1, 28, 28))
    with pytest.raises(InputError, match=r"images of shape \(1, 6, 6\).*\(1, 28, 28\)"):
        read(IDX_IMAGES, labels=str(IDX_LABELS), schema=bad)
    with pytest.raises(InputError, match="trained on images"):
        read(
            FIXTURES / "tiny.svm",
            schema=Schema(n_features=5, classes=[-1, 1], image_shape=(1, 1, 5)),
        )


def test_schema_json_round_trip():
    for schema in [
        Schema.of(read(FIXTURES / "tiny.csv")),
        Schema.of(read(FIXTURES / "tiny.svm")),
        Schema.of(read(IDX_IMAGES, labels=str(IDX_LABELS))),
    ]:
        d = json.loads(json.dumps(schema.to_json()))
        assert Schema.from_json(d) == schema
    with pytest.raises(InputError, match="Malformed data schema"):
        Schema.from_json({"classes": [0, 1]})


# --------------------------------------------------------------------------------------------
# Real data (../shared/data)
# --------------------------------------------------------------------------------------------
@pytest.mark.shared_data
def test_shared_a9a_and_mnist():
    a9a, a9a_t = SHARED / "libsvm" / "a9a", SHARED / "libsvm" / "a9a.t"
    images = SHARED / "mnist" / "t10k-images-idx3-ubyte.gz"
    labels = SHARED / "mnist" / "t10k-labels-idx1-ubyte.gz"
    if not all(p.exists() for p in (a9a, a9a_t, images, labels)):
        pytest.skip("../shared/data is not present")
    train = read(a9a, what="training data")
    assert train.X.shape == (32561, 123)
    assert train.classes == [-1, 1]
    assert np.bincount(train.y).tolist() == [24720, 7841]
    test = read(a9a_t, schema=Schema.of(train), what="test data")
    assert test.X.shape == (16281, 123)  # a9a.t never uses feature 123: padded
    assert np.bincount(test.y).tolist() == [12435, 3846]
    mnist = read(images, labels=str(labels), classes=("1", "7"))
    assert mnist.X.shape == (1135 + 1028, 1, 28, 28)
    assert mnist.classes == [1, 7]
    assert np.bincount(mnist.y).tolist() == [1135, 1028]


def test_parquet_weight_column_of_a_user_table_is_a_feature(tmp_path):
    """Only rdia's own files (``rdia.format_version``) and sparse files carry sample weights in
    `weight`; in a user's table it is a feature, as in CSV (#28)."""
    path = str(tmp_path / "w.parquet")
    pq.write_table(pa.table({"a": [0.1, 0.2], "weight": [1.0, -2.0], "label": [0, 1]}), path)
    ds = read(path)
    assert ds.weight is None and ds.feature_names == ["a", "weight"]
