from datetime import UTC, datetime, timedelta

import pytest

from recordings_service.config import Purpose
from recordings_service.errors import BadRequest, Forbidden
from recordings_service.policy import PurposeState, add_months, check_access, purge_at

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
PURPOSES = {
    "training": Purpose("training", "consent", 6, frozenset({"supervisor"})),
    "legal_protection": Purpose("legal_protection", "legitimate_interest", 36,
                                frozenset({"compliance"})),
    "security": Purpose("security", "legitimate_interest", 12, frozenset({"compliance"})),
}


def state(purpose: str, expires_in_days: float, withdrawn: bool = False) -> PurposeState:
    return PurposeState(purpose, PURPOSES[purpose].legal_basis,
                        NOW + timedelta(days=expires_in_days),
                        NOW - timedelta(days=1) if withdrawn else None)


@pytest.mark.parametrize(("start", "months", "expected"), [
    (datetime(2026, 1, 31, tzinfo=UTC), 1, datetime(2026, 2, 28, tzinfo=UTC)),
    (datetime(2028, 1, 31, tzinfo=UTC), 1, datetime(2028, 2, 29, tzinfo=UTC)),
    (datetime(2026, 11, 24, 9, tzinfo=UTC), 6, datetime(2027, 5, 24, 9, tzinfo=UTC)),
    (datetime(2026, 11, 24, tzinfo=UTC), 120, datetime(2036, 11, 24, tzinfo=UTC)),
    (datetime(2026, 12, 15, tzinfo=UTC), 0, datetime(2026, 12, 15, tzinfo=UTC)),
])
def test_add_months_clamps_the_day(start: datetime, months: int, expected: datetime) -> None:
    assert add_months(start, months) == expected


def test_purge_at_is_the_latest_expiry_of_purposes_not_withdrawn() -> None:
    states = [state("training", 10), state("legal_protection", 100, withdrawn=True),
              state("security", 50)]
    assert purge_at(states, NOW) == NOW + timedelta(days=50)


def test_purge_at_is_now_when_everything_was_withdrawn() -> None:
    assert purge_at([state("training", 10, withdrawn=True)], NOW) == NOW


def test_purge_at_may_already_be_past() -> None:
    assert purge_at([state("training", -10)], NOW) < NOW


# (roles, purpose, states, restricted) -> expected reason or None (allowed)
CASES = [
    ({"supervisor"}, "training", [state("training", 1)], False, None),
    ({"compliance"}, "training", [state("training", 1)], False, "purpose_not_allowed"),
    ({"supervisor"}, "legal_protection", [state("legal_protection", 1)], False,
     "purpose_not_allowed"),
    ({"supervisor"}, "training", [state("legal_protection", 1)], False, "purpose_not_allowed"),
    ({"supervisor"}, "training", [state("training", -1)], False, "purpose_expired"),
    ({"supervisor"}, "training", [state("training", 0)], False, "purpose_expired"),
    ({"supervisor"}, "training", [state("training", 5, withdrawn=True)], False,
     "purpose_withdrawn"),
    ({"supervisor"}, "training", [state("training", 5)], True, "restricted"),
    ({"compliance"}, "security", [state("security", 5)], True, "restricted"),
    ({"compliance"}, "legal_protection", [state("legal_protection", 5)], True, None),
    ({"supervisor", "compliance"}, "legal_protection", [state("legal_protection", 5)], False,
     None),
]


@pytest.mark.parametrize(("roles", "purpose", "states", "restricted", "reason"), CASES)
def test_check_access(roles: set[str], purpose: str, states: list[PurposeState],
                      restricted: bool, reason: str | None) -> None:
    if reason is None:
        check_access(roles, purpose, states, restricted, PURPOSES, NOW)
        return
    with pytest.raises(Forbidden) as info:
        check_access(roles, purpose, states, restricted, PURPOSES, NOW)
    assert info.value.reason == reason


def test_unknown_purpose_is_a_bad_request() -> None:
    with pytest.raises(BadRequest) as info:
        check_access({"supervisor"}, "marketing", [], False, PURPOSES, NOW)
    assert info.value.reason == "unknown_purpose"


# --- purge and erasure refusals ----------------------------------------------------------

from recordings_service.policy import erasure_refusal, purge_blocker  # noqa: E402

BOOKS = PurposeState("accounting_record", "legal_obligation", NOW + timedelta(days=3000))


@pytest.mark.parametrize(("holds", "restricted", "states", "reason"), [
    ([], False, [state("training", 5)], None),
    (["CASE-1"], False, [state("training", 5)], "legal_hold"),
    (["CASE-1"], True, [BOOKS], "legal_hold"),          # the hold is named first
    ([], True, [state("training", 5)], "restricted"),
    ([], False, [state("training", 5), BOOKS], "legal_obligation"),
    ([], False, [PurposeState("accounting_record", "legal_obligation",
                              NOW - timedelta(days=1))], None),  # the obligation has ended
])
def test_erasure_refusal(holds: list[str], restricted: bool, states: list[PurposeState],
                         reason: str | None) -> None:
    refusal = erasure_refusal(holds, restricted, states, NOW)
    assert (refusal.reason if refusal else None) == reason
    if reason == "legal_obligation":
        assert refusal is not None and refusal.until == BOOKS.expires_at
        assert "2035-02-10" in refusal.detail


def test_purge_is_blocked_only_by_holds_and_restriction() -> None:
    assert purge_blocker([], False) is None
    assert purge_blocker(["A", "B"], False).reason == "legal_hold"  # type: ignore[union-attr]
    assert purge_blocker([], True).reason == "restricted"  # type: ignore[union-attr]
