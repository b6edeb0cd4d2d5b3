"""Encryption at rest of identifiers (ID document numbers): Fernet tokens under a list of
keys, plus a keyed hash for exact lookup.

Keys
    settings.FIELD_ENCRYPTION_KEYS: Fernet keys (32 random bytes, url-safe base64), newest
    first. New values are encrypted with the first; a value decrypts with any of them
    (cryptography's MultiFernet). To rotate: put a new key first, deploy, run
    `manage.py rotate_field_keys` (re-encrypts every row under the newest key), then drop
    the old key. Generate a key with
    `python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`.

Ciphertext
    Fernet (AES-128-CBC + HMAC-SHA256, random IV, timestamp): two writes of the same value
    give different tokens, so equal ciphertexts reveal nothing and nothing can be looked up
    by ciphertext.

Lookup
    settings.FIELD_HASH_KEY (a separate secret): HMAC-SHA256 of the normalised value (NFKC,
    no white space, upper case), hex, stored beside the ciphertext and indexed. Without the
    key the hash cannot be brute-forced from the small space of ID numbers; with it, exact
    matches are one index probe. Changing FIELD_HASH_KEY needs `rotate_field_keys`, which
    recomputes every hash.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

TOKEN_PREFIX = "gAAAAA"  # noqa: S105 - not a secret: every Fernet token (version byte 0x80, then the timestamp) starts so


class DecryptionError(Exception):
    """A stored token that none of FIELD_ENCRYPTION_KEYS opens: the key is wrong, or was
    removed before `rotate_field_keys` re-encrypted the rows under a newer one."""


def _key_list() -> tuple[str, ...]:
    keys = getattr(settings, "FIELD_ENCRYPTION_KEYS", None)
    if isinstance(keys, str):
        keys = [keys]
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS must list at least one Fernet key.")
    return tuple(keys)


@lru_cache(maxsize=8)
def _fernets(keys: tuple[str, ...]) -> tuple[MultiFernet, Fernet]:
    try:
        fernets = [Fernet(key) for key in keys]
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"FIELD_ENCRYPTION_KEYS holds a value that is not a Fernet key: {exc}") from None
    return MultiFernet(fernets), fernets[0]


def multi_fernet() -> MultiFernet:
    return _fernets(_key_list())[0]


def primary_fernet() -> Fernet:
    return _fernets(_key_list())[1]


def encrypt(value: str) -> str:
    """A fresh Fernet token of `value` under the newest key."""
    return multi_fernet().encrypt(value.encode("utf-8")).decode("ascii")


def decrypt(token: str) -> str:
    """The plaintext of `token`; DecryptionError if no configured key opens it."""
    try:
        return multi_fernet().decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeEncodeError):
        raise DecryptionError(
            "cannot decrypt a stored value with any key of FIELD_ENCRYPTION_KEYS (wrong key, or an old key "
            "removed before `manage.py rotate_field_keys` re-encrypted the rows)"
        ) from None


def decrypt_with_primary(token: str) -> str | None:
    """The plaintext if `token` is under the newest key, else None (rotation's skip test)."""
    try:
        return primary_fernet().decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeEncodeError):
        return None


def looks_encrypted(value: str) -> bool:
    """True for a Fernet token (data migrations tell tokens from plaintext identifiers by
    trying to decrypt; this is only the cheap first test)."""
    return value.startswith(TOKEN_PREFIX) and len(value) >= 100


def normalise(value: str) -> str:
    """The form an identifier is hashed in: NFKC (full-width digits and letters become
    ASCII), white space removed, upper case: '11010519800517123x', its full-width spelling
    and '110105 19800517 123X' hash alike."""
    return "".join(unicodedata.normalize("NFKC", value).split()).upper()


def _hash_key() -> bytes:
    key = getattr(settings, "FIELD_HASH_KEY", "")
    if not key:
        raise ImproperlyConfigured("FIELD_HASH_KEY must be set.")
    return key.encode("utf-8")


def blind_index(value: str | None) -> str:
    """HMAC-SHA256 (FIELD_HASH_KEY) of the normalised value, 64 hex characters; '' for empty."""
    if not value:
        return ""
    normalised = normalise(value)
    if not normalised:
        return ""
    return hmac.new(_hash_key(), normalised.encode("utf-8"), hashlib.sha256).hexdigest()


def encrypt_many(values: Iterable[str]) -> list[str]:
    """Tokens of many values (bulk loaders); '' and None stay as they are."""
    fernet = multi_fernet()
    return [fernet.encrypt(v.encode("utf-8")).decode("ascii") if v else v for v in values]


def blind_index_many(values: Iterable[str]) -> list[str]:
    key = _hash_key()
    out = []
    for value in values:
        normalised = normalise(value) if value else ""
        out.append(hmac.new(key, normalised.encode("utf-8"), hashlib.sha256).hexdigest() if normalised else "")
    return out
