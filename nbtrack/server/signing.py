"""Signed upload URLs: what lets a client PUT a run file without an Authorization header.

W&B clients PUT run files to the URLs createRunFiles returns, as they would to cloud storage,
with no credentials. The URL's token is an HMAC of (entity, project, run, file name, expiry)
under a secret kept in the store, so every server on one database accepts every other's URLs.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from nbtrack.server.errors import ApiError

__all__ = ["UPLOAD_URL_SECONDS", "UrlSigner"]

UPLOAD_URL_SECONDS = 24 * 3600  # long enough for a run's final uploads after a long queue


class UrlSigner:
    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()

    def token(self, entity: str, project: str, run_id: str, name: str, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + UPLOAD_URL_SECONDS)
        return f"{expires}.{self._mac(entity, project, run_id, name, expires)}"

    def check(self, token: str | None, entity: str, project: str, run_id: str, name: str) -> None:
        """ApiError UNAUTHENTICATED unless token was signed for this file and has not expired."""
        expires, _, mac = (token or "").partition(".")
        valid = (
            expires.isascii()
            and expires.isdigit()
            and len(expires) <= 12
            and int(expires) >= time.time()
            and hmac.compare_digest(
                mac.encode(), self._mac(entity, project, run_id, name, int(expires)).encode()
            )
        )
        if not valid:
            raise ApiError(
                "UNAUTHENTICATED",
                "the upload URL's token is missing, expired or not for this file; "
                "ask createRunFiles for a new URL",
            )

    def _mac(self, entity: str, project: str, run_id: str, name: str, expires: int) -> str:
        # NUL cannot occur in names, so the fields cannot run into each other.
        message = "\0".join((entity, project, run_id, name, str(expires))).encode("utf-8", "surrogatepass")
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()
