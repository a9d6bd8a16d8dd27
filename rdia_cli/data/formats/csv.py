"""CSV and TSV with a header line (also gzip/bz2/xz): numeric columns are inferred, text stays
text, pandas' usual missing-value markers (empty, NA, N/A, NaN, null, None...) are missing cells;
the table then goes through :func:`~rdia_cli.data.formats.common.user_table`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa

from rdia_cli.data.formats.common import (
    DECOMPRESS_ERRORS,
    NULL_VALUES,
    Parsed,
    ReadOptions,
    Schema,
    Source,
    base_name,
    csv_input,
    open_input,
    peek,
    refuse_compressed_binary,
    user_table,
)


def _csv_records(src: Source, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(physical line the record starts on, its fields) of each record, the header first, as
    pyarrow splits the file: a quoted value may span lines, empty lines are skipped. The bytes
    are read as Latin-1, which decodes anything (only delimiters, quotes and line ends matter).
    Error path only: a Python pass over the file."""
    import csv
    import io

    with open_input(src.path) as f:
        reader = csv.reader(io.TextIOWrapper(f, encoding="latin-1", newline=""),
                            delimiter=delimiter)
        start = 1
        try:
            for fields in reader:
                if fields:
                    yield start, fields
                start = reader.line_num + 1
        except csv.Error:  # e.g. a value beyond the csv module's field size limit
            return


def _csv_where(src: Source, delimiter: str) -> Callable[[int], str]:
    """A data row's place in messages: the line of the file it starts on (header = line 1)."""

    def where(row: int) -> str:
        for k, (lineno, _) in enumerate(_csv_records(src, delimiter)):
            if k == row + 1:
                return f"on line {lineno}"
        return f"in data row {row + 1}"

    return where


def _csv_bad_record(src: Source, delimiter: str, text: str) -> str:
    """Where the first record with another number of fields than the header starts ("line
    7"), else where the text pyarrow showed stands alone on a line."""
    records = _csv_records(src, delimiter)
    header = next(records, None)
    for lineno, fields in records:
        if header is not None and len(fields) != len(header[1]):
            return f"line {lineno}"
    target = text.encode().rstrip(b"\r\n")
    with open_input(src.path) as f:
        for lineno, line in enumerate(f, start=1):
            if line.rstrip(b"\r\n") == target:
                return f"line {lineno}"
    return f"the line `{text[:80]}`"


def _refuse_binary_columns(src: Source, table: Any, where: Callable[[int], str]) -> None:
    """pyarrow reads a column holding bytes that are not UTF-8 (cp1252/Latin-1 text) as binary:
    name the first such cell's line and how to re-encode the file."""
    for name in table.column_names:
        col = table.column(name)
        if not (pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type)):
            continue
        for r, v in enumerate(col.to_pylist()):
            try:
                (v or b"").decode("utf-8")
            except UnicodeDecodeError as e:
                shown = v.decode("utf-8", "replace")[:40]
                raise src.error(
                    f"is not UTF-8 text {where(r)}: column `{name}` holds `{shown}`, with byte "
                    f"0x{v[e.start]:02x} (saved as cp1252/Latin-1?); {_REENCODE}"
                ) from None


_REENCODE = ("save the file as UTF-8, e.g. `iconv -f cp1252 -t utf-8 FILE.csv > "
             "FILE-utf8.csv`.")


def read_csv(src: Source, opts: ReadOptions, schema: Schema | None) -> Parsed:

    refuse_compressed_binary(src, "CSV")
    first = peek(src.path, 65536).split(b"\n", 1)[0]
    if base_name(src.path).endswith(".tsv") or (b"\t" in first and b"," not in first):
        delimiter = "\t"
    else:
        delimiter = ","
    invalid: list[Any] = []
    try:
        try:
            table = _parse(src, delimiter, invalid, newlines_in_values=False)
        except pa.ArrowInvalid as e:
            if "newlines_in_values" not in str(e):
                raise
            # a quoted value spans lines across pyarrow's blocks: parse again, slower
            invalid.clear()
            table = _parse(src, delimiter, invalid, newlines_in_values=True)
    except DECOMPRESS_ERRORS as e:
        raise src.error(f"could not be read ({e}); the file is truncated or corrupt.") from None
    except pa.ArrowInvalid as e:
        if "Empty CSV" in str(e):
            raise src.error("is empty.") from None
        raise src.error(f"is not a valid CSV file: {e}.") from None
    if invalid:
        row = invalid[0]
        at = f"line {row.number}" if row.number else _csv_bad_record(src, delimiter, row.text)
        raise src.error(
            f"has {row.actual_columns} fields on {at}, but its header has "
            f"{row.expected_columns}; every line needs one value per column."
        )
    try:
        names = [str(c).strip() for c in table.column_names]  # `label, f1, f2` works too
    except UnicodeDecodeError as e:
        shown = bytes(e.object).decode("utf-8", "replace")
        raise src.error(
            f"has a header (line 1) that is not UTF-8 text: column name `{shown}` holds byte "
            f"0x{e.object[e.start]:02x} (saved as cp1252/Latin-1?); {_REENCODE}"
        ) from None
    if names != list(table.column_names):
        table = table.rename_columns(names)
    if len(set(names)) != len(names):
        dups = sorted({c for c in names if names.count(c) > 1})
        raise src.error(f"has duplicate column names {dups}; give each column its own name.")
    where = _csv_where(src, delimiter)
    _refuse_binary_columns(src, table, where)
    fmt = {"format": "tsv" if delimiter == "\t" else "csv", "delimiter": delimiter}
    return user_table(src, table, opts, schema, where, columns=fmt)


def _parse(src: Source, delimiter: str, invalid: list, *, newlines_in_values: bool) -> Any:
    """The file as a pyarrow Table; rows with another number of fields go to ``invalid``."""
    import pyarrow.csv as pacsv

    def on_invalid(row: Any) -> str:
        invalid.append(row)
        return "skip"

    with csv_input(src) as stream:
        return pacsv.read_csv(
            stream,
            parse_options=pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=on_invalid,
                                             newlines_in_values=newlines_in_values),
            convert_options=pacsv.ConvertOptions(null_values=list(NULL_VALUES),
                                                 strings_can_be_null=True),
        )
