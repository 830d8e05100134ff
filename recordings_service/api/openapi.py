"""The OpenAPI 3.1 document, built from the route table so it cannot drift from it."""

from __future__ import annotations

import re
from typing import Any

from recordings_service.api.routes import ROUTES, Route

_STATUS_TEXT = {200: "OK", 201: "Created", 206: "Partial Content", 400: "Bad Request",
                401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
                410: "Gone", 413: "Content Too Large", 415: "Unsupported Media Type",
                416: "Range Not Satisfiable", 422: "Unprocessable Content",
                408: "Request Timeout", 503: "Service Unavailable", 507: "Insufficient Storage",
                204: "No Content", 429: "Too Many Requests", 302: "Found"}

_PROBLEM = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "reason"],
    "properties": {"type": {"type": "string"}, "title": {"type": "string"},
                   "status": {"type": "integer"}, "detail": {"type": "string"},
                   "reason": {"type": "string"}},
}

_PURPOSE_STATE = {
    "type": "object",
    "properties": {"purpose": {"type": "string"}, "legal_basis": {"type": "string"},
                   "expires_at": {"type": "string", "format": "date-time"},
                   "active": {"type": "boolean"},
                   "withdrawn_at": {"type": ["string", "null"], "format": "date-time"},
                   "withdrawal_reason": {"type": ["string", "null"]}},
}

_RECORDING = {
    "type": "object",
    "required": ["id", "state"],
    "properties": {
        "id": {"type": "string"}, "call_id": {"type": "string"},
        "leg": {"type": "string", "enum": ["caller", "callee", "mixed"]},
        # GET /v1/recordings/{id} only: each recording of the call, this one included.
        "legs": {"type": "array", "items": {
            "type": "object", "properties": {"id": {"type": "string"},
                                             "leg": {"type": "string"}}}},
        "started_at": {"type": "string", "format": "date-time"},
        "ended_at": {"type": ["string", "null"], "format": "date-time"},
        "direction": {"type": ["string", "null"], "enum": ["inbound", "outbound", None]},
        "agent_id": {"type": ["string", "null"]}, "customer_id": {"type": ["string", "null"]},
        "phone_number": {"type": ["string", "null"]}, "queue": {"type": ["string", "null"]},
        "content_type": {"type": "string"}, "size_bytes": {"type": "integer"},
        "duration_seconds": {"type": ["number", "null"]}, "sha256": {"type": "string"},
        "audio_check": {"type": ["string", "null"], "enum": ["ok", "one_sided", "silent", None],
                        "description": "one_sided: a channel silent throughout (a side of "
                                       "the call not recorded); null: format not decoded"},
        "key_version": {"type": "integer"},
        "purposes": {"type": "array", "items": {"$ref": "#/components/schemas/PurposeState"}},
        "purge_at": {"type": ["string", "null"], "format": "date-time"},
        "legal_holds": {"type": "array", "items": {"type": "object"}},
        "restriction": {"type": ["object", "null"]},
        "state": {"type": "string", "enum": ["active", "purging", "purged"]},
        "created_at": {"type": "string", "format": "date-time"},
        # What the caller may hear the audio for now (empty when nothing).
        "allowed_purposes": {"type": "array", "items": {"type": "string"}},
    },
}

# Upload strings: at most 255 characters, no control characters (ingest._is_text).
_PRINTABLE = {"type": "string", "maxLength": 255, "pattern": "^[^\\x00-\\x1f\\x7f]*$"}


def _metadata(purposes: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["call_id", "started_at", "purposes"],
        "additionalProperties": False,
        "properties": {
            "call_id": {**_PRINTABLE, "pattern": "^[^\\x00-\\x1f\\x7f]*[^\\s\\x00-\\x1f\\x7f]"
                                                 "[^\\x00-\\x1f\\x7f]*$"},
            "started_at": {"type": "string", "format": "date-time"},
            "ended_at": {"type": ["string", "null"], "format": "date-time"},
            "direction": {"type": ["string", "null"], "enum": ["inbound", "outbound", None]},
            **{name: {**_PRINTABLE, "type": ["string", "null"]}
               for name in ("agent_id", "customer_id", "phone_number", "queue")},
            "purposes": {"type": "array", "minItems": 1,
                         "items": {"type": "string", "enum": purposes}},
            "sha256": {"type": ["string", "null"], "pattern": "^[0-9a-fA-F]{64}$"},
            "leg": {"type": "string", "enum": ["caller", "callee", "mixed"],
                    "description": "the side of the call the audio holds (default mixed); "
                                   "(call_id, leg) is the idempotency key"},
        },
    }


