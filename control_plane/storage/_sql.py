"""Bulk statements shared by the stores: key lists and inserts of many rows.

Every bulk operation is one statement on PostgreSQL (a key list travels as one array parameter, rows
as column arrays through ``unnest``). On SQLite, whose bound-parameter limit rules out a parameter per
key in one statement, key lists go in chunks of ``IN (...)`` and rows through the driver's
``executemany`` of one prepared statement.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import Column, ColumnElement, Connection, String, Table, and_, any_, literal, or_, text
from sqlalchemy.dialects.postgresql import ARRAY

from code_server.asset_key import AssetKey
from control_plane.records import PageCursor

_T = TypeVar("_T")

#: Keys per ``IN (...)`` on SQLite, which allows 32,766 bound parameters per statement (999 before 3.32).
CHUNK = 500


def chunks(items: Sequence[_T], size: int = CHUNK) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def key_text(key: AssetKey) -> str:
    return key.to_user_string()


@lru_cache(maxsize=4096)
def key_of(text: str) -> AssetKey:
    """Parsed once per distinct key: rows repeat a handful of asset keys thousands of times."""
    return AssetKey.from_user_string(text)


def matching(connection: Connection, column: Column[Any], values: Sequence[str]) -> list[ColumnElement[bool]]:
    """Conditions that together select ``column IN values``: run one statement per condition.

    One ``= ANY(array)`` on PostgreSQL; chunks of ``IN (...)`` on SQLite; none for no values.
    """
    if not values:
        return []
    if connection.dialect.name == "postgresql":
        return [column == any_(literal(list(values), ARRAY(String())))]
    return [column.in_(chunk) for chunk in chunks(values)]


def after_cursor(at: Column[Any], id_: Column[Any], cursor: PageCursor) -> ColumnElement[bool]:
    """Rows after ``cursor`` in (at, id) descending order: the next newest-first page."""
    return or_(at < cursor.at, and_(at == cursor.at, id_ < cursor.id))


def insert_rows(
    connection: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    upsert_on: Sequence[str] = (),
) -> None:
    """Insert many rows that all have the same keys (column names).

    With ``upsert_on`` (the columns of a unique key), a row whose key exists overwrites the other
    columns instead (``ON CONFLICT .. DO UPDATE``, the same syntax on both databases).
    """
    if rows:
        columns = {name: [row[name] for row in rows] for name in rows[0]}
        insert_columns(connection, table, columns, upsert_on=upsert_on)


def insert_columns(
    connection: Connection,
    table: Table,
    columns: Mapping[str, Sequence[Any]],
    *,
    upsert_on: Sequence[str] = (),
) -> None:
    """``insert_rows`` for rows given column by column (equal lengths): no row objects at all."""
    names = list(columns)
    if not names or not len(columns[names[0]]):
        return
    quote = connection.dialect.identifier_preparer.quote
    listed = ", ".join(quote(name) for name in names)
    conflict = ""
    if upsert_on:
        updated = ", ".join(
            f"{quote(name)} = excluded.{quote(name)}" for name in names if name not in upsert_on
        )
        conflict = f" ON CONFLICT ({', '.join(quote(name) for name in upsert_on)}) DO UPDATE SET {updated}"
    values = {name: _processed(connection, table.c[name], columns[name]) for name in names}
    if connection.dialect.name != "postgresql":
        connection.exec_driver_sql(
            f"INSERT INTO {quote(table.name)} ({listed}) VALUES ({', '.join('?' for _ in names)}){conflict}",
            list(zip(*values.values(), strict=True)),
        )
        return
    arrays, unnest = _unnest(connection, table, values)
    connection.execute(
        text(f"INSERT INTO {quote(table.name)} ({listed}) SELECT * FROM {unnest} AS u{conflict}"), arrays
    )


def _unnest(
    connection: Connection, table: Table, values: Mapping[str, Sequence[Any]]
) -> tuple[dict[str, str], str]:
    """PostgreSQL: one JSON array parameter per column, zipped into typed rows by ``ROWS FROM``.

    JSON rather than native arrays: the driver sends a JSON string serialized in C, while a Python
    list becomes a text array element by element (most of the cost of a 10,000-row insert).
    """
    names = list(values)
    arrays = {
        f"c{index}": json.dumps(list(values[name]), default=_json_value) for index, name in enumerate(names)
    }
    elements = ", ".join(f"json_array_elements_text(CAST(:c{index} AS json))" for index in range(len(names)))
    aliases = ", ".join(f"v{index}" for index in range(len(names)))
    casts = ", ".join(
        f"CAST(v{index} AS {table.c[name].type.compile(dialect=connection.dialect)})"
        for index, name in enumerate(names)
    )
    return arrays, f"(SELECT {casts} FROM ROWS FROM ({elements}) AS r({aliases}))"


def _json_value(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot store {value!r} through a JSON column array")


def _processed(connection: Connection, column: Column[Any], values: Sequence[Any]) -> Sequence[Any]:
    """Values as the driver takes them for this column (e.g. aware datetimes for UtcDateTime)."""
    process = column.type.dialect_impl(connection.dialect).bind_processor(connection.dialect)
    return [process(value) for value in values] if process else values
