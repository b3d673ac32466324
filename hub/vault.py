"""Encryption at rest: AES-256-GCM under master keys that carry ids, so keys can rotate.

A ciphertext reads `v1.<key id>.<base64url(nonce | ciphertext+tag)>`. The key id says which master key
sealed it; `context` (e.g. `connection:7:access_token`) is bound as associated data, so a ciphertext
copied into another row or column fails to open. Master keys come from `SWITCHBOARD_MASTER_KEYS`
(comma-separated base64, newest first) or from `<data dir>/master.key` (mode 0600), created on first use.
"""

import base64
import hashlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["KEY_FILE", "Vault", "VaultError", "add_key_file_key", "load_master_keys", "new_master_key"]

KEY_FILE = "master.key"
_VERSION = "v1"


class VaultError(Exception):
    """A ciphertext cannot be opened: unknown key, wrong context or tampering."""


def new_master_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"switchboard-key-id" + key).hexdigest()[:12]


def _decode_keys(text: str) -> list[bytes]:
    keys = [
        base64.b64decode(part.strip(), validate=True) for part in text.replace("\n", ",").split(",") if part.strip()
    ]
    for key in keys:
        if len(key) != 32:
            raise VaultError("master keys must be 32 bytes (base64 of 32 random bytes)")
    return keys


def _write_key_file(path: Path, keys: list[bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(base64.b64encode(k).decode() for k in keys) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def load_master_keys(env_keys: str | None, data_dir: Path) -> list[bytes]:
    """The master keys, newest first; creates the key file (0600) when neither source has any."""
    if env_keys:
        return _decode_keys(env_keys)
    path = data_dir / KEY_FILE
    if not path.exists():
        _write_key_file(path, [new_master_key()])
    return _decode_keys(path.read_text())


def add_key_file_key(data_dir: Path) -> bytes:
    """Put a new key first in the key file, keeping the old ones so existing ciphertexts still open."""
    path = data_dir / KEY_FILE
    keys = _decode_keys(path.read_text()) if path.exists() else []
    key = new_master_key()
    _write_key_file(path, [key, *keys])
    return key


class Vault:
    def __init__(self, keys: list[bytes], reload: Callable[[], list[bytes]] | None = None) -> None:
        if not keys:
            raise VaultError("no master key")
        self._reload = reload
        self._install(keys)

    def _install(self, keys: list[bytes]) -> None:
        self._newest = key_id(keys[0])
        self._keys = {key_id(k): AESGCM(k) for k in keys}

    @property
    def newest_key_id(self) -> str:
        return self._newest

    def encrypt(self, plaintext: str, *, context: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._keys[self._newest].encrypt(nonce, plaintext.encode(), context.encode())
        return f"{_VERSION}.{self._newest}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def decrypt(self, ciphertext: str, *, context: str) -> str:
        try:
            version, kid, payload = ciphertext.split(".", 2)
            raw = base64.urlsafe_b64decode(payload)
        except ValueError as exc:
            raise VaultError("malformed ciphertext") from exc
        if version != _VERSION:
            raise VaultError(f"unknown ciphertext version {version!r}")
        if kid not in self._keys and self._reload is not None:
            # Another process may have rotated the key file since this one started.
            self._install(self._reload())
        aead = self._keys.get(kid)
        if aead is None:
            raise VaultError(f"no master key with id {kid}")
        try:
            return aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except Exception as exc:  # cryptography raises InvalidTag; never echo the payload
            raise VaultError("ciphertext does not open under this context") from exc

    def sealed_with_newest(self, ciphertext: str) -> bool:
        return ciphertext.split(".", 2)[1:2] == [self._newest]

    def reseal(self, ciphertext: str, *, context: str) -> str:
        return (
            ciphertext
            if self.sealed_with_newest(ciphertext)
            else self.encrypt(self.decrypt(ciphertext, context=context), context=context)
        )
