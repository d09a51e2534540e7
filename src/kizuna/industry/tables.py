"""Reading the planner's input tables (CSV or Parquet) with typed columns and precise errors.

Every table is a list of rows; each column has a declared kind, optional default and lower bound.
A bad cell raises :class:`kizuna.errors.InputError` naming the file, the data row (1-based, header
not counted), the column, what was found and what was expected, so a planner can fix the cell
without reading code. Months are written ``YYYY-MM`` and held as integer month numbers
(``year * 12 + month - 1``) so that month arithmetic is integer subtraction.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from kizuna.errors import InputError, Problem

Kind = Literal["str", "float", "int", "bool", "month"]

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_TRUE = {"true", "yes", "1", "y", "t"}
_FALSE = {"false", "no", "0", "n", "f"}


def parse_month(text: str) -> int | None:
    """``"2028-01"`` → month number ``2028*12 + 0``; ``None`` if the text is not a valid month."""
    match = _MONTH.match(text.strip())
    if not match:
        return None
    year, month = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12 or year < 1900:
        return None
    return year * 12 + month - 1


def format_month(number: int) -> str:
    """Inverse of :func:`parse_month`."""
    return f"{number // 12:04d}-{number % 12 + 1:02d}"


@dataclass(frozen=True)
class Column:
    """One declared column: its kind, whether it must be given, its default and lower bound."""

    name: str
    kind: Kind
    required: bool = True
    default: object = None
    minimum: float | None = None  # inclusive lower bound for numbers
    positive: bool = False  # strictly greater than zero


@dataclass
class Table:
    """A parsed table: typed rows plus where each row came from, for error messages."""

    name: str
    source: str
    rows: list[dict[str, object]]
    lines: list[int | None] = field(default_factory=list)  # file line of each row (CSV only)

    def problem(
        self, row: int, column: str, message: str, got: object = None, expected: str = ""
    ) -> Problem:
        """A problem at data row ``row`` (0-based index) and ``column``."""
        line = self.lines[row] if row < len(self.lines) else None
        return Problem(
            self.source, f"row {row + 1}, column '{column}'", message, got, expected, line
        )

    def error(
        self, row: int, column: str, message: str, got: object = None, expected: str = ""
    ) -> InputError:
        return InputError([self.problem(row, column, message, got, expected)])

    def column(self, name: str) -> list[object]:
        return [r[name] for r in self.rows]


def _convert(raw: object, col: Column) -> tuple[object, str | None]:
    """Convert one cell; return (value, None) or (None, expected-text) when it is invalid."""
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        if col.required:
            return None, f"a value ({col.kind})"
        return col.default, None
    text = raw.strip() if isinstance(raw, str) else raw
    if col.kind == "str":
        return str(text), None
    if col.kind == "bool":
        if isinstance(text, bool):
            return text, None
        low = str(text).lower()
        if low in _TRUE:
            return True, None
        if low in _FALSE:
            return False, None
        return None, "true or false"
    if col.kind == "month":
        number = parse_month(str(text))
        return (number, None) if number is not None else (None, "a month as YYYY-MM")
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None, "a number"
    if not math.isfinite(value):
        return None, "a finite number"
    if col.kind == "int":
        if value != int(value):
            return None, "a whole number"
        value = int(value)
    if col.positive and value <= 0:
        return None, "a number > 0"
    if col.minimum is not None and value < col.minimum:
        return None, f"a number >= {col.minimum:g}"
    return value, None


def _raw_rows(path: Path) -> tuple[list[str], list[dict[str, object]], list[int | None]]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as exc:  # pyarrow raises several types for corrupt files
            raise InputError.single(str(path), "", f"cannot read Parquet table: {exc}") from exc
        records: list[dict[str, object]] = table.to_pylist()
        return list(table.column_names), records, [None] * len(records)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:  # tolerate a BOM
            reader = csv.DictReader(handle)
            header = list(reader.fieldnames or [])
            rows: list[dict[str, object]] = []
            lines: list[int | None] = []
            for row in reader:
                if None in row:  # more cells than header columns
                    raise InputError.single(
                        str(path),
                        f"row {len(rows) + 1}",
                        "more cells than header columns",
                        got=len(header) + len(row[None]),  # type: ignore[arg-type]
                        expected=f"{len(header)} cells",
                        line=reader.line_num,
                    )
                if all((v or "").strip() == "" for v in row.values()):
                    continue  # blank line
                rows.append(dict(row))
                lines.append(reader.line_num)
    except UnicodeDecodeError as exc:
        raise InputError.single(str(path), "", "not UTF-8 text", expected="a CSV file") from exc
    return [h.strip() for h in header], rows, lines


def find_table(folder: Path, name: str) -> Path | None:
    """``folder/name.csv`` or ``folder/name.parquet`` (CSV preferred), or None."""
    for suffix in (".csv", ".parquet"):
        path = folder / f"{name}{suffix}"
        if path.is_file():
            return path
    return None


def read_table(folder: Path, name: str, columns: Sequence[Column], optional: bool = False) -> Table:
    """Read and type-check table ``name`` from ``folder``; every bad cell is reported at once."""
    path = find_table(folder, name)
    if path is None:
        if optional:
            return Table(name, str(folder / f"{name}.csv"), [], [])
        raise InputError.single(
            str(folder / f"{name}.csv"), "", "table is missing", expected="a CSV or Parquet file"
        )
    header, raw_rows, lines = _raw_rows(path)
    known = {c.name for c in columns}
    problems: list[Problem] = []
    for col in columns:
        if col.required and col.name not in header:
            problems.append(
                Problem(
                    str(path),
                    f"column '{col.name}'",
                    "required column is missing",
                    expected=f"header with {', '.join(c.name for c in columns)}",
                )
            )
    for extra in header:
        if extra not in known:
            problems.append(
                Problem(
                    str(path),
                    f"column '{extra}'",
                    "unknown column",
                    expected=", ".join(c.name for c in columns),
                )
            )
    if problems:
        raise InputError(problems)
    rows: list[dict[str, object]] = []
    for index, raw in enumerate(raw_rows):
        typed: dict[str, object] = {}
        for col in columns:
            cell = raw.get(col.name)
            value, expected = _convert(cell, col)
            if expected is not None:
                problems.append(
                    Problem(
                        str(path),
                        f"row {index + 1}, column '{col.name}'",
                        "bad value",
                        cell if cell not in (None, "") else "",
                        expected,
                        lines[index],
                    )
                )
            typed[col.name] = value
        rows.append(typed)
    if problems:
        raise InputError(problems[:20])
    return Table(name, str(path), rows, lines)
