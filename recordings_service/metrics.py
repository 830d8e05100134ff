"""Prometheus metrics, one registry per app (no global state between app instances)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "recordings_http_requests", "HTTP requests by route and status",
            ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram(
            "recordings_http_request_duration_seconds", "Time to response headers",
            ["route"], registry=self.registry)
        self.bytes_streamed = Counter(
            "recordings_audio_bytes_streamed", "Decrypted audio bytes sent",
            registry=self.registry)
        self.uploads = Counter(
            "recordings_uploads", "Uploads by outcome (created, existing, rejected)",
            ["outcome"], registry=self.registry)
        self.upload_bytes = Counter(
            "recordings_upload_bytes", "Audio bytes received and stored",
            registry=self.registry)
        self.audit_appends = Counter(
            "recordings_audit_appends", "Audit log entries appended",
            ["action", "outcome"], registry=self.registry)
        self.errors = Counter(
            "recordings_errors", "Error responses by reason", ["reason"], registry=self.registry)
        self.integrity_failures = Counter(
            "recordings_blob_integrity_failures",
            "Stored blobs that failed authentication when read", registry=self.registry)
        self.job_runs = Counter(
            "recordings_job_runs", "Scheduled job runs by job and outcome",
            ["job", "outcome"], registry=self.registry)

        self.subject_requests_overdue = Gauge(
            "recordings_subject_requests_overdue",
            "Data-subject requests open past their one-month deadline (GDPR Art. 12(3))",
            registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
