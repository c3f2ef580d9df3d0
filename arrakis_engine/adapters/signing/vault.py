"""Vault (or OpenBao) Transit signing through hvac.

The engine logs in by AppRole (``VAULT_ROLE_ID`` / ``VAULT_SECRET_ID``) or with ``VAULT_TOKEN``;
that login may manage keys and mint tokens, but it never signs. To sign with a key, the process
mints a short-lived token from the ``arrakis-signer`` token role whose only policy is that key's
own (``arrakis-signer-<key>``: sign with this one key), and keeps it in memory. Its accessor is
recorded in Redis, so the kill switch can revoke every such token of a community (or all of them)
from any process: signing for that community stops at once; verifying still works.

Keys are Ed25519 Transit keys named ``arrakis-<key name>``; rotation adds a version and old
signatures keep verifying. :func:`provision` sets up a fresh Vault for Arrakis (mount, AppRole,
policies, token role).
"""

from __future__ import annotations

import base64
import logging
import threading
from typing import TYPE_CHECKING

import hvac
import requests
from hvac import exceptions as vault_errors

from ... import keys
from ...errors import SigningError

if TYPE_CHECKING:
    from redis import Redis

log = logging.getLogger(__name__)

ENGINE_POLICY = "arrakis-engine"
SIGNER_ROLE = "arrakis-signer"
APPROLE = "arrakis-engine"
SIGNER_TTL = "1h"


def transit_name(key_name: str) -> str:
    return f"arrakis-{key_name}"


def signer_policy(key_name: str) -> str:
    return f"arrakis-signer-{key_name}"


def _engine_policy(mount: str) -> str:
    return f"""
path "{mount}/keys/arrakis-*" {{ capabilities = ["create", "read", "update"] }}
path "{mount}/keys/arrakis-*/rotate" {{ capabilities = ["update"] }}
path "{mount}/verify/arrakis-*" {{ capabilities = ["update"] }}
path "{mount}/encrypt/arrakis-sealed-*" {{ capabilities = ["update"] }}
path "{mount}/decrypt/arrakis-sealed-*" {{ capabilities = ["update"] }}
path "auth/token/create/{SIGNER_ROLE}" {{ capabilities = ["update"] }}
path "auth/token/revoke-accessor" {{ capabilities = ["update"] }}
path "sys/policies/acl/arrakis-signer-*" {{ capabilities = ["create", "read", "update"] }}
path "sys/policy/arrakis-signer-*" {{ capabilities = ["create", "read", "update"] }}
"""


def provision(admin: hvac.Client, *, mount: str = "transit") -> dict:
    """Prepare a Vault for Arrakis with an admin token: the Transit mount, the engine's policy
    and AppRole, and the signer token role. Returns the AppRole's role id and a new secret id
    (secrets: hand them to the engine's environment, never to a log)."""
    mounts = admin.sys.list_mounted_secrets_engines()
    if f"{mount}/" not in mounts.get("data", mounts):
        admin.sys.enable_secrets_engine("transit", path=mount)
    auths = admin.sys.list_auth_methods()
    if "approle/" not in auths.get("data", auths):
        admin.sys.enable_auth_method("approle")
    admin.sys.create_or_update_policy(ENGINE_POLICY, _engine_policy(mount))
    admin.adapter.post(f"/v1/auth/token/roles/{SIGNER_ROLE}",
                       json={"allowed_policies_glob": ["arrakis-signer-*"], "orphan": True, "renewable": False,
                             "token_explicit_max_ttl": "4h"})
    admin.auth.approle.create_or_update_approle(APPROLE, token_policies=[ENGINE_POLICY], token_ttl="1h",
                                                token_max_ttl="4h")
    role_id = admin.auth.approle.read_role_id(APPROLE)["data"]["role_id"]
    secret_id = admin.auth.approle.generate_secret_id(APPROLE)["data"]["secret_id"]
    return {"role_id": role_id, "secret_id": secret_id}


