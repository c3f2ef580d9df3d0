"""The local key file: Ed25519 keys per key name, every version kept, in one JSON file (mode 0600)
in the data folder, created on first use. For a single machine without Vault. A key file that
others may read (looser than 0600) is refused, with the chmod that fixes it."""

from __future__ import annotations

import base64
import fcntl
import json
import os
from contextlib import contextmanager
from pathlib import Path

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ...errors import SigningError

PREFIX = "arrakis:local"
SEALED = "arrakis:local-aead"


class LocalKeySigner:
    kind = "local key file"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @contextmanager
    def _keys(self):
        """The key file's content under an exclusive lock (two processes never both create a key);
        written back if it was changed."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise SigningError(f"the signing key file {self.path} cannot be opened ({exc.strerror})") from exc
        try:
            mode = os.fstat(fd).st_mode & 0o777
            if mode & 0o077:
                raise SigningError(f"the signing key file {self.path} may be read by others (mode {mode:o}); "
                                   f"fix it with: chmod 600 {self.path}", retryable=False)
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.read(fd, 10_000_000)
            data = json.loads(raw) if raw.strip() else {}
            before = json.dumps(data, sort_keys=True)
            yield data
            if json.dumps(data, sort_keys=True) != before:
                os.lseek(fd, 0, os.SEEK_SET)
                os.ftruncate(fd, 0)
                os.write(fd, json.dumps(data, sort_keys=True).encode())
                os.fsync(fd)
        except ValueError as exc:
            raise SigningError(f"the signing key file {self.path} is damaged") from exc
        finally:
            os.close(fd)

    def _ensure(self, data: dict, key_name: str) -> dict:
        entry = data.get(key_name)
        if entry is None:
            entry = data[key_name] = {"latest": 0, "versions": {}}
            self._add_version(entry)
        return entry

    @staticmethod
    def _add_version(entry: dict) -> int:
        key = Ed25519PrivateKey.generate()
        raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
        entry["latest"] += 1
        entry["versions"][str(entry["latest"])] = base64.b64encode(raw).decode()
        return entry["latest"]

    @staticmethod
    def _private(entry: dict, version: int) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(base64.b64decode(entry["versions"][str(version)]))

    def sign(self, key_name: str, data: bytes) -> str:
        with self._keys() as keys:
            entry = self._ensure(keys, key_name)
            version = entry["latest"]
            sig = self._private(entry, version).sign(data)
        return f"{PREFIX}:v{version}:{base64.b64encode(sig).decode()}"

    def verify(self, key_name: str, data: bytes, signature: str) -> bool:
        try:
            prefix, version, b64 = signature.rsplit(":", 2)
            if prefix != PREFIX or not version.startswith("v"):
                return False
            with self._keys() as keys:
                entry = keys.get(key_name)
                if entry is None or version[1:] not in entry["versions"]:
                    return False
                public = self._private(entry, int(version[1:])).public_key()
            public.verify(base64.b64decode(b64, validate=True), data)
            return True
        except (InvalidSignature, ValueError):
            return False

    def rotate(self, key_name: str) -> int:
        with self._keys() as keys:
            entry = self._ensure(keys, key_name)
            return self._add_version(entry)

    def status(self, key_name: str) -> dict:
        with self._keys() as keys:
            entry = keys.get(key_name)
        return {"key": key_name, "backend": self.kind, "reachable": True,
                "latest_version": entry["latest"] if entry else 0,
                "versions": sorted(int(v) for v in entry["versions"]) if entry else []}

    def public_keys(self, key_name: str) -> dict[int, str]:
        with self._keys() as keys:
            entry = keys.get(key_name)
            if entry is None:
                return {}
            return {int(v): base64.b64encode(self._private(entry, int(v)).public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode() for v in entry["versions"]}

    # --- encryption at rest (AES-256-GCM, its own 256-bit key per name, kept in the same file) ----

    def encrypt(self, key_name: str, plaintext: bytes, *, context: bytes = b"") -> str:
        """``arrakis:local-aead:v<version>:<base64(nonce + ciphertext)>``; ``context`` is bound to
        the ciphertext (it must be given again to decrypt), so a sealed value cannot be moved to
        another row."""
        with self._keys() as keys:
            entry = keys.get(f"aead:{key_name}")
            if entry is None:
                entry = keys[f"aead:{key_name}"] = {"latest": 1, "versions": {
                    "1": base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()}}
            version = entry["latest"]
            key = base64.b64decode(entry["versions"][str(version)])
        nonce = os.urandom(12)
        sealed = AESGCM(key).encrypt(nonce, plaintext, context or None)
        return f"{SEALED}:v{version}:{base64.b64encode(nonce + sealed).decode()}"

    def decrypt(self, key_name: str, ciphertext: str, *, context: bytes = b"") -> bytes:
        try:
            prefix, version, b64 = ciphertext.rsplit(":", 2)
            if prefix != SEALED or not version.startswith("v"):
                raise ValueError("not sealed by the local key file")
            with self._keys() as keys:
                key = base64.b64decode(keys[f"aead:{key_name}"]["versions"][version[1:]])
            raw = base64.b64decode(b64, validate=True)
            return AESGCM(key).decrypt(raw[:12], raw[12:], context or None)
        except (KeyError, ValueError, InvalidTag) as exc:
            raise SigningError(f"a value sealed with {key_name} cannot be opened with the local key file "
                               "(wrong key, or the value was changed)", retryable=False) from exc

    def revoke_access(self, key_name: str | None) -> int:
        """Nothing to revoke in a file: the cut-off flag alone stops signing."""
        return 0
