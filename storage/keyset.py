"""Keyset pagination: the rows after (or before) a (value, id) position, stable under inserts.

The bound on the time alone comes first and is redundant: it is what lets a database seek
in the (…, time, id) index to the position instead of walking it from the start (SQLite
does not seek on the OR that breaks ties), so page 50 costs what page 1 costs.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, or_


def after(time: ColumnElement[Any], key: ColumnElement[Any],
          position: tuple[Any, str]) -> ColumnElement[bool]:
    return and_(time >= position[0],
                or_(time > position[0], and_(time == position[0], key > position[1])))


def before(time: ColumnElement[Any], key: ColumnElement[Any],
           position: tuple[Any, str]) -> ColumnElement[bool]:
    return and_(time <= position[0],
                or_(time < position[0], and_(time == position[0], key < position[1])))
