"""Who may hear what, for which purpose, and until when. Pure functions of ``now``."""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from recordings_service.config import Purpose
from recordings_service.errors import BadRequest, Forbidden, ServiceError
from recordings_service.times import rfc3339
from storage.catalog import Recording

# While a recording is restricted, only this purpose may still be used to hear it.
RESTRICTED_PURPOSE = "legal_protection"


@dataclass(frozen=True)
class PurposeState:
    purpose: str
    legal_basis: str
    expires_at: datetime
    withdrawn_at: datetime | None = None
    withdrawal_reason: str | None = None

    def active(self, now: datetime) -> bool:
        return self.withdrawn_at is None and now < self.expires_at


def states_of(rec: Recording) -> list[PurposeState]:
    """The policy's view of a recording's purposes."""
    return [PurposeState(p.purpose, p.legal_basis, p.expires_at, p.withdrawn_at,
                         p.withdrawal_reason) for p in rec.purposes]


def add_months(start: datetime, months: int) -> datetime:
    """Calendar months; the day is clamped (31 Jan + 1 month = 28/29 Feb)."""
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day)


def purpose_state(purpose: Purpose, started_at: datetime) -> PurposeState:
    return PurposeState(purpose.name, purpose.legal_basis,
                        add_months(started_at, purpose.retention_months))


def purge_at(states: Iterable[PurposeState], now: datetime) -> datetime:
    """The latest expiry among purposes not withdrawn; ``now`` when every one is withdrawn.

    A past value means the recording is already due.
    """
    expiries = [s.expires_at for s in states if s.withdrawn_at is None]
    return max(expiries) if expiries else now


def check_access(
    roles: Iterable[str],
    purpose_name: str,
    states: Iterable[PurposeState],
    restricted: bool,
    configured: Mapping[str, Purpose],
    now: datetime,
) -> None:
    """Raises unless a caller with ``roles`` may hear the audio for ``purpose_name``."""
    purpose = configured.get(purpose_name)
    if purpose is None:
        raise BadRequest("unknown_purpose", "the access purpose is not a configured purpose")
    if not purpose.access_roles & set(roles):
        raise Forbidden("purpose_not_allowed",
                        f"your roles may not access audio for {purpose_name}")
    state = next((s for s in states if s.purpose == purpose_name), None)
    if state is None:
        raise Forbidden("purpose_not_allowed",
                        f"the recording is not kept for {purpose_name}")
    if state.withdrawn_at is not None:
        raise Forbidden("purpose_withdrawn",
                        f"{purpose_name} was withdrawn for this recording")
    if not state.active(now):
        raise Forbidden("purpose_expired",
                        f"{purpose_name} expired for this recording at "
                        f"{rfc3339(state.expires_at)}")
    if restricted and purpose_name != RESTRICTED_PURPOSE:
        raise Forbidden("restricted",
                        f"the recording is restricted; only {RESTRICTED_PURPOSE} is allowed")


def allowed_purposes(
    roles: Iterable[str],
    states: Iterable[PurposeState],
    restricted: bool,
    configured: Mapping[str, Purpose],
    now: datetime,
) -> list[str]:
    """The purposes a caller with ``roles`` may hear the audio for now: exactly those
    ``check_access`` lets through (so a page shows what the service will allow)."""
    states = list(states)
    allowed = []
    for state in states:
        try:
            check_access(roles, state.purpose, states, restricted, configured, now)
        except ServiceError:
            continue
        allowed.append(state.purpose)
    return sorted(allowed)


def refusals(
    roles: Iterable[str],
    states: Iterable[PurposeState],
    restricted: bool,
    configured: Mapping[str, Purpose],
    now: datetime,
) -> dict[str, str]:
    """Each purpose the recording is kept for that the caller may not hear it for, with
    the words ``check_access`` refuses it in."""
    states = list(states)
    refused = {}
    for state in states:
        try:
            check_access(roles, state.purpose, states, restricted, configured, now)
        except ServiceError as exc:
            refused[state.purpose] = exc.detail
    return refused


@dataclass(frozen=True)
class Refusal:
    reason: str  # legal_hold | restricted | legal_obligation
    detail: str
    until: datetime | None = None


def purge_blocker(holds: Iterable[str], restricted: bool) -> Refusal | None:
    """Why a due recording may not be purged yet: a legal hold, or a restriction."""
    cases = list(holds)
    if cases:
        return Refusal("legal_hold", f"under legal hold: {', '.join(cases)}")
    if restricted:
        return Refusal("restricted", "processing is restricted while a dispute is settled")
    return None


def erasure_refusal(holds: Iterable[str], restricted: bool, states: Iterable[PurposeState],
                    now: datetime) -> Refusal | None:
    """Why a data subject's erasure request must be refused now, and until when."""
    blocker = purge_blocker(holds, restricted)
    if blocker is not None:
        return blocker
    kept = [s.expires_at for s in states
            if s.legal_basis == "legal_obligation" and s.active(now)]
    if kept:
        until = max(kept)
        return Refusal("legal_obligation",
                       f"the law obliges keeping this recording until {rfc3339(until)}", until)
    return None
