"""The ``rdia.*`` Parquet metadata codec (rdia_cli.artifacts.metadata) and its callers."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rdia_cli.artifacts import metadata
from rdia_cli.artifacts.scores import read_scores
from rdia_cli.data import Dataset, read_dataset, write_dataset
from rdia_cli.errors import InputError
from rdia_cli.report.run import _parquet_columns

VALUES = {
    "obj": {"a": [1, 2.5, None], "b": {"c": "d"}},
    "list": [3, "x", True, None],
    "text": "héllo",
    "int": 7,
    "float": 0.125,
    "neg": -1e-300,
    "flag": False,
    "none": None,
}


def test_round_trip():
    raw = metadata.encode(VALUES)
    assert list(raw) == [f"rdia.{k}".encode() for k in VALUES]  # order kept
    assert raw[b"rdia.int"] == b"7" and raw[b"rdia.text"] == json.dumps("héllo").encode()
    for opts in ({}, {"raw_on": json.JSONDecodeError}, {"key_errors": "replace",
                                                        "raw_on": ValueError}):
        decoded = metadata.decode(raw, **opts)
        assert decoded == VALUES
        assert list(decoded) == list(VALUES)


def test_encode_default_and_errors():
    raw = metadata.encode({"n": np.int64(3), 5: "k"}, default=lambda v: v.item())
    assert raw == {b"rdia.n": b"3", b"rdia.5": b'"k"'}
    with pytest.raises(InputError, match=r"^Metadata `bad` is not JSON-serialisable: .*\.$"):
        metadata.encode({"bad": object()})


def test_decode_skips_other_keys():
    raw = {b"pandas": b"{}", b"rdia.x": b"1", b"ARROW:schema": b"\x00"}
    assert metadata.decode(raw) == {"x": 1}
    assert metadata.decode(None) == {} and metadata.decode({}) == {}


def test_decode_damaged_values():
    raw = {b"rdia.note": b"not json", b"rdia.x": b"3"}
    with pytest.raises(json.JSONDecodeError):
        metadata.decode(raw)
    assert metadata.decode(raw, raw_on=json.JSONDecodeError) == {"note": "not json", "x": 3}
    assert metadata.decode(raw, raw_on=ValueError) == {"note": "not json", "x": 3}
    # bytes that are not text: only ValueError (which UnicodeDecodeError is) keeps them
    bad = {b"rdia.note": b"\xff"}
    with pytest.raises(UnicodeDecodeError):
        metadata.decode(bad, raw_on=json.JSONDecodeError)
    assert metadata.decode(bad, raw_on=ValueError) == {"note": "\ufffd"}


def test_decode_keys_that_are_not_utf8():
    raw = {b"\xffother": b"1", b"rdia.\xff": b"2"}
    with pytest.raises(UnicodeDecodeError):
        metadata.decode(raw)
    assert metadata.decode(raw, key_errors="replace") == {"\ufffd": 2}


def _dataset() -> Dataset:
    return Dataset(X=np.arange(12, dtype=np.float32).reshape(4, 3), y=np.array([0, 1, 1, 0]),
                   classes=[3, 5], row_id=np.arange(4))


def test_written_file_decodes_to_what_was_written(tmp_path):
    path = tmp_path / "d.parquet"
    extra = {"stage": "test", "settings": {"alpha": 0.5, "ks": [1, 2]}, "note": "x"}
    write_dataset(_dataset(), str(path), meta=extra)
    raw = pq.read_schema(path).metadata
    by_hand = {k.decode()[5:]: json.loads(v) for k, v in raw.items() if k.startswith(b"rdia.")}
    assert metadata.decode(raw) == by_hand
    meta = metadata.decode(raw)
    assert {k: meta[k] for k in extra} == extra
    assert meta["classes"] == [3, 5] and meta["n_features"] == 3
    assert {k: read_dataset(str(path)).meta[k] for k in extra} == extra
    assert _parquet_columns(path, ("row_id",))[1] == meta


def _scores_file(path, md):
    t = pa.table({"row_id": pa.array([0, 1], pa.int64()), "label": [0, 1], "phi": [0.1, -0.2],
                  "delta_remove": [0.0, 0.0], "delta_relabel": [0.0, 0.0],
                  "p_label": [0.5, 0.6], "loss": [0.1, 0.2],
                  "probs": pa.array([[0.5, 0.5], [0.4, 0.6]])})
    pq.write_table(t.replace_schema_metadata(md), path)


def test_every_caller_uses_the_codec(tmp_path, monkeypatch):
    calls = []
    real_encode, real_decode = metadata.encode, metadata.decode

    def encode(meta, **kw):
        calls.append(("encode", kw.get("default") is not None))
        return real_encode(meta, **kw)

    def decode(raw, **kw):
        calls.append(("decode", kw))
        return real_decode(raw, **kw)

    monkeypatch.setattr(metadata, "encode", encode)
    monkeypatch.setattr(metadata, "decode", decode)
    data = tmp_path / "d.parquet"
    write_dataset(_dataset(), str(data))
    assert calls == [("encode", True)]
    calls.clear()
    read_dataset(str(data))  # lenient: damaged keys and values are read as text
    assert calls == [("decode", {"key_errors": "replace", "raw_on": ValueError})]
    calls.clear()
    _parquet_columns(data, ("row_id",))  # the report: text that is not JSON is kept as text
    assert calls == [("decode", {"raw_on": json.JSONDecodeError})]
    calls.clear()
    scores = tmp_path / "s.parquet"
    _scores_file(scores, metadata.encode({"kind": "scores", "classes": [0, 1]}))
    calls.clear()
    assert read_scores(scores).meta == {"kind": "scores", "classes": [0, 1]}
    assert calls == [("decode", {})]  # strict: a damaged scores file raises


def test_callers_keep_their_strictness(tmp_path):
    data = tmp_path / "d.parquet"
    t = pa.table({"label": [0, 1], "a": [0.5, 1.0]})
    pq.write_table(t.replace_schema_metadata({b"rdia.note": b"not json", b"rdia.x": b"3"}), data)
    meta = read_dataset(str(data)).meta
    meta.pop("columns")  # a user's table: where its label/ID columns are
    assert meta == {"note": "not json", "x": 3}
    assert _parquet_columns(data, ("a",))[1] == {"note": "not json", "x": 3}
    scores = tmp_path / "s.parquet"
    _scores_file(scores, {b"rdia.kind": b'"scores"', b"rdia.classes": b"[0, 1]",
                          b"rdia.note": b"not json"})
    with pytest.raises(InputError, match="`rdia.note` is not JSON"):  # strict, one clear line
        read_scores(scores)
