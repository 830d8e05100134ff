"""WORM storage: with ``[storage.s3] object_lock``, each blob is written under S3 Object
Lock until its recording's purge date (extended when a purpose extends it), a legal hold
sets the store's legal hold, and crypto-shredding still erases on request: the data key
goes at once and the locked blob, noise from then on, is deleted when its lock lapses.

Against SeaweedFS with a bucket made with Object Lock; its locks run on real time, so the
recordings here start six months (their training retention) before now, plus seconds.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from recordings_service import backup, jobs, policy, restore
from recordings_service.app import create_app
from recordings_service.auth import create_token
from recordings_service.config import Config, load_config
from recordings_service.documents import rfc3339
from recordings_service.services import open_services
from storage import catalog
from storage.errors import BlobLockedError, StorageError
from tests.audio import wav_tone
from tests.conftest import Api, FrozenClock
from tests.s3 import ACCESS_KEY, SECRET_KEY, SeaweedFs, make_bucket


def _config(seaweed: SeaweedFs, tmp_path: Path, bucket: str, mode: str) -> Config:
    return load_config(environ={
        "RECORDINGS_BLOB_STORE": "s3", "RECORDINGS_S3_ENDPOINT_URL": seaweed.endpoint,
        "RECORDINGS_S3_BUCKET": bucket, "RECORDINGS_S3_PREFIX": seaweed.new_prefix(),
        "RECORDINGS_S3_OBJECT_LOCK": mode}, data_dir=str(tmp_path / "data")).with_overrides(
        scheduler_enabled=False)


@pytest.fixture(scope="module")
def locked_bucket(seaweedfs: SeaweedFs) -> str:
    return make_bucket(seaweedfs.endpoint, object_lock=True)


@pytest.fixture(params=["governance", "compliance"])
async def worm(aiohttp_client: Any, s3_env: SeaweedFs, locked_bucket: str, tmp_path: Path,
               clock: FrozenClock, request: pytest.FixtureRequest) -> AsyncIterator[Api]:
    config = _config(s3_env, tmp_path, locked_bucket, request.param)
    client = await aiohttp_client(create_app(config, clock))
    api = Api(client, clock)
    for role in ("ingest", "supervisor", "compliance", "auditor"):
        api.tokens[role] = await create_token(api.services.database, role, [role], clock())
    yield api


def _s3(seaweed: SeaweedFs) -> Any:
    return botocore.session.get_session().create_client(
        "s3", endpoint_url=seaweed.endpoint, region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)


async def _blob_of(api: Api, recording_id: str) -> tuple[str, str]:
    """(bucket, key) of a recording's blob."""
    async with api.services.database.read() as conn:
        rec = await catalog.get_recording(conn, recording_id)
    assert rec is not None and rec.blob_name
    store: Any = api.services.blobs
    return store.bucket, store._key(rec.blob_name)


