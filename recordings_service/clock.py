"""Time is passed in: handlers and jobs read ``Services.clock``, logic takes ``now``."""

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)
