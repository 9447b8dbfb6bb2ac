"""Encryption of secrets at rest and keyed fingerprints for change detection.

The master key is a Fernet key (32 random bytes, URL-safe base64). It comes
from, in order:

1. the ``HQSYNC_MASTER_KEY`` environment variable;
2. the ``key_file`` given to :func:`hqsync.store.open_store`;
3. for a SQLite store, the file ``<database>.key`` beside the database;
4. for a PostgreSQL store, ``~/.config/hqsync/<host>-<port>-<database>.key``
   (``$XDG_CONFIG_HOME`` replaces ``~/.config`` when set).

A key file that does not exist is created with mode 0600; an existing one
readable by group or others is rejected. Every host that runs hqsync against
one PostgreSQL store needs the same key, so set ``HQSYNC_MASTER_KEY`` there.

Secrets are compared through :meth:`Cipher.fingerprint`, an HMAC-SHA256 keyed
by a key derived from the master key with HKDF, so a fingerprint reveals
nothing without the key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import stat
import tempfile
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hqsync.errors import StoreError

log = logging.getLogger(__name__)

MASTER_KEY_VARIABLE = "HQSYNC_MASTER_KEY"

_FINGERPRINT_INFO = b"hqsync fingerprint v1"
_KEY_CHECK_FIELD = "hqsync-key-check"


class Cipher:
    """Encrypt and decrypt secret fields with Fernet; fingerprint them with HMAC."""

    def __init__(self, master_key: bytes, *, source: str) -> None:
        try:
            self._fernet = Fernet(master_key)
        except (ValueError, TypeError):
            raise StoreError(
                f"invalid master key from {source}: expected 32 bytes in URL-safe "
                "base64, as made by Fernet.generate_key()"
            ) from None
        self.source = source
        raw = base64.urlsafe_b64decode(master_key)
        self._hmac_key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=_FINGERPRINT_INFO
        ).derive(raw)

    def __repr__(self) -> str:
        return f"Cipher(source={self.source!r})"

    def encrypt(self, secrets: dict[str, str]) -> bytes:
        """Encrypt a mapping of secret fields as one Fernet token."""
        return self._fernet.encrypt(json.dumps(secrets, sort_keys=True).encode())

    def decrypt(self, token: bytes) -> dict[str, str]:
        """Decrypt a token made by :meth:`encrypt`; a wrong key raises StoreError."""
        try:
            plain = self._fernet.decrypt(token)
        except InvalidToken:
            raise StoreError(
                f"cannot decrypt a secret with the master key from {self.source}: "
                "the store was written with another key"
            ) from None
        value = json.loads(plain)
        if not isinstance(value, dict):
            raise StoreError("a decrypted secret is not a JSON object")
        return {str(key): str(item) for key, item in value.items()}

    def fingerprint(self, field: str, value: str) -> str:
        """Return the keyed HMAC-SHA256 of one secret field, as hex."""
        message = field.encode() + b"\0" + value.encode()
        return hmac.new(self._hmac_key, message, hashlib.sha256).hexdigest()

    def key_check(self) -> str:
        """Return a fingerprint that identifies this key without revealing it."""
        return self.fingerprint(_KEY_CHECK_FIELD, "")


def load_cipher(default_key_file: Path | None, key_file: Path | None) -> Cipher:
    """Load the master key from the environment or a key file, creating the file."""
    from_env = os.environ.get(MASTER_KEY_VARIABLE)
    if from_env:
        return Cipher(from_env.strip().encode(), source=MASTER_KEY_VARIABLE)
    path = key_file or default_key_file
    if path is None:
        # An in-memory store lives only as long as this process, so its key can too.
        return Cipher(Fernet.generate_key(), source="a key made for this process")
    return Cipher(_read_or_create_key_file(path), source=str(path))


def default_postgres_key_file(
    host: str | None, port: int | None, database: str
) -> Path:
    """Return the key file of a PostgreSQL store, under the user's config folder."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    name = f"{host or 'localhost'}-{port or 5432}-{database}.key"
    return Path(base) / "hqsync" / name.replace("/", "_")


def _read_or_create_key_file(path: Path) -> bytes:
    if path.exists():
        return _read_key_file(path)
    key = Fernet.generate_key()
    # Write the key to a private temporary file, then link it into place: the
    # link fails if another process got there first, and no process ever reads
    # a half-written key file.
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(prefix=".hqsync-key-", dir=path.parent)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(key + b"\n")
        try:
            os.link(temporary, path)
        except FileExistsError:
            return _read_key_file(path)
        finally:
            os.unlink(temporary)
    except OSError as exc:
        raise StoreError(f"cannot create the key file {path}: {exc.strerror}") from None
    log.info("created master key file %s", path)
    return key


def _read_key_file(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise StoreError(
                f"key file {path} is readable by other users (mode "
                f"{stat.S_IMODE(mode):04o}); run: chmod 600 {path}"
            )
        key = path.read_bytes().strip()
    except OSError as exc:
        raise StoreError(f"cannot read the key file {path}: {exc.strerror}") from None
    if not key:
        raise StoreError(f"key file {path} is empty; delete it or write a key into it")
    return key
