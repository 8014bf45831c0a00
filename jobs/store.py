"""Run records, the one-run-per-job lock and small job state, in Blob Storage.

Layout of the container (``OPS_RUNS_CONTAINER``, default ``ops-runs``):

    runs/<job>/<yyyy>/<mm>/<dd>/<HHMMSS>-<run_id>.json   every run report
    latest/<job>.json                                     the last report per job
    locks/<job>                                           leased while a run goes on
    state/<job>/<key>.json                                state a job keeps between runs

Never stores a secret value: reports are scrubbed by the runner first.
"""
from __future__ import annotations

import json
import logging
import threading
from contextlib import contextmanager
from typing import Any, Iterator

log = logging.getLogger(__name__)

LOCK_SECONDS = 60  # default (OPS_LOCK_SECONDS): a crashed run frees its lock this long after its last renewal


class AlreadyRunning(Exception):
    """Another run of this job holds the lock."""


class StateConflict(Exception):
    """The state changed since it was read (another writer); re-read and retry."""


class RunStore:
    def __init__(self, blob_service, container: str, lock_seconds: int = LOCK_SECONDS):
        self._container = blob_service.get_container_client(container)
        self._ready = False
        self.lock_seconds = lock_seconds  # lease duration: 15-60 s, as Azure allows

    def _ensure(self) -> None:
        if self._ready:
            return
        from azure.core.exceptions import ResourceExistsError
        try:
            self._container.create_container()
        except ResourceExistsError:
            pass
        self._ready = True

    # -- reports -------------------------------------------------------------
    @staticmethod
    def report_path(report: dict[str, Any]) -> str:
        day, clock = report["started_at"][:10], report["started_at"][11:19].replace(":", "")
        yyyy, mm, dd = day.split("-")
        return f"runs/{report['job']}/{yyyy}/{mm}/{dd}/{clock}-{report['run_id']}.json"

    def save_report(self, report: dict[str, Any]) -> str:
        self._ensure()
        body = json.dumps(report, indent=2, sort_keys=False).encode()
        path = self.report_path(report)
        settings = _json_content()
        self._container.upload_blob(path, body, overwrite=True, content_settings=settings)
        self._container.upload_blob(f"latest/{report['job']}.json", body, overwrite=True,
                                    content_settings=settings)
        return path

    def latest(self, job: str) -> dict[str, Any] | None:
        data, _ = self._read(f"latest/{job}.json")
        return data

    def list_reports(self, job: str) -> list[str]:
        self._ensure()
        return sorted(b.name for b in self._container.list_blobs(name_starts_with=f"runs/{job}/"))

    def read(self, path: str) -> dict[str, Any] | None:
        return self._read(path)[0]

    # -- lock ----------------------------------------------------------------
    @contextmanager
    def lock(self, job: str) -> Iterator[None]:
        """Hold a blob lease on locks/<job> for the duration, renewed every third of
        ``lock_seconds``; AlreadyRunning if held. A killed process cannot release it:
        the lease lapses ``lock_seconds`` after its last renewal."""
        from azure.core.exceptions import HttpResponseError, ResourceExistsError
        self._ensure()
        blob = self._container.get_blob_client(f"locks/{job}")
        try:
            blob.upload_blob(b"", overwrite=False)
        except ResourceExistsError:
            pass
        except HttpResponseError as exc:  # leased already: upload refused with 412
            if exc.status_code != 412:
                raise
        try:
            lease = blob.acquire_lease(lease_duration=self.lock_seconds)
        except HttpResponseError as exc:
            if exc.status_code == 409:
                raise AlreadyRunning(
                    f"{job} is already running (lock locks/{job} is leased); if no run is going on "
                    f"(one was killed), the lock frees itself within {self.lock_seconds} s") from None
            raise
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(self.lock_seconds / 3):
                try:
                    lease.renew()
                except Exception:  # noqa: BLE001 - the run goes on; the lease may lapse
                    log.warning("could not renew the lock of %s", job, exc_info=True)

        renewer = threading.Thread(target=renew, name=f"lease-{job}", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            stop.set()
            renewer.join()
            try:
                lease.release()
            except Exception:  # noqa: BLE001 - it expires by itself
                log.warning("could not release the lock of %s; it expires in %ss", job, self.lock_seconds)

    # -- job state -----------------------------------------------------------
    def load_state(self, job: str, key: str) -> tuple[dict[str, Any], str | None]:
        """(state, etag); ({}, None) when there is none yet."""
        data, etag = self._read(f"state/{job}/{key}.json")
        return (data or {}), etag

    def save_state(self, job: str, key: str, data: dict[str, Any], etag: str | None) -> str:
        """Write only if unchanged since read (etag) or still absent (None)."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError
        self._ensure()
        blob = self._container.get_blob_client(f"state/{job}/{key}.json")
        body = json.dumps(data, indent=2, sort_keys=True).encode()
        try:
            if etag is None:
                result = blob.upload_blob(body, overwrite=False, content_settings=_json_content())
            else:
                result = blob.upload_blob(body, overwrite=True, etag=etag,
                                          match_condition=MatchConditions.IfNotModified,
                                          content_settings=_json_content())
        except (ResourceExistsError, ResourceModifiedError):
            own = _holding(blob, body)
            if own is not None:  # our own write, retried after its answer was lost
                return own
            raise StateConflict(f"state/{job}/{key}.json changed since it was read") from None
        return result["etag"]

    def _read(self, path: str) -> tuple[dict[str, Any] | None, str | None]:
        from azure.core.exceptions import ResourceNotFoundError
        self._ensure()
        try:
            downloader = self._container.get_blob_client(path).download_blob()
        except ResourceNotFoundError:
            return None, None
        return json.loads(downloader.readall()), downloader.properties.etag


def _holding(blob, body: bytes) -> str | None:
    """The blob's etag when it holds exactly ``body``, else None. A conditional write whose
    answer was lost (a dropped connection) is sent again by the SDK's retry, which then
    finds the first attempt's bytes and fails (409/412): that is this write, not another's."""
    try:
        downloader = blob.download_blob()
        data = downloader.readall()
    except Exception:  # noqa: BLE001 - cannot tell: a conflict, as reported before
        return None
    return downloader.properties.etag if data == body else None


def _json_content():
    from azure.storage.blob import ContentSettings
    return ContentSettings(content_type="application/json")
