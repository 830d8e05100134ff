"""People's sign-in sessions: server-side, referenced by an HttpOnly SameSite=Strict cookie.

- Sign-in checks the password (Argon2id) and opens a session: a new random value each
  time (so a value planted before sign-in is useless), of which only the SHA-256 is kept,
  with an idle timeout and an absolute lifetime from ``[auth]``.
- Failed sign-ins are counted in the catalog (every replica sees them) per account and
  address pair, per account and per client address (``client_address``: behind a
  configured trusted proxy, the address it names). Brute force is stopped without handing
  anyone a way to lock the owner out:
  - a pair gets ``FREE_PAIR_FAILURES`` tries, then each failure doubles its wait (1 s,
    2 s, 4 s, ... up to the window): guessing from one address gets nowhere;
  - past the account's or the address's limit, only a pair with no failures is still
    heard: the owner signing in from anywhere the attacker is not (another address, or
    the same proxy with its own forwarded address) is not refused, and an attacker
    spread over many addresses gets one guess from each.
  Only the owner and the attacker at one and the same address and account cannot be
  told apart: there the pair's wait applies to both.
  The answer never says whether an account exists: a missing account gets the same 401
  after the same work (a hash verified against a dummy).
- A state-changing request authenticated by cookie needs the session's CSRF token in
  ``X-CSRF-Token`` and a same-origin ``Origin`` (and no cross-site Sec-Fetch-Site).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError

from recordings_service import auditing, people
from recordings_service.auditing import Origin
from recordings_service.auth import Actor
from recordings_service.errors import Forbidden, TooManyAttempts, Unauthenticated
from recordings_service.services import Services
from storage import people_store
from storage.people_store import Failures, SessionRow

COOKIE = "rs_session"
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Verified when the account does not exist, so that both answers take as long.
_DUMMY_HASH = people.hash_password("not-a-real-password-for-timing")
# Seen-time updates at most this often (one small write a minute per active session).
TOUCH_EVERY = timedelta(minutes=1)


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class SignedIn:
    cookie_value: str
    session: SessionRow


# Failures a pair (account, address) may make before each further one doubles its wait.
FREE_PAIR_FAILURES = 3


def _retry_after(until: datetime, now: datetime) -> TooManyAttempts:
    return TooManyAttempts(max(1, int((until - now).total_seconds() + 0.999)))


async def _check_allowed(services: Services, pair: str, capped: list[str],
                         now: datetime) -> None:
    """Refuses (429) a pair that is waiting, and a pair with failures of its own while its
    account or address is past its limit."""
    window = timedelta(minutes=services.config.auth_failure_window_minutes)
    async with services.database.read() as conn:
        mine = await people_store.failures(conn, pair)
        if mine is None or now - mine.window_start >= window:
            return  # a clean pair is always heard
        found = [mine, *[await people_store.failures(conn, key) for key in capped]]
    # The longest wait: a Retry-After that the next try would only meet again is no use.
    until = max((f.locked_until for f in found
                 if f is not None and f.locked_until is not None), default=None)
    if until is not None and until > now:
        raise _retry_after(until, now)


def _pair_wait(count: int, window: timedelta) -> timedelta | None:
    if count < FREE_PAIR_FAILURES:
        return None
    return min(timedelta(seconds=2 ** (count - FREE_PAIR_FAILURES)), window)


async def _count_failure(services: Services, key: str, limit: int | None,
                         now: datetime) -> bool:
    """Counts a failure; True when this one locks the key. ``limit`` None: a pair, whose
    wait grows with each failure."""
    window = timedelta(minutes=services.config.auth_failure_window_minutes)
    for attempt in range(5):
        try:
            async with services.database.write() as conn:
                found = await people_store.failures(conn, key, for_update=True)
                exists = found is not None
                if found is None or now - found.window_start >= window:
                    found = Failures(0, now, None)
                count = found.count + 1
                if limit is None:
                    wait = _pair_wait(count, window)
                    locked = None if wait is None else now + wait
                else:
                    locked = found.window_start + window if count >= limit else None
                value = Failures(count, found.window_start, locked)
                if exists:
                    await people_store.update_failures(conn, key, value)
                else:
                    # Never an update here: a row another request inserted after our read
                    # would be overwritten with our count (a lost update).
                    await people_store.insert_failures(conn, key, value)
            return locked is not None
        except IntegrityError:
            # Another request (or replica) counted the first failure of this key at the
            # same moment: count again on top of it.
            if attempt == 4:
                raise
    return False


async def sign_in(services: Services, name: str, password: str, origin: Origin,
                  ) -> SignedIn:
    config, now = services.config, services.clock()
    account_key, address_key = f"account:{name}", f"address:{origin.client_ip}"
    pair_key = f"pair:{origin.client_ip}|{name}"
    await _check_allowed(services, pair_key, [account_key, address_key], now)
    async with services.database.read() as conn:
        user = await people_store.get_user(conn, name)
    valid = people.verify_password(user.password_hash if user else _DUMMY_HASH, password)
    if user is None or not valid or user.disabled_at is not None:
        reason = "disabled" if user is not None and valid else "invalid_credentials"
        locked = await _count_failure(services, pair_key, None, now)
        locked = await _count_failure(services, account_key,
                                      config.auth_max_failures_per_account, now) or locked
        locked = await _count_failure(services, address_key,
                                      config.auth_max_failures_per_address, now) or locked
        # The account is named in the log only when it exists: a mistyped name can be a
        # password typed into the wrong field.
        detail = {"account": name if user is not None else None}
        await auditing.record(services, auditing.event(
            auditing.ANONYMOUS, origin, "sign_in", "denied", reason=reason, detail=detail))
        if locked:
            await auditing.record(services, auditing.event(
                auditing.ANONYMOUS, origin, "sign_in_lockout", "denied",
                reason="too_many_attempts", detail=detail))
        raise Unauthenticated("the name or the password is wrong",
                              reason="invalid_credentials")
    async with services.database.write() as conn:
        await people_store.clear_failures(conn, pair_key)
    return await open_session(services, user.name, user.roles, origin, "password",
                              user.agent_id)


async def open_session(services: Services, name: str, roles: tuple[str, ...],
                       origin: Origin, method: str, agent_id: str | None = None) -> SignedIn:
    """A new session for a person whose identity was just proven (by password or SSO)."""
    now = services.clock()
    cookie_value = secrets.token_urlsafe(32)
    session = SessionRow(
        id_hash=_hash(cookie_value), user_name=name, roles=roles,
        csrf_token=secrets.token_urlsafe(32), created_at=now, last_seen_at=now,
        expires_at=now + timedelta(hours=services.config.auth_session_lifetime_hours),
        agent_id=agent_id)
    async with services.database.write() as conn:
        await people_store.insert_session(conn, session)
        await people_store.signed_in(conn, name, now)
    await auditing.record(services, auditing.event(
        Actor(name, frozenset(roles), agent_id), origin, "sign_in", "allowed",
        detail={"method": method}))
    return SignedIn(cookie_value, session)


def expires_at(services: Services, session: SessionRow) -> datetime:
    """When the session ends if unused: the idle timeout, capped by its lifetime."""
    idle = session.last_seen_at + timedelta(minutes=services.config.auth_session_idle_minutes)
    return min(idle, session.expires_at)


async def _standing(services: Services, id_hash: str,
                    ) -> tuple[SessionRow, people_store.UserRow] | None:
    """The session of this id hash and its account, when the session still stands: not
    signed out or ended by a password reset, not expired, its account not disabled."""
    async with services.database.read() as conn:
        session = await people_store.get_session(conn, id_hash)
        user = None if session is None else await people_store.get_user(conn,
                                                                         session.user_name)
    if session is None or user is None or user.disabled_at is not None \
            or services.clock() >= expires_at(services, session):
        return None
    return session, user


async def authenticate(services: Services, cookie_value: str) -> SessionRow | None:
    """The live session behind a cookie, its seen-time refreshed; None when unknown,
    expired or its account disabled."""
    found = await _standing(services, _hash(cookie_value))
    if found is None:
        return None
    session, now = found[0], services.clock()
    if now - session.last_seen_at >= TOUCH_EVERY:
        async with services.database.write() as conn:
            await people_store.touch_session(conn, session.id_hash, now)
    return session


async def person_of(services: Services, id_hash: str) -> Actor | None:
    """The person behind a session that still stands, with the roles their account holds
    now; None otherwise. A playback link made in a session re-checks its maker with this,
    never by name alone (a token of the same name must not lend it its roles)."""
    found = await _standing(services, id_hash)
    if found is None:
        return None
    user = found[1]
    return Actor(user.name, frozenset(user.roles), user.agent_id)


async def sign_out(services: Services, session: SessionRow, origin: Origin) -> None:
    async with services.database.write() as conn:
        await people_store.delete_session(conn, session.id_hash)
    await auditing.record(services, auditing.event(
        Actor(session.user_name, frozenset(session.roles)), origin, "sign_out", "allowed"))


def check_csrf(session: SessionRow, method: str, csrf_header: str | None,
               fetch_site: str | None, same_origin: bool) -> None:
    """Raises 403 ``csrf`` unless a state-changing request is same-origin (``Origin``
    names this site's scheme, host and port) and carries the session's token."""
    if method not in STATE_CHANGING:
        return
    if fetch_site not in (None, "same-origin") or not same_origin or csrf_header is None \
            or not hmac.compare_digest(csrf_header, session.csrf_token):
        raise Forbidden("csrf", "a change made with a session cookie needs the session's "
                                "X-CSRF-Token and a same-origin Origin")


async def sweep(services: Services) -> int:
    """The scheduled clean-up of ended sessions, spent failure counts and abandoned SSO
    logins (the tables would otherwise only grow)."""
    config, now = services.config, services.clock()
    async with services.database.write() as conn:
        return await people_store.sweep(
            conn, now, idle_before=now - timedelta(minutes=config.auth_session_idle_minutes),
            window_before=now - timedelta(minutes=config.auth_failure_window_minutes),
            logins_before=now - timedelta(minutes=10))
