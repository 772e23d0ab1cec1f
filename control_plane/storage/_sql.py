"""Bulk statements shared by the stores: key lists, inserts and keyed updates of many rows.

Every bulk operation is one statement on PostgreSQL (a key list travels as one array parameter, rows
as column arrays through ``unnest``). On SQLite, whose bound-parameter limit rules out a parameter per
key in one statement, key lists go in chunks of ``IN (...)`` and rows through the driver's
``executemany`` of one prepared statement.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import Column, ColumnElement, Connection, String, Table, any_, literal, text
from sqlalchemy.dialects.postgresql import ARRAY

from code_server.asset_key import AssetKey

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
    if not rows:
        return
    names = list(rows[0])
    quote = connection.dialect.identifier_preparer.quote
    columns = ", ".join(quote(name) for name in names)
    conflict = ""
    if upsert_on:
        updated = ", ".join(
            f"{quote(name)} = excluded.{quote(name)}" for name in names if name not in upsert_on
        )
        conflict = f" ON CONFLICT ({', '.join(quote(name) for name in upsert_on)}) DO UPDATE SET {updated}"
    if connection.dialect.name != "postgresql":
        values = [_column_values(connection, table.c[name], rows) for name in names]
        connection.exec_driver_sql(
            f"INSERT INTO {quote(table.name)} ({columns}) VALUES ({', '.join('?' for _ in names)}){conflict}",
            list(zip(*values, strict=True)),
        )
        return
    arrays, unnest = _unnest(connection, table, names, rows)
    connection.execute(
        text(f"INSERT INTO {quote(table.name)} ({columns}) SELECT * FROM {unnest}{conflict}"), arrays
    )


def update_rows(
    connection: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    keys: Sequence[str],
    values: Mapping[str, Any],
) -> int:
    """Update one row per entry of ``rows``, found by its ``keys`` columns, set to its other columns.

    ``values`` are constants set on every matched row. Returns the number of rows changed.
    """
    if not rows:
        return 0
    names = list(rows[0])
    assigned = [name for name in names if name not in keys]
    quote = connection.dialect.identifier_preparer.quote
    constants = [_bound(connection, table.c[name], value) for name, value in values.items()]
    if connection.dialect.name != "postgresql":
        by_name = {name: _column_values(connection, table.c[name], rows) for name in names}
        settings = [f"{quote(name)} = ?" for name in [*values, *assigned]]
        conditions = [f"{quote(name)} = ?" for name in keys]
        parameters = [
            (
                *constants,
                *(by_name[name][index] for name in assigned),
                *(by_name[name][index] for name in keys),
            )
            for index in range(len(rows))
        ]
        result = connection.exec_driver_sql(
            f"UPDATE {quote(table.name)} SET {', '.join(settings)} WHERE {' AND '.join(conditions)}",
            parameters,
        )
        return int(result.rowcount)
    arrays, unnest = _unnest(connection, table, names, rows)
    bound = {**arrays, **{f"s{index}": value for index, value in enumerate(constants)}}
    settings = [f"{quote(name)} = :s{index}" for index, name in enumerate(values)] + [
        f"{quote(name)} = v.{quote(name)}" for name in assigned
    ]
    conditions = [f"t.{quote(name)} = v.{quote(name)}" for name in keys]
    statement = (
        f"UPDATE {quote(table.name)} AS t SET {', '.join(settings)} "
        f"FROM {unnest} AS v({', '.join(quote(name) for name in names)}) WHERE {' AND '.join(conditions)}"
    )
    return int(connection.execute(text(statement), bound).rowcount)


def _unnest(
    connection: Connection, table: Table, names: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> tuple[dict[str, list[Any]], str]:
    """PostgreSQL: one typed array parameter per column, and the ``unnest(...)`` that zips them into rows."""
    arrays = {
        f"c{index}": _column_values(connection, table.c[name], rows) for index, name in enumerate(names)
    }
    casts = ", ".join(
        f"CAST(:c{index} AS {table.c[name].type.compile(dialect=connection.dialect)}[])"
        for index, name in enumerate(names)
    )
    return arrays, f"unnest({casts})"


def _bound(connection: Connection, column: Column[Any], value: Any) -> Any:
    process = column.type.dialect_impl(connection.dialect).bind_processor(connection.dialect)
    return process(value) if process else value


def _column_values(
    connection: Connection, column: Column[Any], rows: Sequence[Mapping[str, Any]]
) -> list[Any]:
    process = column.type.dialect_impl(connection.dialect).bind_processor(connection.dialect)
    values = [row[column.name] for row in rows]
    return [process(value) for value in values] if process else values
