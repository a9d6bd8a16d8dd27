"""LIBSVM/SVMlight text (also gzip/bz2/xz): a fast Arrow-based parser, a line-by-line parser
with scikit-learn's rules for everything else (comments, qid, malformed lines), and error
messages that name the bad line. scikit-learn is not imported (it costs seconds at start-up)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from rdia_cli.data.formats.common import (
    DECOMPRESS_ERRORS,
    FLOAT32_OVERFLOW,
    Parsed,
    ReadOptions,
    Schema,
    Source,
    arrow_of,
    beyond_float32,
    csv_input,
    encode_labels,
    first_beyond_float32,
    looks_binary,
    numpy_of,
    open_input,
    peek,
    refuse_compressed_binary,
)


def _libsvm_lines(src: Source) -> Iterator[tuple[int, list[bytes]]]:
    """(1-based line number, tokens) of every data line, as scikit-learn's parser splits them."""
    with open_input(src.path) as f:
        for lineno, line in enumerate(f, start=1):
            hash_at = line.find(b"#")
            if hash_at >= 0:
                line = line[:hash_at]
            parts = line.split()
            if parts:
                yield lineno, parts


def _libsvm_where(src: Source) -> Callable[[int], str]:
    def where(row: int) -> str:
        for k, (lineno, _) in enumerate(_libsvm_lines(src)):
            if k == row:
                return f"on line {lineno}"
        return f"in data row {row + 1}"

    return where


def _shown(token: bytes, limit: int = 40) -> str:
    """A token of a bad line as an error message shows it, in backticks: printable text as is,
    anything else escaped, long tokens cut."""
    text = token.decode(errors="replace")
    if not text.isprintable():
        text = ascii(token)[2:-1]
    return f"`{text[:limit]}…`" if len(text) > limit else f"`{text}`"


def _libsvm_find_error(src: Source) -> str | None:
    """Scan the file in Python (error path only) for the first line the parser rejects: what
    follows the file's name in the message (a malformed line's ends with the format's hint)."""
    try:
        for lineno, parts in _libsvm_lines(src):
            label, feats = parts[0], parts[1:]
            try:
                float(label)
            except ValueError:
                return (
                    f"has a malformed line {lineno}: expected a numeric label first, got "
                    f"{_shown(label)}{_HINT}"
                )
            if feats and feats[0].startswith(b"qid:"):
                try:
                    int(feats[0][4:])
                except ValueError:
                    return (
                        f"has a malformed line {lineno}: expected `qid:<integer>`, got "
                        f"{_shown(feats[0])}{_HINT}"
                    )
                feats = feats[1:]
            prev = -1
            for tok in feats:
                idx_s, colon, val_s = tok.partition(b":")
                if not colon:
                    return (
                        f"has a malformed line {lineno}: expected `index:value` pairs after "
                        f"the label, got {_shown(tok)}{_HINT}"
                    )
                try:
                    idx = int(idx_s)
                except ValueError:
                    return (
                        f"has a malformed line {lineno}: expected an integer feature index in "
                        f"{_shown(tok)}{_HINT}"
                    )
                try:
                    value = float(val_s)
                except ValueError:
                    return (f"has a malformed line {lineno}: expected a numeric value in "
                            f"{_shown(tok)}{_HINT}")
                if idx < 0:
                    return (f"has a malformed line {lineno}: negative feature index in "
                            f"{_shown(tok)}{_HINT}")
                if idx >= 2**31:
                    return (f"has feature index {idx} on line {lineno}; rdia handles indices "
                            f"below {2**31:,}{_HINT}")
                if idx <= prev:
                    return (
                        f"has a malformed line {lineno}: feature indices must be increasing "
                        f"and unique, got {idx} after {prev}{_HINT}"
                    )
                if _beyond_float32(value):
                    return beyond_float32(val_s.decode(), f"on line {lineno}",
                                          f"feature index {idx}")
                prev = idx
    except DECOMPRESS_ERRORS as e:
        return f"could not be decompressed ({e}); the file is truncated or corrupt."
    return None


_HINT = "; LIBSVM lines look like `<label> <index>:<value> ...`."


def _beyond_float32(value: float) -> bool:
    """A finite value that float32, rdia's feature type, cannot hold (it would become ±inf)."""
    return abs(value) >= FLOAT32_OVERFLOW and math.isfinite(value)


class _NotSimple(Exception):
    """The fast LIBSVM parser met something it leaves to the line-by-line parser."""


