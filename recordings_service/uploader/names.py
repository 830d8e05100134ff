"""Metadata from a recording's file name, through a pattern such as MixMonitor's
``{call_id}-{started_at}.wav``.

A pattern is literal text with placeholders in braces: the upload fields (``call_id``,
``started_at``, ``ended_at``, ``agent_id``, ``customer_id``, ``phone_number``, ``queue``,
``direction``, ``leg``) and ``{ignore}`` for a part to skip. A time matches as much as looks
like a time (digits and ``-_.:+TZ``); any other placeholder matches one or more characters
other than ``/``, as few as the rest of the pattern allows.

``{leg}`` is the side of the call a file holds, as PBXs that record each side to its own
file name it (baresip's ``-dec``/``-enc``, MixMonitor's ``r()``/``t()`` files): ``caller``,
``callee`` or ``mixed``, or a name that ``leg_names`` maps to one. A pattern with ``{leg}``
but no ``{call_id}`` takes the call id from the name without the leg's part, so that both
files of a call name one call.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePath

FIELDS = ("call_id", "started_at", "ended_at", "agent_id", "customer_id", "phone_number",
          "queue", "direction", "leg")
LEGS = ("caller", "callee", "mixed")
_SEPARATORS = "-_. "
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")

# The forms of a time that file names use (a colon is rare in a file name); a time
# without a zone is UTC.
_TIME_FORMATS = ("%Y%m%d-%H%M%S", "%Y%m%dT%H%M%SZ", "%Y%m%dT%H%M%S", "%Y-%m-%d-%H-%M-%S",
                 "%Y-%m-%d_%H-%M-%S", "%Y-%m-%dT%H-%M-%SZ", "%Y%m%d%H%M%S",
                 "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S%z")
_TIME_SHAPE = r"[0-9][0-9TZ:._+\-]*"
_EPOCH = re.compile(r"[0-9]{9,11}(\.[0-9]{1,6})?")


class PatternError(ValueError):
    pass


@dataclass(frozen=True)
class NamePattern:
    regex: re.Pattern[str]
    # A PBX's name for a leg -> caller, callee or mixed.
    leg_names: Mapping[str, str] = field(default_factory=dict)


def parse_leg_names(text: str) -> dict[str, str]:
    """``dec=caller,enc=callee`` as a mapping, or PatternError."""
    names = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        given, _, leg = pair.partition("=")
        if not given.strip() or leg.strip() not in LEGS:
            raise PatternError(f"leg names are NAME=LEG pairs, LEG one of {', '.join(LEGS)}")
        names[given.strip()] = leg.strip()
    return names


def compile_pattern(pattern: str, leg_names: Mapping[str, str] | None = None) -> NamePattern:
    """The pattern as a regular expression over a whole file name."""
    return NamePattern(_regex(pattern), dict(leg_names or {}))


def _regex(pattern: str) -> re.Pattern[str]:
    parts, names, at = [], set(), 0
    for match in _PLACEHOLDER.finditer(pattern):
        name = match.group(1)
        if name != "ignore" and name not in FIELDS:
            raise PatternError(f"unknown placeholder {{{name}}}; use one of "
                               f"{', '.join(FIELDS)} or ignore")
        if name in names and name != "ignore":
            raise PatternError(f"{{{name}}} appears twice")
        names.add(name)
        parts.append(re.escape(pattern[at:match.start()]))
        shape = _TIME_SHAPE if name in ("started_at", "ended_at") else "[^/]+?"
        parts.append(shape if name == "ignore" else f"(?P<{name}>{shape})")
        at = match.end()
    parts.append(re.escape(pattern[at:]))
    if "{" in pattern[at:] or "}" in pattern[at:]:
        raise PatternError("a brace that is not a placeholder")
    return re.compile("".join(parts))


def parse_time(text: str) -> str:
    """A time from a file name as RFC 3339 (UTC), or PatternError."""
    if _EPOCH.fullmatch(text):
        at = datetime.fromtimestamp(float(text), UTC)
    else:
        for form in _TIME_FORMATS:
            try:
                at = datetime.strptime(text, form)  # noqa: DTZ007 - zone set just below
            except ValueError:
                continue
            break
        else:
            raise PatternError("the time in the file name has no form the uploader knows")
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S") + (f".{at.microsecond:06d}" if at.microsecond
                                                else "") + "Z"


def fields_from_name(pattern: NamePattern, name: str) -> dict[str, str] | None:
    """The upload fields a file name carries, or None when it does not match."""
    match = pattern.regex.fullmatch(name)
    if match is None:
        return None
    fields = {key: value for key, value in match.groupdict().items() if value is not None}
    for key in ("started_at", "ended_at"):
        if key in fields:
            fields[key] = parse_time(fields[key])
    if "leg" in fields:
        leg = pattern.leg_names.get(fields["leg"], fields["leg"])
        if leg not in LEGS:
            raise PatternError(f"the leg in the file name is none of {', '.join(LEGS)} "
                               f"nor a name --leg-names gives")
        fields["leg"] = leg
        if "call_id" not in fields:
            start, end = match.span("leg")
            before, after = name[:start], name[end:]
            rest = before.rstrip(_SEPARATORS) + after if before else after.lstrip(_SEPARATORS)
            call_id = PurePath(rest).stem
            if call_id:
                fields["call_id"] = call_id
    return fields
