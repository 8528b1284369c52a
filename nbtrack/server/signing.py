"""Signed URLs: what lets a client PUT (or GET) a run file without an Authorization header.

W&B clients PUT run files to the URLs createRunFiles returns, as they would to cloud storage,
with no credentials; wandb's public API downloads files (File.url) and history exports
(parquetHistory's parquetUrls) the same way. The URL's token is an HMAC of (entity, project,
run, file name, expiry) under a secret kept in the store, so every server on one database
accepts every other's URLs. A token is for one purpose: an upload token ("upload", the
default) never reads, a download token ("download") never writes.
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

    def token(
        self,
        entity: str,
        project: str,
        run_id: str,
        name: str,
        now: float | None = None,
        purpose: str = "upload",
    ) -> str:
        expires = int((time.time() if now is None else now) + UPLOAD_URL_SECONDS)
        return f"{expires}.{self._mac(entity, project, run_id, name, expires, purpose)}"

    def check(
        self, token: str | None, entity: str, project: str, run_id: str, name: str, purpose: str = "upload"
    ) -> None:
        """ApiError UNAUTHENTICATED unless token was signed for this file and has not expired."""
        expires, _, mac = (token or "").partition(".")
        valid = (
            expires.isascii()
            and expires.isdigit()
            and len(expires) <= 12
            and int(expires) >= time.time()
            and hmac.compare_digest(
                mac.encode(), self._mac(entity, project, run_id, name, int(expires), purpose).encode()
            )
        )
        if not valid:
            asker = "createRunFiles" if purpose == "upload" else "the run's files or history"
            raise ApiError(
                "UNAUTHENTICATED",
                f"the {purpose} URL's token is missing, expired or not for this file; "
                f"ask {asker} for a new URL",
            )

    def _mac(self, entity: str, project: str, run_id: str, name: str, expires: int, purpose: str) -> str:
        # NUL cannot occur in names, so the fields cannot run into each other. Upload tokens sign
        # the fields alone (as before purposes existed); any other purpose comes first.
        fields: tuple[str, ...] = (entity, project, run_id, name, str(expires))
        if purpose != "upload":
            fields = (purpose, *fields)
        message = "\0".join(fields).encode("utf-8", "surrogatepass")
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()
