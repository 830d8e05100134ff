"""FreeSWITCH's ``mod_json_cdr`` posts, read as call records.

mod_json_cdr POSTs one JSON document per call leg, in one of the shapes its ``encode``
parameter picks: the JSON itself (``false``), a form field ``cdr=`` (``true``), or base64
(``base64``); with ``encode-values`` (on by default) each value is URL-encoded as well. The
call's facts are channel variables: ``start_uepoch``/``answer_uepoch``/``end_uepoch``
(microseconds; ``answer`` is 0 when never answered), ``direction``, ``caller_id_number``,
``destination_number``. The variable that names the call (the id the recording carries) is
configured: ``[coverage] freeswitch_call_id_variable``, ``uuid`` by default.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote

from recordings_service import calls
from recordings_service.errors import BadRequest


def _refused(detail: str) -> BadRequest:
    return BadRequest("invalid_call_record", f"the FreeSWITCH CDR: {detail}")


def decode_body(raw: bytes, content_type: str) -> bytes:
    """The JSON document out of whichever ``encode`` shape mod_json_cdr used."""
    stripped = raw.strip()
    if content_type == "application/x-www-form-urlencoded" or stripped.startswith(b"cdr="):
        try:
            fields = parse_qs(raw.decode("ascii"), max_num_fields=4, strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            raise _refused("the form is not valid") from None
        if len(fields.get("cdr", [])) != 1:
            raise _refused("the form has no single cdr field")
        return fields["cdr"][0].encode()
    if stripped[:1] not in (b"{", b""):
        try:
            return base64.b64decode(stripped, validate=True)
        except (binascii.Error, ValueError):
            raise _refused("the body is neither JSON, a cdr= form nor base64") from None
    return raw


def _text(variables: Mapping[str, Any], name: str) -> str | None:
    value = variables.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _refused(f"variable {name} is not a string")
    return unquote(value)  # encode-values (the default) URL-encodes every value


def _time(variables: Mapping[str, Any], name: str) -> datetime | None:
    """``<name>_uepoch`` (microseconds) or ``<name>_epoch`` (seconds); 0 means never."""
    for suffix, scale in (("_uepoch", 1_000_000), ("_epoch", 1)):
        text = _text(variables, name + suffix)
        if text is None:
            continue
        if not text.isascii() or not text.isdigit() or len(text) > 20:
            raise _refused(f"variable {name}{suffix} is not a whole number")
        if int(text) == 0:
            return None
        seconds = int(text) / scale
        if not math.isfinite(seconds) or seconds > 253_402_300_799:  # 9999-12-31
            raise _refused(f"variable {name}{suffix} is out of range")
        return datetime.fromtimestamp(seconds, UTC)
    return None


def to_record(cdr: Any, call_id_variable: str, agent_variable: str,
              queue_variable: str, source: str | None) -> dict[str, Any]:
    """One call record (as ``calls.parse_record`` gives it) from one mod_json_cdr post."""
    if not isinstance(cdr, dict) or not isinstance(cdr.get("variables"), dict):
        raise _refused("it has no variables object")
    variables = cdr["variables"]
    direction = _text(variables, "direction")
    started, answered, ended = (_time(variables, n) for n in ("start", "answer", "end"))
    if started is None or ended is None:
        raise _refused("start and end times are missing")
    number = _text(variables, "caller_id_number" if direction != "outbound"
                   else "destination_number")
    switch = cdr.get("switchname")
    raw = {
        "call_id": _text(variables, call_id_variable),
        "source": source or (switch if isinstance(switch, str) and switch else "freeswitch"),
        "started_at": started.isoformat(), "ended_at": ended.isoformat(),
        "answered_at": answered.isoformat() if answered else None,
        "direction": direction if direction in ("inbound", "outbound") else None,
        "agent_id": _text(variables, agent_variable),
        "queue": _text(variables, queue_variable),
        "phone_number": number,
    }
    return calls.parse_record(raw, f"the FreeSWITCH CDR ({call_id_variable})")
