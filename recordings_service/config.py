"""Configuration: the shipped TOML, an operator's TOML over it, then environment and flags.

Read and validated once at start; the result is immutable.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from recordings_service.errors import ConfigError
from recordings_service.quality_forms import QualityForm, parse_forms
from storage import erasure_ledger

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
ROLES = frozenset({"ingest", "supervisor", "compliance", "auditor", "agent"})
LEGAL_BASES = frozenset({"contract", "legitimate_interest", "consent", "legal_obligation"})


class Secret:
    """Holds a value whose repr must never reach a log (database URLs carry passwords)."""

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')" if self._value else "Secret('')"

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True)
class Purpose:
    name: str
    legal_basis: str
    retention_months: int
    access_roles: frozenset[str]


@dataclass(frozen=True)
class Config:
    data_dir: Path
    purposes: Mapping[str, Purpose]
    quality_forms: Mapping[str, QualityForm]
    host: str = "127.0.0.1"
    port: int = 8080
    shutdown_timeout: float = 60.0
    workers: int = 1
    event_loop: str = "asyncio"  # or "uvloop"
    # Proxies whose X-Forwarded-For names the client (a request from anywhere else is
    # taken to come from its own address).
    trusted_proxies: tuple[IPNetwork, ...] = ()
    blob_store: str = "filesystem"
    s3_endpoint_url: str = ""
    s3_bucket: str = ""
    s3_region: str = "us-east-1"
    s3_prefix: str = ""
    s3_timeout_seconds: float = 10.0
    # "governance" or "compliance": blobs are written under S3 Object Lock (WORM).
    s3_object_lock: str = ""
    database_url: Secret = field(default_factory=lambda: Secret(""))
    # PostgreSQL connections each serve process keeps (and half as many more in bursts).
    database_pool_size: int = 32
    max_upload_bytes: int = 2 * 1024**3
    body_idle_timeout_seconds: float = 30.0
    max_concurrent_uploads: int = 64
    max_uploads_per_client: int = 16
    body_min_bytes_per_second: int = 1024
    min_free_disk_bytes: int = 64 * 1024**2
    link_ttl_seconds: int = 600
    audit_origin: str = "recordings-service/audit"
    checkpoint_interval_seconds: int = 300
    checkpoint_every_entries: int = 1000
    checkpoint_max_delay_seconds: float = 10.0
    checkpoint_file: Path | None = None
    stale_after_seconds: int = 900
    # Entries older than this many days move to the audit archive daily; 0: never.
    audit_archive_after_days: int = 0
    keys_backend: str = "file"
    root_key_file: Path | None = None
    pkcs11_module: str = ""
    pkcs11_token_label: str = ""
    pkcs11_key_label: str = ""
    pkcs11_pin: Secret = field(default_factory=lambda: Secret(""))
    key_refresh_interval_seconds: int = 30
    rewrap_interval_seconds: int = 300
    rewrap_batch: int = 500
    purge_interval_seconds: int = 3600
    purge_batch: int = 500
    # Call records: matched to recordings this long after the call ended; a recording
    # shorter than min_ratio of the answered call is short; records kept this many days.
    coverage_grace_minutes: int = 15
    coverage_min_ratio: float = 0.9
    coverage_retention_days: int = 90
    coverage_interval_seconds: int = 60
    # The FreeSWITCH channel variables naming the call (as its recording's call_id), the
    # agent and the queue in mod_json_cdr posts.
    freeswitch_call_id_variable: str = "uuid"
    freeswitch_agent_variable: str = "cc_agent"
    freeswitch_queue_variable: str = "cc_queue"
    backup_destination: Path | None = None
    auth_session_idle_minutes: int = 30
    auth_session_lifetime_hours: int = 12
    auth_max_failures_per_account: int = 5
    auth_max_failures_per_address: int = 20
    auth_failure_window_minutes: int = 15
    # Single sign-on ([auth.oidc]); off while oidc_issuer is empty.
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: Secret = field(default_factory=lambda: Secret(""))
    oidc_redirect_url: str = ""
    oidc_scopes: str = "openid email"
    oidc_name_claim: str = "email"
    oidc_roles_claim: str = "groups"
    # Where a person given the agent role finds their agent id.
    oidc_agent_id_claim: str = "agent_id"
    oidc_role_map: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    scheduler_enabled: bool = True
    log_level: str = "INFO"

    @property
    def checkpoint_path(self) -> Path:
        return self.checkpoint_file or self.data_dir / "audit-checkpoints.jsonl"

    @property
    def root_key_path(self) -> Path:
        return self.root_key_file or self.data_dir / "root.key"

    @property
    def erasure_ledger_path(self) -> Path:
        return self.data_dir / erasure_ledger.FILE_NAME

    def with_overrides(self, **changes: Any) -> Config:
        return replace(self, **changes)


def shipped_config_path() -> Path:
    """The defaults: packaged beside this module in a wheel, in ``config/`` in a checkout."""
    packaged = Path(__file__).with_name("recordings.toml")
    if packaged.exists():
        return packaged
    return Path(__file__).resolve().parents[1] / "config" / "recordings.toml"


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from None


PURPOSE_KEYS = frozenset({"legal_basis", "retention_months", "access_roles"})


def _refuse_unknown_keys(shipped: Mapping[str, Any], given: Mapping[str, Any],
                         path: Path) -> None:
    """Every key the service reads is in the shipped file; anything else is a typo
    (``[sever] port``, ``retention_month``) that would otherwise pass silently."""
    for section, table in given.items():
        if section not in shipped:
            raise ConfigError(f"{path}: unknown section [{section}]")
        if not isinstance(table, Mapping):
            raise ConfigError(f"{path}: [{section}] must be a table")
        for key, value in table.items():
            if section == "purposes":
                if not isinstance(value, Mapping):
                    raise ConfigError(f"{path}: [purposes.{key}] must be a table")
                unknown = sorted(set(value) - PURPOSE_KEYS)
                if unknown:
                    raise ConfigError(f"{path}: unknown key [purposes.{key}] {unknown[0]} "
                                      f"(known: {', '.join(sorted(PURPOSE_KEYS))})")
            elif section == "quality" and key == "forms":
                continue  # any form names; quality_forms.parse_forms checks each one
            elif key not in shipped[section]:
                raise ConfigError(f"{path}: unknown key [{section}] {key} (known: "
                                  f"{', '.join(sorted(shipped[section]))})")
            elif isinstance(shipped[section][key], Mapping):
                if not isinstance(value, Mapping):
                    raise ConfigError(f"{path}: [{section}.{key}] must be a table")
                known = shipped[section][key]
                unknown = sorted(set(value) - set(known))
                if unknown:
                    raise ConfigError(f"{path}: unknown key [{section}.{key}] {unknown[0]} "
                                      f"(known: {', '.join(sorted(known))})")


def _get(raw: Mapping[str, Any], section: str, key: str, kind: type, default: Any) -> Any:
    value = raw.get(section, {}).get(key, default)
    if kind is float and isinstance(value, int):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
        raise ConfigError(f"[{section}] {key} must be {names.get(kind, kind.__name__)}")
    return value


def _networks(values: list[Any]) -> tuple[IPNetwork, ...]:
    try:
        if not all(isinstance(v, str) for v in values):
            raise ValueError
        return tuple(ipaddress.ip_network(v, strict=False) for v in values)
    except ValueError:
        raise ConfigError("[server] trusted_proxies must be a list of addresses or networks "
                          "(e.g. \"10.0.0.0/8\", \"::1\")") from None


def _get_nested(raw: Mapping[str, Any], section: str, table: str, key: str) -> str:
    value = raw.get(section, {}).get(table, {}).get(key, "")
    if not isinstance(value, str):
        raise ConfigError(f"[{section}.{table}] {key} must be a string")
    return value


def _oidc(raw: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    table = raw.get("auth", {}).get("oidc", {})
    if not isinstance(table, Mapping):
        raise ConfigError("[auth.oidc] must be a table")
    values = {k: _get_nested(raw, "auth", "oidc", k)
              for k in ("issuer", "client_id", "redirect_url", "scopes", "name_claim",
                        "roles_claim", "agent_id_claim")}
    role_map: dict[str, tuple[str, ...]] = {}
    for claim_value, roles in dict(table.get("role_map", {})).items():
        if not isinstance(roles, list) or not roles or not set(roles) <= ROLES:
            raise ConfigError(f"[auth.oidc.role_map] {claim_value!r} must be a list of "
                              f"{sorted(ROLES)}")
        role_map[claim_value] = tuple(roles)
    if values["issuer"]:
        missing = [k for k in ("client_id", "redirect_url") if not values[k]]
        if missing:
            raise ConfigError(f"[auth.oidc] {missing[0]} must be set when issuer is set")
        if "openid" not in values["scopes"].split():
            raise ConfigError("[auth.oidc] scopes must include openid")
    return {"oidc_issuer": values["issuer"].rstrip("/"),
            "oidc_client_id": values["client_id"],
            "oidc_client_secret": Secret(environ.get("RECORDINGS_OIDC_CLIENT_SECRET", "")),
            "oidc_redirect_url": values["redirect_url"],
            "oidc_scopes": values["scopes"] or "openid email",
            "oidc_name_claim": values["name_claim"] or "email",
            "oidc_roles_claim": values["roles_claim"] or "groups",
            "oidc_agent_id_claim": values["agent_id_claim"] or "agent_id",
            "oidc_role_map": role_map}


def _purposes(raw: Mapping[str, Any]) -> dict[str, Purpose]:
    purposes: dict[str, Purpose] = {}
    for name, spec in raw.get("purposes", {}).items():
        where = f"[purposes.{name}]"
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{where} must be a table")
        basis = spec.get("legal_basis")
        months = spec.get("retention_months")
        roles = spec.get("access_roles", [])
        if basis not in LEGAL_BASES:
            raise ConfigError(f"{where} legal_basis must be one of {sorted(LEGAL_BASES)}")
        if not isinstance(months, int) or isinstance(months, bool) or months < 0:
            raise ConfigError(f"{where} retention_months must be a non-negative integer")
        if not isinstance(roles, list) or not set(roles) <= ROLES:
            raise ConfigError(f"{where} access_roles must be a list of {sorted(ROLES)}")
        purposes[name] = Purpose(name, basis, months, frozenset(roles))
    if not purposes:
        raise ConfigError("at least one purpose must be configured")
    return purposes


def load_config(
    path: Path | None = None,
    environ: Mapping[str, str] = os.environ,
    **overrides: Any,
) -> Config:
    """Builds the configuration; ``overrides`` are command-line flags (None = not given)."""
    raw = _read_toml(shipped_config_path())
    if path is None and environ.get("RECORDINGS_CONFIG"):
        path = Path(environ["RECORDINGS_CONFIG"])
    if path is not None:
        given = _read_toml(path)
        _refuse_unknown_keys(raw, given, path)
        raw = _merge(raw, given)

    data_dir = Path(overrides.get("data_dir") or environ.get("RECORDINGS_DATA_DIR")
                    or _get(raw, "storage", "data_dir", str, "./var"))
    port_text = overrides.get("port") or environ.get("RECORDINGS_PORT")
    try:
        port = int(port_text) if port_text else _get(raw, "server", "port", int, 8080)
    except ValueError:
        raise ConfigError("the port must be a number") from None
    blob_store = environ.get("RECORDINGS_BLOB_STORE") or _get(raw, "storage", "blob_store",
                                                               str, "filesystem")
    if blob_store not in {"filesystem", "s3"}:
        raise ConfigError(f"blob store {blob_store!r} is not supported (use 'filesystem' or "
                          f"'s3')")
    s3 = {k: environ.get(f"RECORDINGS_S3_{k.upper()}") or _get_nested(raw, "storage", "s3", k)
          for k in ("endpoint_url", "bucket", "region", "prefix", "object_lock")}
    if s3["object_lock"] not in (None, "", "governance", "compliance"):
        raise ConfigError("[storage.s3] object_lock must be \"governance\" or \"compliance\" "
                          "(or left out)")
    if s3["object_lock"] and blob_store != "s3":
        raise ConfigError("[storage.s3] object_lock needs the s3 blob store")
    s3_timeout = raw.get("storage", {}).get("s3", {}).get("timeout_seconds", 10.0)
    if isinstance(s3_timeout, bool) or not isinstance(s3_timeout, int | float) \
            or not 0 < s3_timeout <= 600:
        raise ConfigError("[storage.s3] timeout_seconds must be a number of seconds, "
                          "above 0 and at most 600")
    if blob_store == "s3" and not s3["bucket"]:
        raise ConfigError("the s3 blob store needs a bucket ([storage.s3] bucket or "
                          "RECORDINGS_S3_BUCKET)")
    workers = _get(raw, "server", "workers", int, 1)
    if not 1 <= workers <= 64:
        raise ConfigError("[server] workers must be between 1 and 64")
    event_loop = _get(raw, "server", "event_loop", str, "asyncio")
    if event_loop not in {"asyncio", "uvloop"}:
        raise ConfigError("[server] event_loop must be 'asyncio' or 'uvloop'")
    trusted_proxies = _networks(_get(raw, "server", "trusted_proxies", list, []))
    checkpoint_file = _get(raw, "audit", "checkpoint_file", str, "")
    level = _get(raw, "logging", "level", str, "INFO").upper()
    keys_backend = _get(raw, "keys", "backend", str, "file")
    if keys_backend not in {"file", "pkcs11"}:
        raise ConfigError("[keys] backend must be 'file' or 'pkcs11'")
    root_key_file = _get(raw, "keys", "root_key_file", str, "")
    pkcs11 = {k: _get_nested(raw, "keys", "pkcs11", k)
              for k in ("module", "token_label", "key_label")}
    if keys_backend == "pkcs11":
        empty = [k for k, v in pkcs11.items() if not v]
        if empty:
            raise ConfigError(f"[keys.pkcs11] {empty[0]} must be set for the pkcs11 backend")
        if not environ.get("RECORDINGS_PKCS11_PIN"):
            raise ConfigError("the pkcs11 key backend needs the token's PIN in the "
                              "RECORDINGS_PKCS11_PIN environment variable")
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError("[logging] level must be DEBUG, INFO, WARNING or ERROR")

    oidc = _oidc(raw, environ)
    config = Config(
        data_dir=data_dir,
        purposes=_purposes(raw),
        quality_forms=parse_forms(raw),
        host=overrides.get("host") or environ.get("RECORDINGS_HOST")
        or _get(raw, "server", "host", str, "127.0.0.1"),
        port=port,
        shutdown_timeout=_get(raw, "server", "shutdown_timeout", float, 60.0),
        workers=workers,
        event_loop=event_loop,
        trusted_proxies=trusted_proxies,
        blob_store=blob_store,
        s3_endpoint_url=s3["endpoint_url"],
        s3_bucket=s3["bucket"],
        s3_region=s3["region"] or "us-east-1",
        s3_prefix=s3["prefix"],
        s3_timeout_seconds=float(s3_timeout),
        s3_object_lock=s3["object_lock"] or "",
        database_url=Secret(environ.get("RECORDINGS_DATABASE_URL")
                            or _get(raw, "storage", "database_url", str, "")),
        database_pool_size=_get(raw, "storage", "database_pool_size", int, 32),
        max_upload_bytes=_get(raw, "limits", "max_upload_bytes", int, 2 * 1024**3),
        body_idle_timeout_seconds=_get(raw, "limits", "body_idle_timeout_seconds", float, 30.0),
        max_concurrent_uploads=_get(raw, "limits", "max_concurrent_uploads", int, 64),
        max_uploads_per_client=_get(raw, "limits", "max_uploads_per_client", int, 16),
        body_min_bytes_per_second=_get(raw, "limits", "body_min_bytes_per_second", int, 1024),
        min_free_disk_bytes=_get(raw, "limits", "min_free_disk_bytes", int, 64 * 1024**2),
        link_ttl_seconds=_get(raw, "playback", "link_ttl_seconds", int, 600),
        audit_origin=_get(raw, "audit", "origin", str, "recordings-service/audit"),
        checkpoint_interval_seconds=_get(raw, "audit", "checkpoint_interval_seconds", int, 300),
        checkpoint_every_entries=_get(raw, "audit", "checkpoint_every_entries", int, 1000),
        checkpoint_max_delay_seconds=_get(raw, "audit", "checkpoint_max_delay_seconds", float,
                                          10.0),
        checkpoint_file=Path(checkpoint_file) if checkpoint_file else None,
        stale_after_seconds=_get(raw, "audit", "stale_after_seconds", int, 900),
        audit_archive_after_days=_get(raw, "audit", "archive_after_days", int, 0),
        keys_backend=keys_backend,
        root_key_file=Path(root_key_file) if root_key_file else None,
        pkcs11_module=pkcs11["module"],
        pkcs11_token_label=pkcs11["token_label"],
        pkcs11_key_label=pkcs11["key_label"],
        pkcs11_pin=Secret(environ.get("RECORDINGS_PKCS11_PIN", "")),
        key_refresh_interval_seconds=_get(raw, "keys", "refresh_interval_seconds", int, 30),
        rewrap_interval_seconds=_get(raw, "keys", "rewrap_interval_seconds", int, 300),
        rewrap_batch=_get(raw, "keys", "rewrap_batch", int, 500),
        purge_interval_seconds=_get(raw, "purge", "interval_seconds", int, 3600),
        purge_batch=_get(raw, "purge", "batch", int, 500),
        coverage_grace_minutes=_get(raw, "coverage", "grace_minutes", int, 15),
        coverage_min_ratio=_get(raw, "coverage", "min_ratio", float, 0.9),
        coverage_retention_days=_get(raw, "coverage", "retention_days", int, 90),
        coverage_interval_seconds=_get(raw, "coverage", "interval_seconds", int, 60),
        freeswitch_call_id_variable=_get(raw, "coverage", "freeswitch_call_id_variable", str,
                                         "uuid"),
        freeswitch_agent_variable=_get(raw, "coverage", "freeswitch_agent_variable", str,
                                       "cc_agent"),
        freeswitch_queue_variable=_get(raw, "coverage", "freeswitch_queue_variable", str,
                                       "cc_queue"),
        backup_destination=Path(_get(raw, "backup", "destination", str, ""))
        if _get(raw, "backup", "destination", str, "") else None,
        auth_session_idle_minutes=_get(raw, "auth", "session_idle_minutes", int, 30),
        auth_session_lifetime_hours=_get(raw, "auth", "session_lifetime_hours", int, 12),
        auth_max_failures_per_account=_get(raw, "auth", "max_failures_per_account", int, 5),
        auth_max_failures_per_address=_get(raw, "auth", "max_failures_per_address", int, 20),
        auth_failure_window_minutes=_get(raw, "auth", "failure_window_minutes", int, 15),
        **oidc,
        scheduler_enabled=_get(raw, "scheduler", "enabled", bool, True),
        log_level=level,
    )
    for name in ("max_upload_bytes", "body_idle_timeout_seconds", "max_concurrent_uploads",
                 "max_uploads_per_client",
                 "link_ttl_seconds", "checkpoint_interval_seconds",
                 "checkpoint_every_entries", "checkpoint_max_delay_seconds",
                 "rewrap_interval_seconds", "rewrap_batch", "key_refresh_interval_seconds",
                 "stale_after_seconds", "auth_session_idle_minutes",
                 "auth_session_lifetime_hours", "auth_max_failures_per_account",
                 "auth_max_failures_per_address", "auth_failure_window_minutes",
                 "purge_interval_seconds", "purge_batch", "database_pool_size",
                 "coverage_retention_days", "coverage_interval_seconds"):
        if getattr(config, name) <= 0:
            raise ConfigError(f"{name} must be positive")
    if not config.freeswitch_call_id_variable:
        raise ConfigError("coverage freeswitch_call_id_variable must name a variable")
    if config.coverage_grace_minutes < 0:
        raise ConfigError("coverage grace_minutes must not be negative (0: at once)")
    if not 0 < config.coverage_min_ratio <= 1:
        raise ConfigError("coverage min_ratio must be more than 0 and at most 1")
    if config.audit_archive_after_days < 0:
        raise ConfigError("audit archive_after_days must be 0 (never) or a number of days")
    if config.body_min_bytes_per_second < 0:
        raise ConfigError("body_min_bytes_per_second must not be negative (0: no floor)")
    if config.min_free_disk_bytes < 0:
        raise ConfigError("min_free_disk_bytes must not be negative")
    return config