def libsvm_fast(src: Source) -> tuple[sp.csr_matrix, np.ndarray] | None:
    """What ``load_svmlight_file(f, dtype=float32, zero_based=True)`` returns, parsed by Arrow's
    C++ kernels one text block at a time into growing flat arrays: no Python object per line or
    token (about 4× less CPU than scikit-learn's parser), no pandas import (``numpy_of``).
    Returns None for anything it does not handle (comments, qid, unsorted indices, malformed
    lines, binary data...): the caller then parses with :func:`libsvm_lines_parse`, whose
    errors the reader turns into messages."""
    import pyarrow.csv as pacsv

    read = pacsv.ReadOptions(block_size=1 << 24, column_names=["line"])
    parse = pacsv.ParseOptions(delimiter="\x1f", quote_char=False, escape_char=False,
                               newlines_in_values=False)
    convert = pacsv.ConvertOptions(column_types={"line": pa.string()})
    cap = 1 << 20
    indices = np.empty(cap, dtype=np.int32)
    data = np.empty(cap, dtype=np.float32)
    labels: list[np.ndarray] = []
    lengths: list[np.ndarray] = []
    nnz = 0
    top = -1
    try:
        with csv_input(src) as stream, pacsv.open_csv(
            stream, read_options=read, parse_options=parse, convert_options=convert
        ) as reader:
            for batch in reader:
                lines = batch.column(0)
                if pc.any(pc.match_substring(lines, "#")).as_py() or pc.any(
                    pc.match_substring(lines, "qid:")
                ).as_py():
                    raise _NotSimple
                toks = pc.utf8_split_whitespace(lines)
                off = numpy_of(toks.offsets)
                count = np.diff(off)
                if len(count) and count.min() < 1:  # a whitespace-only line
                    raise _NotSimple
                flat = toks.values
                first = off[:-1] - off[0]
                labels.append(numpy_of(pc.cast(flat.take(arrow_of(first)), pa.float64())))
                keep = np.ones(len(flat), dtype=bool)
                keep[first] = False
                kv = pc.split_pattern(flat.filter(arrow_of(keep)), ":", max_splits=1)
                if len(kv) and pc.min(pc.list_value_length(kv)).as_py() != 2:
                    raise _NotSimple
                kvf = kv.values
                idx = pc.cast(kvf.take(arrow_of(np.arange(0, len(kvf), 2))), pa.int64())
                val = pc.cast(kvf.take(arrow_of(np.arange(1, len(kvf), 2))), pa.float64())
                idx, val = numpy_of(idx), numpy_of(val)
                if first_beyond_float32(val) is not None:  # the line parser names it
                    raise _NotSimple
                k = count - 1
                if idx.size:
                    if idx.min() < 0:
                        raise _NotSimple
                    step = np.diff(idx)
                    row_start = np.cumsum(k)[:-1]  # positions where a new row starts
                    inside = np.ones(step.size, dtype=bool)
                    inside[row_start[(row_start > 0) & (row_start <= step.size)] - 1] = False
                    if (step[inside] <= 0).any():  # not increasing within a row
                        raise _NotSimple
                    top = max(top, int(idx.max()))
                    if top >= 2**31 - 1:
                        raise _NotSimple
                if nnz + idx.size > indices.size:
                    size = max(2 * indices.size, nnz + idx.size)
                    indices = np.concatenate([indices[:nnz], np.empty(size - nnz, np.int32)])
                    data = np.concatenate([data[:nnz], np.empty(size - nnz, np.float32)])
                indices[nnz : nnz + idx.size] = idx
                data[nnz : nnz + idx.size] = val
                nnz += idx.size
                lengths.append(k)
    except (_NotSimple, pa.ArrowInvalid, pa.ArrowNotImplementedError, *DECOMPRESS_ERRORS):
        return None
    if not labels:
        return None
    k = np.concatenate(lengths)
    indptr = np.zeros(len(k) + 1, dtype=np.int64)
    np.cumsum(k, out=indptr[1:])
    idx_dtype = np.int32 if max(top + 1, nnz) < 2**31 else np.int64
    X = sp.csr_matrix(
        (data[:nnz].copy(), indices[:nnz].astype(idx_dtype), indptr.astype(idx_dtype)),
        shape=(len(k), top + 1),
    )
    return X, np.concatenate(labels)