# What the handlers accept, so that generated requests (schemathesis) and clients agree
# with them: "reason" must hold a non-space character, references are optional strings.
_REASON = {"type": "string", "minLength": 1, "maxLength": 2000, "pattern": "\\S"}
_TEXT = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "\\S"}
_REFERENCE = {"type": ["string", "null"], "maxLength": 255}
_NULLABLE_TEXT = {"type": ["string", "null"], "maxLength": 255}


_TIME = {"type": "string", "format": "date-time"}
_CALL_RECORD = {
    "type": "object", "required": ["call_id", "started_at", "ended_at"],
    "additionalProperties": False,
    "properties": {
        "call_id": _TEXT, "started_at": _TIME, "ended_at": _TIME,
        "answered_at": {**_TIME, "type": ["string", "null"],
                        "description": "absent or null: not answered (nothing to record)"},
        "direction": {"type": ["string", "null"], "enum": ["inbound", "outbound", None]},
        "expect_recording": {"type": "boolean", "default": True},
        "source": {**_NULLABLE_TEXT, "description": "the PBX; default \"default\""},
        **{name: _NULLABLE_TEXT for name in ("agent_id", "queue", "customer_id")},
        "phone_number": {"type": ["string", "null"], "maxLength": 64},
    },
}


def _json_bodies(purposes: list[str]) -> dict[str, dict[str, Any]]:
    purpose = {"type": "string", "enum": purposes}
    return {
        "evaluation": {"type": "object", "required": ["form", "answers"],
                       "properties": {
                           "form": {"type": "string"},
                           "answers": {"type": "object", "additionalProperties": {
                               "type": ["boolean", "integer", "string"]}},
                           "comment": {"type": "string", "maxLength": 2000}}},
        "evaluation_response": {
            "type": "object", "required": ["response"],
            "properties": {"response": {"type": "string", "enum": [
                               "acknowledge", "dispute", "uphold"],
                               "description": "an agent acknowledges or disputes (with a "
                                              "comment); a reviewer upholds a dispute"},
                           "comment": {"type": "string", "maxLength": 2000}}},
        "evaluation_revision": {
            "type": "object", "required": ["answers", "comment"],
            "properties": {"answers": {"type": "object", "additionalProperties": {
                               "type": ["boolean", "integer", "string"]}},
                           "comment": _REASON}},
        "call_records": {"oneOf": [_CALL_RECORD, {"type": "array", "minItems": 1,
                                                  "maxItems": 1000, "items": _CALL_RECORD}]},
        "freeswitch_cdr": {"type": "object", "required": ["variables"],
                           "description": "mod_json_cdr's document: its channel variables "
                                          "hold the call's facts",
                           "properties": {"variables": {"type": "object"},
                                          "switchname": {"type": "string"}}},
        "collection": {"type": "object", "required": ["name"],
                       "properties": {"name": {"type": "string", "minLength": 1,
                                               "maxLength": 200, "pattern": "\\S"},
                                      "description": {"type": ["string", "null"],
                                                      "maxLength": 2000}}},
        "clip": {"type": "object", "required": ["recording_id", "start_seconds",
                                                "end_seconds"],
                 "properties": {"recording_id": {"type": "string", "minLength": 1,
                                                 "maxLength": 255, "pattern": "\\S"},
                                "start_seconds": {"type": "number", "minimum": 0,
                                                  "maximum": 10_000_000},
                                "end_seconds": {"type": "number", "minimum": 0,
                                                "maximum": 10_000_000},
                                "note": {"type": ["string", "null"], "maxLength": 2000}}},
        "moment": {"type": "object", "required": ["purpose", "at_seconds", "note"],
                   "properties": {
                       "purpose": purpose, "at_seconds": {"type": "number", "minimum": 0},
                       "end_seconds": {"type": ["number", "null"], "minimum": 0},
                       "note": {"type": "string", "minLength": 1, "maxLength": 500}}},
        "json": {"type": "object", "required": ["purpose"],
                 "properties": {"purpose": purpose, "renews": {
                     "type": "boolean",
                     "description": "replaces an expired link of the same listening"}}},
        "reason": {"type": "object", "required": ["reason"],
                   "properties": {"reason": _REASON, "request_reference": _REFERENCE}},
        # Changes that record a reason only (withdrawal, restriction, hold release).
        "reason_only": {"type": "object", "required": ["reason"],
                        "properties": {"reason": _REASON}},
        "redaction": {"type": "object", "required": ["spans", "reason"],
                      "additionalProperties": False, "properties": {
                          "spans": {"type": "array", "minItems": 1, "maxItems": 100,
                                    "items": {"type": "object",
                                              "required": ["start_ms", "end_ms"],
                                              "additionalProperties": False,
                                              "properties": {
                                                  "start_ms": {"type": "integer",
                                                               "minimum": 0},
                                                  "end_ms": {"type": "integer",
                                                             "minimum": 1},
                                                  "channel": {"enum": [0, 1, None]}}}},
                          "reason": {"type": "string", "enum": ["pci", "pii", "other"]},
                          "fill": {"type": "string", "enum": ["silence", "tone"]}}},
        "add_purpose": {"type": "object", "required": ["reason", "purpose"],
                        "properties": {"reason": _REASON, "purpose": purpose}},
        "hold": {"type": "object", "required": ["case_reference", "reason"],
                 "properties": {"case_reference": _TEXT, "reason": _REASON,
                                "recording_ids": {"type": "array", "minItems": 1,
                                                  "maxItems": 10_000,
                                                  "items": {"type": "string"}},
                                "customer_id": {"type": "string", "minLength": 1}},
                 # One or the other: a hold names its recordings or its data subject.
                 "oneOf": [{"required": ["recording_ids"]}, {"required": ["customer_id"]}]},
        "purge": {"type": "object", "properties": {"dry_run": {"type": "boolean"}}},
        "sign_in": {"type": "object", "required": ["name", "password"],
                    "properties": {"name": {"type": "string", "minLength": 1,
                                            "maxLength": 128},
                                   "password": {"type": "string", "maxLength": 1024}}},
        "subject": {"type": "object", "properties": {"request_reference": _REFERENCE}},
        "rectify": {"type": "object", "required": ["reason"], "minProperties": 2,
                    "properties": {
                        "reason": _REASON, "request_reference": _REFERENCE,
                        **{f: _NULLABLE_TEXT for f in ("agent_id", "customer_id",
                                                       "phone_number", "queue")},
                        "direction": {"type": ["string", "null"],
                                      "enum": ["inbound", "outbound", None]},
                        "ended_at": {"type": ["string", "null"], "format": "date-time"}}},
        "subject_request": {"type": "object", "required": ["type", "customer_id"],
                            "properties": {
                                "type": {"type": "string", "enum": [
                                    "access", "erasure", "restriction", "objection",
                                    "rectification"]},
                                "customer_id": {"type": "string", "minLength": 1,
                                                "maxLength": 255},
                                "request_reference": _REFERENCE,
                                "received_at": {"type": "string", "format": "date-time"}}},
    }


