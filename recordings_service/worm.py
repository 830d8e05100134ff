"""What a write-once blob store's lock follows (``[storage.s3] object_lock``): a blob is
kept at least until its recording's purge date, and while a legal hold covers it.

Each is done before the catalog change that calls for it commits: a lock set for a change
that then rolls back is only a lock kept longer, while a committed change whose lock failed
would leave a blob unprotected. A store without the lock makes each a no-op.
"""

from __future__ import annotations

from datetime import datetime

from recordings_service.services import Services
from storage import catalog


async def keep_until(services: Services, rec: catalog.Recording, purge_at: datetime | None,
                     ) -> None:
    """The blob of ``rec`` kept until ``purge_at`` at least (a later purpose, a longer
    retention). An earlier date leaves the lock as it is: it lapses on its own date."""
    if services.blobs.locks and rec.blob_name and purge_at is not None \
            and (rec.purge_at is None or purge_at > rec.purge_at):
        await services.blobs.retain(rec.blob_name, purge_at)


async def hold(services: Services, rec: catalog.Recording, held: bool) -> None:
    """The store's legal hold on the blob of ``rec``: on while any hold covers it."""
    if services.blobs.locks and rec.blob_name:
        await services.blobs.legal_hold(rec.blob_name, held)
