"""Keyset pagination: the rows after (or before) a (time, id) position, stable under inserts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_


def after(time: ColumnElement[Any], key: ColumnElement[Any],
          position: tuple[datetime, str]) -> ColumnElement[bool]:
    return or_(time > position[0], and_(time == position[0], key > position[1]))


def before(time: ColumnElement[Any], key: ColumnElement[Any],
           position: tuple[datetime, str]) -> ColumnElement[bool]:
    return or_(time < position[0], and_(time == position[0], key < position[1]))
