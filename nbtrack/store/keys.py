"""API keys of the tracking server: how one looks and how the store keeps it (hashed, never in clear)."""

from __future__ import annotations

import hashlib
import secrets

__all__ = ["KEY_PREFIX", "hash_key", "new_key", "shown_prefix"]

KEY_PREFIX = "nbt_"
_RANDOM_BYTES = 20  # 160 bits: far beyond guessing, so a plain hash (no salt, no stretching) is enough


def new_key() -> str:
    return KEY_PREFIX + secrets.token_hex(_RANDOM_BYTES)


def hash_key(key: str) -> str:
    """SHA-256 hex of the key: what the api_keys table holds and what a lookup compares."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def shown_prefix(key: str) -> str:
    """The start of a key that `nbtrack server key list` shows to tell keys apart."""
    return key[: len(KEY_PREFIX) + 6]