def libsvm_lines_parse(src: Source) -> tuple[sp.csr_matrix, np.ndarray]:
    """What ``load_svmlight_file(f, dtype=float32, zero_based=True)`` returns, by the same
    rules as its parser, one line at a time: text after `#` is a comment, blank lines are
    skipped, a leading `qid:` token is dropped, indices must be ≥ 0 and increasing within a
    row. Raises ValueError on a malformed line (``_libsvm_find_error`` names it)."""
    labels: list[float] = []
    indices: list[int] = []
    values: list[float] = []
    indptr = [0]
    for _, parts in _libsvm_lines(src):
        labels.append(float(parts[0]))
        feats = parts[1:]
        if feats and feats[0].startswith(b"qid"):
            if b":" not in feats[0]:  # as scikit-learn's parser: `qid` needs a value
                raise ValueError(f"no `:` in {feats[0]!r}")
            feats = feats[1:]
        prev = -1
        for tok in feats:
            idx_s, colon, val_s = tok.partition(b":")
            if not colon:
                raise ValueError(f"no `:` in {tok!r}")
            idx = int(idx_s)
            if idx < 0 or idx >= 2**31:
                raise ValueError(f"Invalid index {idx} in SVMlight/LibSVM data file.")
            if idx <= prev:
                raise ValueError("Feature indices in SVMlight/LibSVM data file should be sorted "
                                 "and unique.")
            value = float(val_s)
            if _beyond_float32(value):
                raise ValueError(f"{val_s!r} is beyond float32")
            indices.append(idx)
            values.append(value)
            prev = idx
        indptr.append(len(indices))
    width = max(indices) + 1 if indices else 0
    X = sp.csr_matrix((np.asarray(values, dtype=np.float32), np.asarray(indices, dtype=np.int64),
                       np.asarray(indptr, dtype=np.int64)), shape=(len(labels), width))
    return X, np.asarray(labels, dtype=np.float64)


def read_libsvm(src: Source, opts: ReadOptions, schema: Schema | None) -> Parsed:
    refuse_compressed_binary(src, "LIBSVM/SVMlight")
    fast = libsvm_fast(src)
    try:
        if fast is not None:
            X, y = fast
        else:
            X, y = libsvm_lines_parse(src)
    except DECOMPRESS_ERRORS as e:
        raise src.error(
            f"could not be decompressed ({e}); the file is truncated or corrupt."
        ) from None
    except (ValueError, UnicodeDecodeError) as e:
        if looks_binary(peek(src.path, 4096)):
            raise src.error(
                "holds binary data, not LIBSVM/SVMlight text; pass `format` (`--format`) if it "
                "is another format."
            ) from None
        found = _libsvm_find_error(src)
        if found is None:
            raise src.error(f"is not a valid LIBSVM/SVMlight file: {e}.") from None
        raise src.error(found) from None
    n = X.shape[0]
    if n == 0:
        raise src.error("has no data rows (only blank or comment lines).")
    indptr, indices, data = X.indptr, X.indices, X.data
    del X
    where = _libsvm_where(src)

    zero_based = opts.zero_based
    if zero_based is None and schema is not None and schema.zero_based is not None:
        zero_based = schema.zero_based
    has_zero = indices.size > 0 and int(indices.min()) == 0
    if zero_based is None:
        zero_based = bool(has_zero)
    if not zero_based and has_zero:
        k = int(np.flatnonzero(indices == 0)[0])
        row = int(np.searchsorted(indptr, k, side="right") - 1)
        raise src.error(
            f"has feature index 0 {where(row)}, but is read as one-based; pass "
            "`zero_based=True` (`--zero-based`) if its indices start at 0."
        )
    offset = 0 if zero_based else 1
    width = int(indices.max()) + 1 - offset if indices.size else 0
    if opts.n_features is not None:
        if width > opts.n_features:
            k = int(np.argmax(indices))
            row = int(np.searchsorted(indptr, k, side="right") - 1)
            raise src.error(
                f"has feature index {int(indices[k])} {where(row)}, beyond `n_features` = "
                f"{opts.n_features}."
            )
        width = int(opts.n_features)
    idx_dtype = np.int32 if max(width, data.size) < 2**31 else np.int64
    new_indices = indices.astype(idx_dtype)
    del indices
    if offset:
        new_indices -= offset
    X = sp.csr_matrix((data, new_indices, indptr.astype(idx_dtype, copy=False)), shape=(n, width))
    labels = encode_labels(y, src, where, "label")
    return Parsed(
        X,
        labels,
        where=where,
        column=lambda j: f"feature index {j + offset}",
        meta={"zero_based": bool(zero_based)},
        declared_width=opts.n_features is not None,
    )
