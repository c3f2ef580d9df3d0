"""Object stores for the manifest shadow: S3 (the ``minio`` SDK; SeaweedFS in tests) or a local
folder when no S3 is configured. Both raise StorageError with a plain message on failure."""

from __future__ import annotations

import io
from pathlib import Path

from ...errors import Conflict, NotFound, StorageError
from ...ports import ObjectStore  # noqa: F401 (the port these two satisfy)


class S3ObjectStore:
    def __init__(self, endpoint: str, access_key: str, secret_key: str, bucket: str, *, timeout: float = 5.0) -> None:
        import urllib3
        from minio import Minio

        secure = endpoint.startswith("https://")
        host = endpoint.split("://", 1)[-1].rstrip("/")
        http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=timeout, read=timeout),
                                   retries=urllib3.Retry(total=0))
        self.client = Minio(host, access_key=access_key, secret_key=secret_key, secure=secure, http_client=http)
        self.bucket = bucket
        self._bucket_ready = False

    def _fail(self, what: str, exc: Exception) -> StorageError:
        return StorageError(f"the S3 shadow store could not {what} ({type(exc).__name__})",
                            hint="check S3_ENDPOINT and the credentials; the outbox will retry")

    def _ensure_bucket(self) -> None:
        if not self._bucket_ready:
            if not self.client.bucket_exists(self.bucket):
                self.client.make_bucket(self.bucket)
            self._bucket_ready = True

    def put(self, key: str, data: bytes) -> None:
        try:
            self._ensure_bucket()
            self.client.put_object(self.bucket, key, io.BytesIO(data), len(data), content_type="application/json")
        except Exception as exc:
            raise self._fail(f"write {key}", exc) from exc

    def put_new(self, key: str, data: bytes) -> None:
        """Write-once by name: refused when the key exists. (A bucket with Object Lock in
        compliance mode makes it write-once for every credential too: see ops/runbooks.)"""
        from minio.error import S3Error

        try:
            self._ensure_bucket()
            try:
                self.client.stat_object(self.bucket, key)
                exists = True
            except S3Error as exc:
                if exc.code not in ("NoSuchKey", "NoSuchObject", "NotFound"):
                    raise
                exists = False
        except Exception as exc:
            raise self._fail(f"check {key}", exc) from exc
        if exists:
            raise Conflict(f"{key} is already in the store; it is never overwritten")
        try:
            self.client.put_object(self.bucket, key, io.BytesIO(data), len(data), content_type="application/json")
        except Exception as exc:
            raise self._fail(f"write {key}", exc) from exc

    def get(self, key: str) -> bytes:
        from minio.error import S3Error

        try:
            resp = self.client.get_object(self.bucket, key)
            try:
                return resp.read()
            finally:
                resp.close()
                resp.release_conn()
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchBucket"):
                raise NotFound(f"{key} is not in the shadow store") from exc
            raise self._fail(f"read {key}", exc) from exc
        except Exception as exc:
            raise self._fail(f"read {key}", exc) from exc

    def list(self, prefix: str) -> list[str]:
        from minio.error import S3Error

        try:
            return sorted(o.object_name for o in self.client.list_objects(self.bucket, prefix=prefix, recursive=True))
        except S3Error as exc:
            if exc.code == "NoSuchBucket":
                return []  # nothing written yet
            raise self._fail(f"list {prefix}", exc) from exc
        except Exception as exc:
            raise self._fail(f"list {prefix}", exc) from exc


class LocalObjectStore:
    """The same interface on a folder (the embedded default when S3_ENDPOINT is not set)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise StorageError(f"refusing an object key outside the store: {key}")
        return path

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)

    def put_new(self, key: str, data: bytes) -> None:
        """Write-once: the file is created exclusively and left read-only."""
        import os

        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        except FileExistsError:
            raise Conflict(f"{key} is already in the store; it is never overwritten") from None
        except OSError as exc:
            raise StorageError(f"the local store could not write {key} ({exc.strerror})") from exc
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    def get(self, key: str) -> bytes:
        path = self._path(key)
        if not path.is_file():
            raise NotFound(f"{key} is not in the shadow store")
        return path.read_bytes()

    def list(self, prefix: str) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*")
                      if p.is_file() and not p.name.endswith(".tmp") and str(p.relative_to(self.root)).startswith(prefix))
