"""Every route in one table: the router and the OpenAPI document are both built from it."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from recordings_service.api.handlers import (
    audio,
    audit,
    calls,
    holds,
    moments,
    ops,
    quality,
    recordings,
    redactions,
    retention,
    session,
    subjects,
    training,
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
# Readers, and agents within what is theirs: their own evaluated calls and evaluations,
# the collections shared with them (checked by the handlers).
_WITH_AGENTS = ("supervisor", "compliance", "agent")
_AUDIT = ("auditor", "compliance")
_COMPLIANCE = ("compliance",)
_ALL = ("ingest", "supervisor", "compliance", "auditor", "agent")

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
          "Stream the audio for a named purpose (Range supported); an agent, their own "
          "evaluated calls", _WITH_AGENTS,
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
          "An agent's evaluations, newest first, with the average per form (an agent: "
          "their own)", _WITH_AGENTS, (200, 400, 401, 403), action="evaluations_read"),
    Route("GET", "/v1/evaluations/{evaluation_id}", quality.get_evaluation, "getEvaluation",
          "An evaluation with its history of versions and responses", _WITH_AGENTS,
          (200, 401, 403, 404), action="evaluation_read"),
    Route("POST", "/v1/evaluations/{evaluation_id}/responses", quality.post_response,
          "respondToEvaluation", "The agent acknowledges or disputes; a reviewer upholds a "
          "dispute", _WITH_AGENTS, (200, 400, 401, 403, 404, 409), "evaluation_response",
          action="evaluation_response"),
    Route("POST", "/v1/evaluations/{evaluation_id}/revisions", quality.post_revision,
          "reviseEvaluation", "Score the call again: a new version of the evaluation "
          "(purpose quality_review)", _READERS, (200, 400, 401, 403, 404, 409, 410),
          "evaluation_revision", action="evaluation_revised"),
    Route("GET", "/v1/reports/quality", quality.get_report, "qualityReport",
          "Evaluations per agent, queue and evaluator over a period (JSON or CSV)", _READERS,
          (200, 400, 401, 403), action="quality_report"),
    Route("POST", "/v1/calls", calls.post_calls, "postCallRecords",
          "Call records from a PBX: one, or a list of up to 1,000; idempotent on (source, "
          "call_id)", ("ingest",), (200, 400, 401, 403), "call_records",
          action="call_records"),
    Route("POST", "/v1/calls/freeswitch", calls.post_freeswitch_cdr, "postFreeswitchCdr",
          "A FreeSWITCH mod_json_cdr post (JSON, a cdr= form or base64; Bearer or HTTP "
          "Basic with the token name and token as its cred)", ("ingest",),
          (200, 400, 401, 403), "freeswitch_cdr", action="call_records", basic=True),
    Route("GET", "/v1/calls", calls.list_calls, "listCalls",
          "Calls of a period and how they were recorded (status: recorded, missing, short, "
          "partial, pending, not_expected, or unmatched: recordings no call record names)",
          _READERS, (200, 400, 401, 403), action="calls_read"),
    Route("GET", "/v1/coverage", calls.get_coverage, "getCoverage",
          "How many calls of a period were recorded, missing, short, partial or unmatched, "
          "in all and per day and source", _READERS, (200, 400, 401, 403),
          action="coverage"),
    Route("POST", "/v1/collections", training.post_collection, "createCollection",
          "A training collection", _READERS, (201, 400, 401, 403), "collection",
          action="collection_created"),
    Route("GET", "/v1/collections", training.list_collections, "listCollections",
          "Training collections, newest first (an agent: those shared with them)",
          _WITH_AGENTS, (200, 400, 401, 403), action="collection_read"),
    Route("GET", "/v1/collections/{collection_id}", training.get_collection,
          "getCollection", "A collection's clips, each saying whether it plays now and why "
          "not", _WITH_AGENTS, (200, 401, 403, 404), action="collection_read"),
    Route("POST", "/v1/collections/{collection_id}/clips", training.post_clip, "addClip",
          "Add a span of a call (purpose training; WAV recordings)", _READERS,
          (201, 400, 401, 403, 404, 409, 410, 422), "clip", action="clip_added"),
    Route("DELETE", "/v1/collections/{collection_id}/clips/{clip_id}",
          training.delete_clip, "removeClip", "Remove a clip", _READERS,
          (204, 401, 403, 404), action="clip_removed"),
    Route("GET", "/v1/collections/{collection_id}/clips/{clip_id}/audio",
          audio.get_clip_audio, "playClip", "The clip as a WAV of its span (purpose "
          "training, checked at every play; Range supported within the clip)", _WITH_AGENTS,
          (200, 206, 401, 403, 404, 410, 416, 422), action="clip_play"),
    Route("PUT", "/v1/collections/{collection_id}/shares/{agent_id}", training.put_share,
          "shareCollection", "Share the collection with an agent", _READERS,
          (200, 400, 401, 403, 404), action="collection_shared"),
    Route("DELETE", "/v1/collections/{collection_id}/shares/{agent_id}",
          training.delete_share, "unshareCollection", "Stop sharing it with the agent",
          _READERS, (200, 400, 401, 403, 404), action="collection_unshared"),
    Route("GET", "/v1/recordings/{recording_id}/waveform", audio.get_waveform, "getWaveform",
          "The call's waveform (peak levels, 0-255) for a named purpose", _WITH_AGENTS,
          (200, 400, 401, 403, 404, 410), action="waveform"),
    Route("HEAD", "/v1/recordings/{recording_id}/audio", audio.get_audio, "headAudio",
          "The audio's headers for a named purpose", _WITH_AGENTS,
          (200, 206, 400, 401, 403, 404, 410, 416), action="stream"),
    Route("POST", "/v1/recordings/{recording_id}/playback-links", audio.post_playback_link,
          "createPlaybackLink", "A short-lived link that plays the audio without a token",
          _WITH_AGENTS, (201, 400, 401, 403, 404, 410), "json", action="playback_link"),
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
    Route("POST", "/v1/recordings/{recording_id}/redactions", redactions.post_redaction,
          "redactRecording", "Replace spans of the audio for good (card data, other personal "
          "data): a new data key, the old one destroyed, a signed receipt",
          ("compliance", "ingest"), (201, 400, 401, 403, 404, 409, 410, 415, 422),
          "redaction", action="redaction"),
    Route("GET", "/v1/recordings/{recording_id}/redactions", redactions.list_redactions,
          "listRedactions", "A recording's redactions with their signed receipts", _AUDIT,
          (200, 401, 403, 404), action="redactions_read"),
    Route("GET", "/v1/recordings/{recording_id}/redactions/{redaction_id}/proof",
          redactions.get_proof, "getRedactionProof", "What shows, with the audio and the "
          "public key, that nothing outside a redaction's spans changed", _AUDIT,
          (200, 401, 403, 404, 410), action="redaction_proof"),
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