def _head(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    return dict(s3.head_object(Bucket=bucket, Key=key))


async def test_a_bucket_without_object_lock_is_refused_at_start(
        s3_env: SeaweedFs, tmp_path: Path, clock: FrozenClock) -> None:
    config = _config(s3_env, tmp_path, s3_env.bucket, "compliance")
    with pytest.raises(StorageError, match="not created with Object Lock enabled"):
        async with open_services(config, clock):
            pass


async def test_blobs_are_locked_until_their_purge_date_which_only_grows(
        worm: Api, s3_env: SeaweedFs) -> None:
    rec = await worm.uploaded(wav_tone(0.2), purposes=["training"])
    bucket, key = await _blob_of(worm, rec["id"])
    s3 = _s3(s3_env)
    head = _head(s3, bucket, key)
    assert head["ObjectLockMode"] == worm.services.blobs.object_lock  # type: ignore[attr-defined]
    assert head["ObjectLockRetainUntilDate"] == datetime(2027, 5, 24, 9, 0, tzinfo=UTC)
    # A purpose kept longer extends the lock with the purge date.
    status, _ = await worm.call("POST", f"/v1/recordings/{rec['id']}/purposes",
                                {"purpose": "legal_protection", "reason": "dispute"})
    assert status == 200
    longer = _head(s3, bucket, key)["ObjectLockRetainUntilDate"]
    assert longer == datetime(2029, 11, 24, 9, 0, tzinfo=UTC)
    # Withdrawing it brings the purge date back; the lock stays as long as it was.
    status, _ = await worm.call("DELETE", f"/v1/recordings/{rec['id']}/purposes/training",
                                {"reason": "consent withdrawn"})
    assert status == 200
    assert _head(s3, bucket, key)["ObjectLockRetainUntilDate"] == longer
    with pytest.raises(BlobLockedError):
        await worm.services.blobs.delete(key.rsplit("/", 1)[1])


async def test_a_legal_hold_holds_the_blob_in_the_store_until_released(
        worm: Api, s3_env: SeaweedFs) -> None:
    rec = await worm.uploaded(wav_tone(0.2), purposes=["training"], customer_id="C-9")
    bucket, key = await _blob_of(worm, rec["id"])
    s3 = _s3(s3_env)
    assert _head(s3, bucket, key)["ObjectLockLegalHoldStatus"] == "OFF"
    status, hold = await worm.call("POST", "/v1/legal-holds", {
        "case_reference": "CASE-7", "reason": "litigation", "customer_id": "C-9"})
    assert status == 201
    assert _head(s3, bucket, key)["ObjectLockLegalHoldStatus"] == "ON"
    # A recording uploaded while the hold stands is held in the store from the start.
    later = await worm.uploaded(wav_tone(0.2, frequency=600), call_id="call-2",
                                purposes=["training"], customer_id="C-9")
    later_bucket, later_key = await _blob_of(worm, later["id"])
    assert _head(s3, later_bucket, later_key)["ObjectLockLegalHoldStatus"] == "ON"
    await worm.call("POST", f"/v1/legal-holds/{hold['id']}/release", {"reason": "closed"})
    assert _head(s3, bucket, key)["ObjectLockLegalHoldStatus"] == "OFF"
    assert _head(s3, later_bucket, later_key)["ObjectLockLegalHoldStatus"] == "OFF"


async def test_erasure_shreds_at_once_and_the_sweep_deletes_the_blob_when_its_lock_lapses(
        worm: Api, s3_env: SeaweedFs) -> None:
    lapses = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=6)
    started = policy.add_months(lapses, -6)  # kept for training six months from the call
    rec = await worm.uploaded(wav_tone(0.2), purposes=["training"],
                              started_at=started.isoformat().replace("+00:00", "Z"))
    bucket, key = await _blob_of(worm, rec["id"])
    status, tomb = await worm.call("DELETE", f"/v1/recordings/{rec['id']}",
                                   {"reason": "data subject request"})
    assert status == 200 and tomb["state"] == "purged"
    receipt = json.loads(tomb["deletion_receipt"]) if isinstance(
        tomb["deletion_receipt"], str) else tomb["deletion_receipt"]
    assert receipt["receipt"]["data_key_destroyed"] is True
    assert receipt["receipt"]["blob_deleted"] is False
    assert receipt["receipt"]["blob_kept_until"] == rfc3339(lapses)
    assert (await worm.audio(rec["id"], "training", "supervisor")).status == 410
    s3 = _s3(s3_env)
    assert s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions")  # kept: noise

    # Before it lapses the sweep leaves it; after, the blob and every version go.
    await jobs.sweep(worm.services)
    assert s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions")
    await asyncio.sleep(max(0.0, (lapses - datetime.now(UTC)).total_seconds()) + 1.5)
    worm.clock.advance(seconds=(lapses - worm.clock()).total_seconds() + 1)
    await jobs.sweep(worm.services)
    left = s3.list_object_versions(Bucket=bucket, Prefix=key)
    assert not left.get("Versions") and not left.get("DeleteMarkers")


async def test_a_restore_locks_each_blob_as_the_original_was(
        worm: Api, s3_env: SeaweedFs, tmp_path: Path, clock: FrozenClock) -> None:
    kept = await worm.uploaded(wav_tone(0.2), purposes=["training"])
    held = await worm.uploaded(wav_tone(0.2, frequency=700), call_id="call-held",
                               purposes=["training"])
    status, _ = await worm.call("POST", "/v1/legal-holds", {
        "case_reference": "CASE-8", "reason": "litigation", "recording_ids": [held["id"]]})
    assert status == 201
    await backup.backup(worm.services, tmp_path / "backup")
    config = worm.services.config
    target = config.with_overrides(data_dir=tmp_path / "restored",
                                   root_key_file=config.root_key_path,
                                   s3_prefix=s3_env.new_prefix())
    report = await restore.restore(target, clock, tmp_path / "backup", None, [])
    assert report.blobs == 2
    s3 = _s3(s3_env)
    async with open_services(target, clock) as services:
        for rec, hold_status in ((kept, "OFF"), (held, "ON")):
            async with services.database.read() as conn:
                restored = await catalog.get_recording(conn, rec["id"])
            assert restored is not None and restored.blob_name
            store: Any = services.blobs
            head = _head(s3, store.bucket, store._key(restored.blob_name))
            assert head["ObjectLockRetainUntilDate"] == restored.purge_at
            assert head["ObjectLockLegalHoldStatus"] == hold_status