class VaultTransitSigner:
    kind = "Vault Transit"

    def __init__(self, addr: str, redis: Redis, *, token: str | None = None, role_id: str | None = None,
                 secret_id: str | None = None, mount: str = "transit", timeout: float = 5.0) -> None:
        if not token and not (role_id and secret_id):
            raise SigningError("Vault needs VAULT_ROLE_ID and VAULT_SECRET_ID (AppRole), or VAULT_TOKEN")
        self.addr = addr
        self.redis = redis
        self.mount = mount
        self.timeout = timeout
        self._token = token
        self._role = (role_id, secret_id)
        self._admin: hvac.Client | None = None
        self._signers: dict[str, tuple[hvac.Client, str]] = {}
        self._sealing_keys: set[str] = set()
        self._lock = threading.Lock()

    # --- clients -------------------------------------------------------------------------------

    def _call(self, what: str, fn):
        try:
            return fn()
        except vault_errors.Forbidden as exc:
            raise SigningError(f"Vault refused to {what} (permission denied)", retryable=False) from exc
        except vault_errors.InvalidPath as exc:
            raise SigningError(f"Vault has no such key or path while trying to {what}", retryable=False) from exc
        except (requests.RequestException, vault_errors.VaultDown, vault_errors.InternalServerError,
                vault_errors.BadGateway) as exc:
            raise SigningError(f"Vault could not be reached to {what} ({type(exc).__name__})",
                               hint="check VAULT_ADDR and that Vault is unsealed") from exc
        except vault_errors.VaultError as exc:
            raise SigningError(f"Vault failed to {what} ({type(exc).__name__})") from exc

    def _admin_client(self) -> hvac.Client:
        with self._lock:
            if self._admin is not None:
                return self._admin
            client = hvac.Client(url=self.addr, timeout=self.timeout)
            if self._token:
                client.token = self._token
            else:
                self._call("log in with AppRole", lambda: client.auth.approle.login(*self._role))
            self._admin = client
            return client

    def _admin_do(self, what: str, fn):
        """Run ``fn(admin)``; once more after a fresh login if the login token has expired."""
        try:
            return self._call(what, lambda: fn(self._admin_client()))
        except SigningError:
            if self._token:
                raise
            with self._lock:
                self._admin = None
            return self._call(what, lambda: fn(self._admin_client()))

    def _ensure_key(self, key_name: str) -> None:
        name = transit_name(key_name)

        def ensure(admin: hvac.Client) -> None:
            try:
                admin.secrets.transit.read_key(name, mount_point=self.mount)
            except vault_errors.InvalidPath:
                admin.secrets.transit.create_key(name, key_type="ed25519", mount_point=self.mount)
            admin.sys.create_or_update_policy(
                signer_policy(key_name), f'path "{self.mount}/sign/{name}" {{ capabilities = ["update"] }}\n')
        self._admin_do(f"prepare key {name}", ensure)

    def _signer(self, key_name: str) -> hvac.Client:
        with self._lock:
            held = self._signers.get(key_name)
        if held is not None:
            return held[0]
        self._ensure_key(key_name)
        created = self._admin_do(
            f"mint a signing token for {key_name}",
            lambda admin: admin.auth.token.create(role_name=SIGNER_ROLE, policies=[signer_policy(key_name)],
                                                  ttl=SIGNER_TTL, display_name=f"sign-{key_name}"[:40]))
        auth = created["auth"]
        pipe = self.redis.pipeline()
        pipe.sadd(keys.vault_accessors(key_name), auth["accessor"])
        pipe.sadd(keys.vault_accessors("*keys"), key_name)
        pipe.execute()
        client = hvac.Client(url=self.addr, token=auth["client_token"], timeout=self.timeout)
        with self._lock:
            self._signers[key_name] = (client, auth["accessor"])
        return client

    # --- the port ------------------------------------------------------------------------------

    def sign(self, key_name: str, data: bytes) -> str:
        payload = base64.b64encode(data).decode()

        def sign_once():
            client = self._signer(key_name)
            return self._call(f"sign with {key_name}", lambda: client.secrets.transit.sign_data(
                transit_name(key_name), hash_input=payload, mount_point=self.mount))["data"]["signature"]
        try:
            return sign_once()
        except SigningError:
            # The token may have been revoked or expired: forget it and mint one more (the caller
            # has checked the kill switch's cut-off before asking).
            with self._lock:
                self._signers.pop(key_name, None)
            return sign_once()

    def verify(self, key_name: str, data: bytes, signature: str) -> bool:
        if not signature.startswith("vault:v"):
            return False
        payload = base64.b64encode(data).decode()
        try:
            resp = self._admin_do(f"verify with {key_name}", lambda admin: admin.secrets.transit.verify_signed_data(
                transit_name(key_name), hash_input=payload, signature=signature, mount_point=self.mount))
        except SigningError as exc:
            if isinstance(exc.__cause__, vault_errors.InvalidRequest):
                return False  # a malformed or unknown-version signature does not verify
            raise
        return bool(resp["data"]["valid"])

    def rotate(self, key_name: str) -> int:
        self._ensure_key(key_name)
        name = transit_name(key_name)
        self._admin_do(f"rotate {name}", lambda admin: admin.secrets.transit.rotate_key(name, mount_point=self.mount))
        return int(self._admin_do(f"read {name}", lambda admin: admin.secrets.transit.read_key(
            name, mount_point=self.mount))["data"]["latest_version"])

    def _read(self, key_name: str) -> dict | None:
        name = transit_name(key_name)

        def read(admin):
            try:
                return admin.secrets.transit.read_key(name, mount_point=self.mount)["data"]
            except vault_errors.InvalidPath:
                return None
        return self._admin_do(f"read {name}", read)

    def status(self, key_name: str) -> dict:
        try:
            data = self._read(key_name)
        except SigningError as exc:
            return {"key": key_name, "backend": self.kind, "reachable": False, "problem": str(exc),
                    "latest_version": None, "versions": []}
        return {"key": key_name, "backend": self.kind, "reachable": True,
                "latest_version": data["latest_version"] if data else 0,
                "versions": sorted(int(v) for v in data["keys"]) if data else []}

    def public_keys(self, key_name: str) -> dict[int, str]:
        data = self._read(key_name)
        if not data:
            return {}
        return {int(v): k.get("public_key", "") for v, k in data["keys"].items()}

    # --- encryption at rest (Transit encrypt/decrypt with an aes256-gcm96 key) ------------------
    # The engine's own login does this, not the signing tokens, so the kill switch (which revokes
    # signing tokens) never stops operators' codes from being checked.

    def _ensure_sealing_key(self, key_name: str) -> str:
        name = f"arrakis-sealed-{key_name}"
        if name in self._sealing_keys:
            return name

        def ensure(admin: hvac.Client) -> None:
            try:
                admin.secrets.transit.read_key(name, mount_point=self.mount)
            except vault_errors.InvalidPath:
                admin.secrets.transit.create_key(name, key_type="aes256-gcm96", derived=True,
                                                 mount_point=self.mount)
        self._admin_do(f"prepare key {name}", ensure)
        self._sealing_keys.add(name)
        return name

    def encrypt(self, key_name: str, plaintext: bytes, *, context: bytes = b"") -> str:
        """Transit's ``vault:v<version>:...`` ciphertext; ``context`` (key derivation context)
        must be given again to decrypt."""
        name = self._ensure_sealing_key(key_name)
        return self._admin_do(f"encrypt with {name}", lambda admin: admin.secrets.transit.encrypt_data(
            name, plaintext=base64.b64encode(plaintext).decode(), context=base64.b64encode(context or b"-").decode(),
            mount_point=self.mount))["data"]["ciphertext"]

    def decrypt(self, key_name: str, ciphertext: str, *, context: bytes = b"") -> bytes:
        name = self._ensure_sealing_key(key_name)
        if not str(ciphertext).startswith("vault:v"):
            raise SigningError(f"a value sealed with {key_name} was not sealed by Vault", retryable=False)
        try:
            data = self._admin_do(f"decrypt with {name}", lambda admin: admin.secrets.transit.decrypt_data(
                name, ciphertext=ciphertext, context=base64.b64encode(context or b"-").decode(),
                mount_point=self.mount))
        except SigningError as exc:
            if isinstance(exc.__cause__, vault_errors.InvalidRequest):
                raise SigningError(f"a value sealed with {key_name} cannot be opened (wrong key, or the value "
                                   "was changed)", retryable=False) from exc
            raise
        return base64.b64decode(data["data"]["plaintext"])

    def revoke_access(self, key_name: str | None) -> int:
        """Revoke every signing token minted for ``key_name`` (None: for every key), by any
        process. Returns how many were revoked."""
        names = ([key_name] if key_name is not None
                 else [n.decode() if isinstance(n, bytes) else n for n in self.redis.smembers(keys.vault_accessors("*keys"))])
        revoked = 0
        for name in names:
            for accessor in self.redis.smembers(keys.vault_accessors(name)):
                accessor = accessor.decode() if isinstance(accessor, bytes) else accessor
                try:
                    self._admin_do("revoke a signing token",
                                   lambda admin: admin.auth.token.revoke_accessor(accessor))
                    revoked += 1
                except SigningError as exc:
                    if not isinstance(exc.__cause__, (vault_errors.InvalidRequest, vault_errors.InvalidPath)):
                        raise
                    # already expired or revoked: nothing left to do for this one
                self.redis.srem(keys.vault_accessors(name), accessor)
        with self._lock:
            for name in names:
                self._signers.pop(name, None)
        return revoked
