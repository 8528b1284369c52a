"""What every GraphQL resolver may use: the store, run files, URL signing and who is asking."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from nbtrack.server.files import FileStore
from nbtrack.server.history_export import HistoryExports
from nbtrack.server.signing import UrlSigner
from nbtrack.store import Store

__all__ = ["RequestContext"]


@dataclass(frozen=True)
class RequestContext:
    store: Store
    files: FileStore
    signer: UrlSigner
    entity: str  # the caller's: every project and run it may see belongs to this entity
    base_url: str  # this server as the client reached it, without a trailing "/"
    exports: HistoryExports
    # What resolvers of one request share, so a field asked of each of N runs is read once (e.g.
    # Run.project: every run of a listing has the same one). Lives as long as the request.
    memo: dict[Any, Any] = field(default_factory=dict, compare=False)

    def file_url(self, entity: str, project: str, run_id: str, name: str) -> str:
        """Where a run file is read (GET, authenticated) and, with a token, uploaded (PUT)."""
        return f"{self.base_url}/files/{entity}/{project}/{run_id}/{quote(name)}"

    def upload_url(self, entity: str, project: str, run_id: str, name: str) -> str:
        token = self.signer.token(entity, project, run_id, name)
        return f"{self.file_url(entity, project, run_id, name)}?token={token}"

    def download_url(self, entity: str, project: str, run_id: str, name: str) -> str:
        """file_url with a download token: a GET needs no key (wandb's File.url, File.directUrl)."""
        token = self.signer.token(entity, project, run_id, name, purpose="download")
        return f"{self.file_url(entity, project, run_id, name)}?token={token}"
