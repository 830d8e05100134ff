"""Every route in one table: the router and the OpenAPI document are both built from it."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from recordings_service.api.handlers import (
    audio,
    audit,
    holds,
    moments,
    ops,
    quality,
    recordings,
    retention,
    session,
    subjects,
)
from recordings_service.routing import Guard, Handler, add_route


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    operation_id: str
    summary: str
    roles: tuple[str, ...]  # empty: no bearer token needed
    responses: tuple[int, ...]
    body: str | None = None  # request body kind, see openapi._request_body
    action: str = ""  # the audit action of a refusal; the operation id when not named
    basic: bool = False  # also HTTP Basic with a token (see routing.Guard)
    audit_refusals: bool = False  # see routing.Guard

    @property
    def guard(self) -> Guard:
        return Guard("api", frozenset(self.roles), self.action or self.operation_id,
                     self.basic, self.audit_refusals)


_READERS = ("supervisor", "compliance")
_AUDIT = ("auditor", "compliance")
_COMPLIANCE = ("compliance",)
_ALL = ("ingest", "supervisor", "compliance", "auditor")

ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1/session", session.post_session, "signIn",
          "Sign a person in with a local account; sets the session cookie", (),
          (200, 400, 401, 403, 415, 429), "sign_in"),
    Route("GET", "/v1/session/oidc/login", session.oidc_login, "ssoLogin",
          "Single sign-on: redirects to the identity provider", (), (302, 404)),
    Route("GET", "/v1/session/oidc/callback", session.oidc_callback, "ssoCallback",
          "Where the identity provider returns: ends in a session cookie", (),
          (200, 400, 401, 403, 404)),
    Route("GET", "/v1/session", session.get_session, "whoAmI",
          "Who is signed in (name, roles, expiry, the CSRF token for changes)", _ALL,
          (200, 401)),
    Route("DELETE", "/v1/session", session.delete_session, "signOut",
          "Sign out: the session ends on every replica", _ALL, (204, 401, 403)),
    Route("POST", "/v1/recordings", recordings.post_recording, "uploadRecording",
          "Upload a recording (multipart: metadata JSON, then audio)", ("ingest",),
          (200, 201, 400, 401, 403, 409, 413, 415, 422), "multipart", action="upload"),
    Route("PUT", "/v1/calls/{call_id}/recording", recordings.put_recording, "putRecording",
          "Upload a recording as a raw body; metadata in the Recording-Metadata header "
          "or the query; Bearer or HTTP Basic (token name, token)", ("ingest",),
          (200, 201, 400, 401, 403, 409, 413, 415, 422), "audio", action="upload",
          basic=True),
    Route("GET", "/v1/recordings", recordings.list_recordings, "searchRecordings",
          "Search recordings (keyset paginated)", _READERS, (200, 400, 401, 403), action="search"),
    Route("GET", "/v1/recordings/{recording_id}", recordings.get_recording, "getRecording",
          "A recording's metadata", _READERS, (200, 401, 403, 404), action="view_metadata"),
    Route("GET", "/v1/recordings/{recording_id}/audio", audio.get_audio, "getAudio",
          "Stream the audio for a named purpose (Range supported)", _READERS,
          (200, 206, 400, 401, 403, 404, 410, 416), action="stream"),
    Route("POST", "/v1/recordings/{recording_id}/moments", moments.post_moment, "addMoment",
          "Mark a point or a span of the call with a note, for a purpose", _READERS,
          (201, 400, 401, 403, 404, 409, 410), "moment", action="moment_add"),
    Route("GET", "/v1/recordings/{recording_id}/moments", moments.list_moments,
          "listMoments", "The moments marked in the call, for the purposes the caller may "
          "use on it now", _READERS, (200, 400, 401, 403, 404, 410), action="moments_read"),
    Route("DELETE", "/v1/recordings/{recording_id}/moments/{moment_id}",
          moments.delete_moment, "deleteMoment", "Remove a moment (its author or compliance)",
          _READERS, (204, 401, 403, 404), action="moment_deleted"),
    Route("GET", "/v1/quality/forms", quality.list_forms, "listQualityForms",
          "The quality forms calls are scored on, with their questions", _READERS,
          (200, 401, 403), action="quality_forms_read"),
    Route("POST", "/v1/recordings/{recording_id}/evaluations", quality.post_evaluation,
          "evaluateRecording", "Score the call on a quality form (purpose quality_review)",
          _READERS, (201, 400, 401, 403, 404, 410), "evaluation", action="evaluation_add"),
    Route("GET", "/v1/recordings/{recording_id}/evaluations",
          quality.list_recording_evaluations, "listRecordingEvaluations",
          "The call's evaluations (purpose quality_review)", _READERS,
          (200, 400, 401, 403, 404, 410), action="evaluations_read"),
    Route("GET", "/v1/evaluations", quality.list_evaluations, "listEvaluations",
          "An agent's evaluations, newest first, with the average per form", _READERS,
          (200, 400, 401, 403), action="evaluations_read"),
    Route("GET", "/v1/recordings/{recording_id}/waveform", audio.get_waveform, "getWaveform",
          "The call's waveform (peak levels, 0-255) for a named purpose", _READERS,
          (200, 400, 401, 403, 404, 410), action="waveform"),
    Route("HEAD", "/v1/recordings/{recording_id}/audio", audio.get_audio, "headAudio",
          "The audio's headers for a named purpose", _READERS,
          (200, 206, 400, 401, 403, 404, 410, 416), action="stream"),
    Route("POST", "/v1/recordings/{recording_id}/playback-links", audio.post_playback_link,
          "createPlaybackLink", "A short-lived link that plays the audio without a token",
          _READERS, (201, 400, 401, 403, 404, 410), "json", action="playback_link"),
    Route("GET", "/v1/playback/{token}", audio.get_playback, "playback",
          "Play the audio through a playback link (Range supported)", (),
          (200, 206, 403, 404, 410, 416)),
    Route("HEAD", "/v1/playback/{token}", audio.get_playback, "playbackHead",
          "Headers of the audio behind a playback link", (), (200, 206, 403, 404, 410, 416)),
    Route("POST", "/v1/recordings/{recording_id}/purposes", retention.add_purpose,
          "addPurpose", "Keep the recording for one more purpose (with a reason)",
          _COMPLIANCE, (200, 400, 401, 403, 404, 410), "add_purpose", action="add_purpose"),
    Route("DELETE", "/v1/recordings/{recording_id}/purposes/{purpose}",
          retention.withdraw_purpose, "withdrawPurpose",
          "Withdraw a purpose (consent withdrawn, objection); purge_at is recomputed",
          _COMPLIANCE, (200, 400, 401, 403, 404, 409, 410), "reason_only",
          action="withdraw_purpose"),
    Route("PUT", "/v1/recordings/{recording_id}/restriction", retention.place_restriction,
          "placeRestriction", "Restrict processing while a dispute is settled", _COMPLIANCE,
          (200, 400, 401, 403, 404, 410), "reason_only", action="restriction_placed"),
    Route("DELETE", "/v1/recordings/{recording_id}/restriction", retention.lift_restriction,
          "liftRestriction", "Lift the restriction", _COMPLIANCE,
          (200, 400, 401, 403, 404, 410), "reason_only", action="restriction_lifted"),
    Route("DELETE", "/v1/recordings/{recording_id}", retention.erase, "eraseRecording",
          "Erase now (crypto-shred), or 409 saying why not and until when", _COMPLIANCE,
          (200, 400, 401, 403, 404, 409), "reason", action="erasure"),
    Route("POST", "/v1/legal-holds", holds.post_hold, "placeLegalHold",
          "Place a legal hold on recordings or on every recording of a data subject",
          _COMPLIANCE, (201, 400, 401, 403, 409), "hold", action="legal_hold_placed"),
    Route("GET", "/v1/legal-holds", holds.list_holds, "listLegalHolds", "Legal holds",
          _COMPLIANCE, (200, 400, 401, 403), action="legal_hold_read"),
    Route("GET", "/v1/legal-holds/{hold_id}", holds.get_hold, "getLegalHold", "A legal hold",
          _COMPLIANCE, (200, 401, 403, 404), action="legal_hold_read"),
    Route("POST", "/v1/legal-holds/{hold_id}/release", holds.release_hold, "releaseLegalHold",
          "Release a legal hold (others on the same recordings stand)", _COMPLIANCE,
          (200, 400, 401, 403, 404, 409), "reason_only", action="legal_hold_released"),
    Route("POST", "/v1/purge-runs", retention.post_purge_run, "runPurge",
          "One retention run now (or a dry run)", _COMPLIANCE, (201, 400, 401, 403), "purge",
          action="purge_run"),
    Route("GET", "/v1/purge-runs", retention.list_purge_runs, "listPurgeRuns", "Past runs",
          _COMPLIANCE, (200, 401, 403), action="purge_run"),
    Route("GET", "/v1/purge-runs/{run_id}", retention.get_purge_run, "getPurgeRun",
          "One run: what it purged and what it skipped, and why", _COMPLIANCE,
          (200, 401, 403, 404), action="purge_run"),
    Route("PATCH", "/v1/recordings/{recording_id}", subjects.patch_recording,
          "rectifyRecording", "Rectify metadata (audited with the field names and reason)",
          _COMPLIANCE, (200, 400, 401, 403, 404, 409, 410), "rectify", action="rectify",
          audit_refusals=True),
    Route("POST", "/v1/subjects/{customer_id}/export", subjects.post_export, "exportSubject",
          "Right of access: a streamed zip of everything kept about the subject",
          _COMPLIANCE, (200, 400, 401, 403, 409), "subject", action="export",
          audit_refusals=True),
    Route("POST", "/v1/subjects/{customer_id}/erasure", subjects.post_erasure, "eraseSubject",
          "Erase every recording of the subject, answering per recording", _COMPLIANCE,
          (200, 400, 401, 403, 409), "reason", action="erasure",
          audit_refusals=True),
    Route("POST", "/v1/subjects/{customer_id}/restriction", subjects.post_restriction,
          "restrictSubject", "Restrict every recording of the subject", _COMPLIANCE,
          (200, 400, 401, 403, 409), "reason", action="restriction",
          audit_refusals=True),
    Route("POST", "/v1/subjects/{customer_id}/objection", subjects.post_objection,
          "objectSubject",
          "Objection: withdraw the legitimate-interest and consent purposes everywhere",
          _COMPLIANCE, (200, 400, 401, 403, 409), "reason", action="objection",
          audit_refusals=True),
    Route("POST", "/v1/subject-requests", subjects.post_subject_request,
          "registerSubjectRequest", "Register a data-subject request as it arrives",
          _COMPLIANCE, (201, 400, 401, 403, 409), "subject_request",
          action="subject_request_registered", audit_refusals=True),
    Route("GET", "/v1/subject-requests", subjects.list_subject_requests,
          "listSubjectRequests",
          "The register of data-subject requests (?open=true, ?customer_id=)",
          _COMPLIANCE, (200, 400, 401, 403), action="subject_request_read"),
    Route("GET", "/v1/subject-requests/{request_id}", subjects.get_subject_request,
          "getSubjectRequest", "One data-subject request", _COMPLIANCE, (200, 401, 403, 404),
          action="subject_request_read"),
    Route("GET", "/v1/policies", ops.policies, "listPolicies", "The configured purposes",
          _ALL, (200, 401), action="view_policies"),
    Route("GET", "/v1/audit", audit.list_audit, "listAudit", "Audit log entries (paginated)",
          _AUDIT, (200, 400, 401, 403), action="audit_read"),
    Route("GET", "/v1/recordings/{recording_id}/listenings", audit.list_listenings,
          "listListenings", "Who heard this call: each listening with the part of the call "
          "it was sent", _AUDIT, (200, 401, 403, 404), action="audit_read"),
    Route("GET", "/v1/audit/verify", audit.verify_audit, "verifyAudit",
          "Verify the hash chain and signed checkpoints", _AUDIT, (200, 400, 401, 403),
          action="audit_verify"),
    Route("GET", "/v1/audit/checkpoints", audit.list_checkpoints, "listCheckpoints",
          "Signed checkpoints of the audit log", _AUDIT, (200, 401, 403), action="audit_read"),
    Route("GET", "/v1/audit/public-key", audit.public_key, "auditPublicKey",
          "The Ed25519 public key (PEM) for checkpoints and deletion receipts", _AUDIT,
          (200, 401, 403), action="audit_read"),
    Route("GET", "/v1/openapi.json", ops.openapi, "openapi", "This document", (), (200,)),
    Route("GET", "/healthz", ops.healthz, "healthz", "The process is alive", (), (200,)),
    Route("GET", "/readyz", ops.readyz, "readyz", "Catalog and blob store reachable", (),
          (200, 503)),
    Route("GET", "/metrics", ops.metrics, "metrics", "Prometheus metrics", (), (200,)),
)

PUBLIC_ROUTES = frozenset((r.method, r.path) for r in ROUTES if not r.roles)


def add_routes(app: web.Application) -> None:
    for route in ROUTES:
        add_route(app, route.method, route.path, route.handler, route.guard)
