"""Who a request acts as: HTTP Basic auth with an API key as password, or open mode on loopback.

Open mode: a server bound to loopback whose store has no keys lets every request act as
the default entity, like local mode does. Once a key exists, every request needs a valid key
(checked on each request, so a key created while the server runs takes effect at once) and
acts as the key's entity. Keys and Authorization headers are never logged.

A key is only ever compared as its SHA-256 (the store looks the hash up; this cache is keyed by
it): how long a comparison takes can tell at most how much of a guess's *hash* matches, which
says nothing about the key, so no comparison here needs to be constant-time.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time

from nbtrack.server.errors import ApiError
from nbtrack.settings import DEFAULT_ENTITY
from nbtrack.store import Store
from nbtrack.store.keys import hash_key

__all__ = ["CHALLENGE", "Authenticator"]

CHALLENGE = {"WWW-Authenticate": 'Basic realm="nbtrack"'}
_KNOWN_KEY_SECONDS = 10.0  # how long a key found valid is trusted without asking the store again


class Authenticator:
    """Maps a request's Authorization header to the entity it acts as (blocking: call from a thread)."""

    def __init__(self, store: Store, *, open_allowed: bool) -> None:
        self._store = store
        self._open_allowed = open_allowed
        # sha256(key) -> (entity, until): the hot path skips the store, and no key is kept in clear
        self._known: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def entity(self, authorization: str | None) -> str:
        """The entity of the request, or ApiError UNAUTHENTICATED."""
        key = _basic_password(authorization)
        if key:
            entity = self._entity_for_key(key)
            if entity is not None:
                return entity
        if self._open_allowed and self._store.key_count() == 0:
            return DEFAULT_ENTITY
        if key:
            raise ApiError("UNAUTHENTICATED", "the API key is not valid on this server")
        raise ApiError(
            "UNAUTHENTICATED",
            "this server needs an API key: send HTTP Basic auth with user 'api' and the key as password",
        )

    def key_entity(self, authorization: str | None) -> str | None:
        """The entity of the header's key if it is a valid key, else None (open mode aside)."""
        key = _basic_password(authorization)
        return self._entity_for_key(key) if key else None

    def known_entity(self, authorization: str | None) -> str | None:
        """The entity of the header's key if it was found valid lately, else None; never asks the
        store, so the event loop may call it (the hot path skips a thread's round trip)."""
        key = _basic_password(authorization)
        return self._known_entity(hash_key(key), time.monotonic()) if key else None

    def _known_entity(self, hashed: str, now: float) -> str | None:
        with self._lock:
            known = self._known.get(hashed)
        return known[0] if known is not None and known[1] > now else None

    def _entity_for_key(self, key: str) -> str | None:
        now = time.monotonic()
        hashed = hash_key(key)
        if (known := self._known_entity(hashed, now)) is not None:
            return known
        entity = self._store.entity_for_key(key)
        if entity is not None:
            with self._lock:  # only valid keys are kept, so this stays as small as the api_keys table
                self._known[hashed] = (entity, now + _KNOWN_KEY_SECONDS)
        return entity


def _basic_password(authorization: str | None) -> str | None:
    """The password of a Basic Authorization header (the user name is not checked), or None."""
    if not authorization:
        return None
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _user, sep, password = decoded.partition(":")
    return password if sep else None