def _parameters(route: Route, purposes: list[str]) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", route.path)
    ]
    if route.operation_id == "listEvaluations":
        params += [{"name": n, "in": "query", "schema": {"type": "string"}}
                   for n in ("agent_id", "form", "from", "to", "cursor")]
        params.append({"name": "limit", "in": "query",
                       "schema": {"type": "integer", "minimum": 1, "maximum": 500}})
    if route.operation_id == "qualityReport":
        params += [{"name": n, "in": "query", "schema": {"type": "string",
                                                          "format": "date-time"}}
                   for n in ("from", "to")]
        params.append({"name": "format", "in": "query",
                       "schema": {"type": "string", "enum": ["json", "csv"]}})
    if route.operation_id in ("listCalls", "getCoverage"):
        params += [{"name": n, "in": "query", "schema": {"type": "string",
                                                          "format": "date-time"}}
                   for n in ("from", "to")]
        params += [{"name": n, "in": "query", "schema": {"type": "string", "minLength": 1,
                                                          "maxLength": 255}}
                   for n in ("source", "queue")]
    if route.operation_id == "postFreeswitchCdr":
        params.append({"name": "source", "in": "query", "description": "the PBX (default: "
                       "the CDR's switchname)", "schema": {"type": "string", "minLength": 1,
                                                          "maxLength": 255}})
    if route.operation_id == "listCalls":
        params += [{"name": "status", "in": "query", "schema": {"type": "string", "enum": [
                       "pending", "recorded", "missing", "short", "partial", "not_expected",
                       "unmatched"]}},
                   {"name": "call_id", "in": "query", "schema": {
                       "type": "string", "minLength": 1, "maxLength": 255}},
                   {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                   {"name": "limit", "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 500}}]
    if route.operation_id == "listCollections":
        params += [{"name": "cursor", "in": "query", "schema": {"type": "string"}},
                   {"name": "limit", "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 500}}]
    if route.operation_id == "getWaveform":
        params += [
            {"name": "Access-Purpose", "in": "header", "schema": {"type": "string"}},
            {"name": "purpose", "in": "query", "schema": {"type": "string"}},
            {"name": "points", "in": "query",
             "schema": {"type": "integer", "minimum": 10, "maximum": 5000}},
        ]
    if route.operation_id in ("getAudio", "headAudio"):
        params += [
            {"name": "Access-Purpose", "in": "header", "schema": {"type": "string"},
             "description": "The purpose of this access (or the purpose query parameter)"},
            {"name": "purpose", "in": "query", "schema": {"type": "string"}},
            {"name": "Range", "in": "header", "schema": {"type": "string"}},
        ]
    if route.operation_id == "putRecording":
        fields = _metadata(purposes)["properties"]
        # A query value is a string, never null: the metadata schemas without "null".
        # Neither is required: the fields may come in the Recording-Metadata header instead.
        params += [{"name": n, "in": "query",
                    "schema": {**fields[n], "type": "string"}
                    | ({"enum": ["inbound", "outbound"]} if n == "direction" else {})}
                   for n in ("started_at", "ended_at", "direction", "agent_id", "customer_id",
                             "phone_number", "queue", "sha256", "leg")]
        params.append({"name": "purpose", "in": "query",
                       "schema": fields["purposes"], "style": "form", "explode": True})
        params.append({"name": "Recording-Metadata", "in": "header",
                       "description": "The metadata as a JSON object (the upload fields but "
                                      "call_id), instead of the query",
                       "schema": {"type": "string"}})
    if route.operation_id == "searchRecordings":
        params += [{"name": n, "in": "query", "schema": {"type": "string"}}
                   for n in ("customer_id", "call_id", "agent_id", "queue", "phone_number",
                             "started_after", "started_before", "state", "cursor")]
        params += [
            {"name": "limit", "in": "query",
             "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
            {"name": "match", "in": "query", "description": "prefix: the four ids match "
             "by prefix, in any case", "schema": {"type": "string",
                                                  "enum": ["exact", "prefix"]}},
            {"name": "sort", "in": "query", "schema": {"type": "string", "enum": [
                "-started_at", "started_at", "-duration", "duration", "agent", "-agent"]}},
            {"name": "direction", "in": "query",
             "schema": {"type": "string", "enum": ["inbound", "outbound"]}},
            {"name": "purpose", "in": "query", "description": "still kept for this purpose",
             "schema": {"type": "string", "enum": purposes}},
            *({"name": n, "in": "query", "description": "seconds",
               "schema": {"type": "number", "minimum": 0}}
              for n in ("min_duration", "max_duration"))]
    if route.operation_id in ("listLegalHolds", "listPurgeRuns", "listSubjectRequests"):
        params += [{"name": "cursor", "in": "query", "schema": {"type": "string"}},
                   {"name": "limit", "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 500}}]
    if route.operation_id == "listSubjectRequests":
        params.append({"name": "open", "in": "query", "schema": {"type": "boolean"}})
        params.append({"name": "customer_id", "in": "query", "schema": {"type": "string"}})
    if route.operation_id == "verifyAudit":
        params.append({"name": "full", "in": "query",
                       "schema": {"type": "string", "enum": ["true", "false"]}})
    if route.operation_id == "listAudit":
        params += [{"name": n, "in": "query", "schema": {"type": "string"}}
                   for n in ("recording_id", "actor", "action", "purpose", "outcome", "since",
                             "until", "cursor")]
        params.append({"name": "limit", "in": "query",
                       "schema": {"type": "integer", "minimum": 1, "maximum": 500}})
        params.append({"name": "order", "in": "query",
                       "schema": {"type": "string", "enum": ["oldest", "newest"]}})
        params.append({"name": "archived", "in": "query",
                       "description": "read the audit archive's entries too (from the tiles)",
                       "schema": {"type": "string", "enum": ["true", "false"]}})
    return params


def _request_body(route: Route, bodies: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    if route.body == "multipart":
        return {"required": True, "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": ["metadata", "audio"],
            "properties": {"metadata": {"$ref": "#/components/schemas/UploadMetadata"},
                           "audio": {"type": "string", "contentMediaType":
                                     "application/octet-stream"}}}}}}
    if route.body == "audio":
        return {"required": True, "content": {"application/octet-stream": {"schema": {
            "type": "string", "contentMediaType": "application/octet-stream"}}}}
    schema = bodies.get(route.body or "")
    if schema is not None:
        # A body of optional fields may be left out (the handlers read it as {}).
        return {"required": bool(schema.get("required")) or "oneOf" in schema,
                "content": {"application/json": {"schema": schema}}}
    return None


# Answers any route can give, from the middleware rather than its handler: a header that is
# not UTF-8 (400), a service draining or a catalog unreachable (503); and any request with
# a body: a stalled body (408), a full disk (507).
_EVERY_ROUTE = (400, 503)
_WITH_BODY = (408, 507)


def _responses(route: Route) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    statuses = {*route.responses, *_EVERY_ROUTE, *(_WITH_BODY if route.body else ())}
    for status in sorted(statuses):
        if status >= 400:
            content = {"application/problem+json": {
                "schema": {"$ref": "#/components/schemas/Problem"}}}
            responses[str(status)] = {"description": _STATUS_TEXT[status], "content": content}
        elif route.operation_id in ("uploadRecording", "putRecording", "getRecording"):
            responses[str(status)] = {"description": _STATUS_TEXT[status], "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Recording"}}}}
        else:
            responses[str(status)] = {"description": _STATUS_TEXT[status]}
    return responses


def openapi_document(purposes: list[str]) -> dict[str, Any]:
    bodies = _json_bodies(purposes)
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        operation: dict[str, Any] = {
            "operationId": route.operation_id,
            "summary": route.summary,
            "parameters": _parameters(route, purposes),
            "responses": _responses(route),
        }
        if route.roles:
            operation["security"] = [{"bearer": []}, {"session": []},
                                     *([{"basic": []}] if route.basic else [])]
            operation["x-roles"] = list(route.roles)
        else:
            operation["security"] = []
        body = _request_body(route, bodies)
        if body is not None:
            operation["requestBody"] = body
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "Recordings service", "version": "1"},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                "basic": {"type": "http", "scheme": "basic",
                                          "description": "user name: the token's name; "
                                                         "password: the token"},
                                "session": {"type": "apiKey", "in": "cookie",
                                            "name": "rs_session"}},
            "schemas": {"Problem": _PROBLEM, "Recording": _RECORDING,
                        "PurposeState": _PURPOSE_STATE,
                        "UploadMetadata": _metadata(purposes)},
        },
    }
