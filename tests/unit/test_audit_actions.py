"""The auditor's action filter offers every action an entry can carry."""

from __future__ import annotations

import re
from pathlib import Path

from recordings_service.api.routes import ROUTES
from recordings_service.audit_reading import ACTIONS
from recordings_service.console.routes import PAGES

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [*(ROOT / "recordings_service").rglob("*.py"), *(ROOT / "storage").rglob("*.py")]
# An entry is appended as (…, action, outcome, …); a refused request carries its guard's action.
APPENDED = re.compile(r'"([a-z_]+)",\s*"(?:allowed|denied|error)"')


def test_every_action_appended_in_the_code_is_offered() -> None:
    appended = {m for path in SOURCES for m in APPENDED.findall(path.read_text())}
    appended.discard("allowed")
    assert len(appended) > 20  # the pattern still finds the appends
    assert appended - set(ACTIONS) == set()


def test_the_action_of_every_guarded_route_and_page_is_offered() -> None:
    refused = {route.action or route.operation_id for route in ROUTES if route.roles}
    refused |= {action for _, _, roles, action in PAGES if roles}
    assert refused - set(ACTIONS) == set()
