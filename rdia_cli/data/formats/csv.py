"""CSV and TSV with a header line (also gzip/bz2/xz): numeric columns are inferred, text stays
text, pandas' usual missing-value markers (empty, NA, N/A, NaN, null, None...) are missing cells;
the table then goes through :func:`~rdia_cli.data.formats.common.user_table`."""

from __future__ import annotations

from collections.abc import Callable
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


def _csv_where(src: Source) -> Callable[[int], str]:
    def where(row: int) -> str:
        # pyarrow skips empty lines; count them to give the true line number (header = line 1).
        k = -1
        with open_input(src.path) as f:
            for lineno, line in enumerate(f, start=1):
                if lineno == 1 or not line.rstrip(b"\r\n"):
                    continue
                k += 1
                if k == row:
                    return f"on line {lineno}"
        return f"on line {row + 2}"

    return where


def _csv_line_of_text(src: Source, text: str) -> int | None:
    target = text.encode().rstrip(b"\r\n")
    with open_input(src.path) as f:
        for lineno, line in enumerate(f, start=1):
            if line.rstrip(b"\r\n") == target:
                return lineno
    return None


def read_csv(src: Source, opts: ReadOptions, schema: Schema | None) -> Parsed:
    import pyarrow.csv as pacsv

    refuse_compressed_binary(src, "CSV")
    first = peek(src.path, 65536).split(b"\n", 1)[0]
    if base_name(src.path).endswith(".tsv") or (b"\t" in first and b"," not in first):
        delimiter = "\t"
    else:
        delimiter = ","
    invalid: list[Any] = []

    def on_invalid(row: Any) -> str:
        invalid.append(row)
        return "skip"

    try:
        with csv_input(src) as stream:
            table = pacsv.read_csv(
                stream,
                parse_options=pacsv.ParseOptions(
                    delimiter=delimiter, invalid_row_handler=on_invalid
                ),
                convert_options=pacsv.ConvertOptions(
                    null_values=list(NULL_VALUES), strings_can_be_null=True
                ),
            )
    except DECOMPRESS_ERRORS as e:
        raise src.error(f"could not be read ({e}); the file is truncated or corrupt.") from None
    except pa.ArrowInvalid as e:
        if "Empty CSV" in str(e):
            raise src.error("is empty.") from None
        raise src.error(f"is not a valid CSV file: {e}.") from None
    if invalid:
        row = invalid[0]
        lineno = row.number or _csv_line_of_text(src, row.text)
        at = f"line {lineno}" if lineno else f"the line `{row.text[:80]}`"
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
            f"0x{e.object[e.start]:02x} (saved as cp1252/Latin-1?); save the file as UTF-8."
        ) from None
    if names != list(table.column_names):
        table = table.rename_columns(names)
    if len(set(names)) != len(names):
        dups = sorted({c for c in names if names.count(c) > 1})
        raise src.error(f"has duplicate column names {dups}; give each column its own name.")
    where = _csv_where(src)
    fmt = {"format": "tsv" if delimiter == "\t" else "csv", "delimiter": delimiter}
    return user_table(src, table, opts, schema, where, columns=fmt)
