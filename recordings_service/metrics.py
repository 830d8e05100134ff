"""Prometheus metrics, one registry per app (no global state between app instances).

With ``server.workers`` above 1 the serve processes share their counts through
prometheus-client's multiprocess mode: each process writes its values to files in one
directory, and ``/metrics`` in any process sums them all.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import values as prometheus_values
from prometheus_client.multiprocess import MultiProcessCollector

_SHARED_DIR = "PROMETHEUS_MULTIPROC_DIR"


def share_between_processes(directory: Path) -> None:
    """Called by the first serve process before anything counts; the processes it starts
    inherit the directory through the environment."""
    shutil.rmtree(directory, ignore_errors=True)  # counts of an earlier run
    directory.mkdir(mode=0o700, parents=True)
    os.environ[_SHARED_DIR] = str(directory)
    # prometheus-client picks the value store when it is imported, long before this.
    prometheus_values.ValueClass = prometheus_values.MultiProcessValue()  # type: ignore[no-untyped-call]


class Metrics:
    def __init__(self) -> None:
        self._shared_dir = os.environ.get(_SHARED_DIR)
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
        self.moments = Counter(
            "recordings_moments_marked", "Moments marked in calls", registry=self.registry)
        self.evaluations = Counter(
            "recordings_evaluations", "Calls scored on a quality form", ["form"],
            registry=self.registry)
        self.evaluation_responses = Counter(
            "recordings_evaluation_responses",
            "Steps after a scoring: acknowledged, disputed, revised, upheld", ["kind"],
            registry=self.registry)
        self.calls = Counter(
            "recordings_calls",
            "Call records reconciled with the recordings, by PBX and outcome (recorded, "
            "missing, short, partial)", ["source", "status"], registry=self.registry)
        self.job_runs = Counter(
            "recordings_job_runs", "Scheduled job runs by job and outcome",
            ["job", "outcome"], registry=self.registry)

        self.subject_requests_overdue = Gauge(
            "recordings_subject_requests_overdue",
            "Data-subject requests open past their one-month deadline (GDPR Art. 12(3))",
            registry=self.registry, multiprocess_mode="mostrecent")

        self.coverage = Gauge(
            "recordings_coverage_ratio",
            "Of the answered calls started in the last 24 hours and reconciled, the share "
            "recorded in full (1 when there were none)",
            registry=self.registry, multiprocess_mode="mostrecent")
        self.coverage_gaps = Gauge(
            "recordings_coverage_gaps",
            "Calls started in the last 24 hours found missing, short or partial", ["status"],
            registry=self.registry, multiprocess_mode="mostrecent")

    def render(self) -> bytes:
        if self._shared_dir is None:
            return generate_latest(self.registry)
        every_process = CollectorRegistry()
        MultiProcessCollector(every_process, path=self._shared_dir)  # type: ignore[no-untyped-call]
        return generate_latest(every_process)
