"""The ASGI app: routes, who is asking, and the handlers that turn every failure into the one error shape.

    GET  /healthz                                        200 {"ok": true} while the store answers
    POST /graphql                                        GraphQL (graphql_http.py)
    POST /files/{entity}/{project}/{run}/file_stream     history, summary, events, output (filestream.py)
    PUT  /files/{entity}/{project}/{run}/{name}?token=   upload a run file to a signed URL (no key needed)
    GET  /files/{entity}/{project}/{run}/{name}[?token=] download a run file (a download token: no key needed)
    GET  /history/{entity}/{project}/{run}/{segment}.parquet?token=
                                                         a segment of a run's history (scan_history)
    GET  /, /{entity}/{project}[/runs/{run}|/compare]    the web UI's page; GET /static/... its files (ui.py)

Everything blocking (the store, the GraphQL resolvers) runs in Starlette's thread pool, so the
event loop keeps serving while a large post is written.
"""

from __future__ import annotations

import logging
import mimetypes
from pathlib import PurePosixPath
from urllib.parse import quote

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from nbtrack.server.artifact_files import ArtifactFiles, v2_blob
from nbtrack.server.auth import CHALLENGE, Authenticator
from nbtrack.server.body import (
    body_chunks,
    check_json_type,
    check_length,
    log_if_too_large,
    parse_object,
    read_body,
)
from nbtrack.server.byte_range import byte_range
from nbtrack.server.compaction import BackendArchive
from nbtrack.server.config import ServerConfig, is_loopback
from nbtrack.server.context import RequestContext
from nbtrack.server.errors import ApiError, error_response
from nbtrack.server.file_backend import open_file_backend
from nbtrack.server.files import FileStore, check_file_name
from nbtrack.server.filestream import apply_post, parse_post
from nbtrack.server.graphql_http import run_graphql
from nbtrack.server.history_export import HistoryExports
from nbtrack.server.hosts import UNCHECKED_PATHS, cross_origin, refusal
from nbtrack.server.limits import RateLimiter, RateLimitMiddleware
from nbtrack.server.names import check_name, check_project
from nbtrack.server.signing import UrlSigner
from nbtrack.server.timeouts import BodyDeadline
from nbtrack.server.ui import ui_routes
from nbtrack.store import Store

__all__ = ["CLIENT_HEADER", "create_app"]

log = logging.getLogger("nbtrack.server")

# Starlette's own HTTP errors (unknown path, wrong method) in the error shape.
_HTTP_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}
# Sent by nbtrack's own clients (the web UI): they ask for the key themselves, so a 401 must not
# carry the Basic challenge that makes a browser pop up its native login dialog.
CLIENT_HEADER = "X-Nbtrack-Client"
_UPLOAD_SECRET = "upload_urls"
PARQUET_TYPE = "application/vnd.apache.parquet"
_DOWNLOAD_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "X-Content-Type-Options": "nosniff",
}


class Endpoints:
    """The server's endpoints, sharing one store."""

    def __init__(self, config: ServerConfig, store: Store) -> None:
        self.config = config
        self.store = store
        self.auth = Authenticator(store, open_allowed=is_loopback(config.host))
        self.backend = open_file_backend(config.files_dir)
        self.files = FileStore(self.backend)
        self.signer = UrlSigner(store.server_secret(_UPLOAD_SECRET))
        self.exports = HistoryExports(store, self.backend)
        store.attach_archive(BackendArchive(self.backend))  # compacted runs' histories (compaction.py)
        self.artifact_files = ArtifactFiles(store, self.backend, self.signer, config.max_upload)

    async def healthz(self, request: Request) -> Response:
        try:
            await run_in_threadpool(self.store.key_count)
        except Exception as exc:
            log.warning("health check failed: %s", exc)
            return error_response(ApiError("INTERNAL", "the store does not answer"), status=503)
        return _json({"ok": True})

    async def graphql(self, request: Request) -> Response:
        entity = await self._caller(request)
        check_json_type(request)
        body = await read_body(request, self.config.max_body)
        context = RequestContext(
            self.store,
            self.files,
            self.signer,
            entity,
            str(request.base_url).rstrip("/"),
            self.exports,
        )
        status, payload = await run_in_threadpool(run_graphql, body, context)
        return Response(payload, status_code=status, media_type="application/json")

    async def file_stream(self, request: Request) -> Response:
        entity, project, run_id = self._run_path(request, await self._caller(request))
        check_json_type(request)
        body = await read_body(request, self.config.max_body)
        await run_in_threadpool(self._apply_stream, body, entity, project, run_id)
        return _json({"exitcode": None, "limits": {}})

    async def run_file(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name == "file_stream":  # the file stream's path, asked with GET or PUT
            raise ApiError("METHOD_NOT_ALLOWED", f"{request.method} is not allowed on {request.url.path}")
        if request.method == "PUT":
            return await self._upload(request, name)
        token = request.query_params.get("token")
        if token is None:
            entity, project, run_id = self._run_path(request, await self._caller(request))
        else:  # a download URL of wandb's public API (File.url): the token is the permission
            entity, project, run_id = self._signed_path(request)
            check_file_name(name)  # a bad name is a 400 before the token
            self.signer.check(token, entity, project, run_id, name, purpose="download")
        key = self.files.key(entity, project, run_id, name)
        missing = ApiError("NOT_FOUND", f"run {entity}/{project}/{run_id} has no file {name!r}")
        # A run file is whatever a run saved: an .html or .svg one opened on this origin could run
        # script with the UI's session. So it is always a download, sniffing is off, and a browser
        # that renders it anyway does so in a sandbox with nothing allowed.
        headers = {**_DOWNLOAD_HEADERS, "Content-Disposition": _attachment(PurePosixPath(name).name)}
        media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return await self._serve(request, key, media_type, headers, missing)

    async def _upload(self, request: Request, name: str) -> Response:
        # No Authorization: the signed token in the URL is the permission (signing.py).
        entity, project, run_id = self._signed_path(request)
        check_file_name(name)  # checks the name before the token, for a clear 400
        self.signer.check(request.query_params.get("token"), entity, project, run_id, name)
        if await run_in_threadpool(self.store.get_run, entity, project, run_id) is None:
            # A URL signed before its run was deleted: no file of a deleted run comes back.
            raise ApiError("NOT_FOUND", f"run {entity}/{project}/{run_id} does not exist")
        try:
            check_length(request, self.config.max_upload)
            size = await self.files.save(
                entity, project, run_id, name, body_chunks(request), self.config.max_upload
            )
        except ApiError as exc:
            log_if_too_large(f"run file {name!r} of {entity}/{project}/{run_id}", exc)
            raise
        return _json({"name": name, "sizeBytes": size})

    async def history_export(self, request: Request) -> Response:
        # No Authorization: the signed token in the URL is the permission (history_export.py).
        entity, project, run_id = self._signed_path(request)
        segment = request.path_params["segment"]
        self.signer.check(
            request.query_params.get("token"), entity, project, run_id, segment, purpose="history"
        )
        key = await run_in_threadpool(self.exports.parquet, entity, project, run_id, segment)
        missing = ApiError("NOT_FOUND", f"run {entity}/{project}/{run_id} has no history segment {segment}")
        return await self._serve(request, key, PARQUET_TYPE, dict(_DOWNLOAD_HEADERS), missing)

    async def _serve(
        self, request: Request, key: str, media_type: str, headers: dict[str, str], missing: ApiError
    ) -> Response:
        """The backend's object key, streamed (whole, or the one byte range asked); missing if
        there is none. Once opened, deleting the object meanwhile does not cut the download off."""
        found = await run_in_threadpool(self.backend.stat, key)
        if found is None:
            raise missing
        asked = byte_range(request.headers.get("range"), found.size)
        first, last = asked if asked is not None else (0, None)
        opened = await run_in_threadpool(self.backend.open, key, first, last)
        if opened is None:  # deleted since
            raise missing
        headers = {**headers, "Accept-Ranges": "bytes"}
        if asked is None:
            headers["Content-Length"] = str(opened.size)
            return StreamingResponse(opened.chunks, media_type=media_type, headers=headers)
        headers["Content-Length"] = str(asked[1] - asked[0] + 1)
        headers["Content-Range"] = f"bytes {asked[0]}-{asked[1]}/{opened.size}"
        return StreamingResponse(opened.chunks, status_code=206, media_type=media_type, headers=headers)

    async def artifact_file(self, request: Request) -> Response:
        """An artifact file's bytes: /artifacts/<entity>/<hex MD5> (storage layout V1) or
        /artifactsV2/<region>/<entity>/.../<hex MD5>/<name> (V2); artifact_files.py."""
        if "md5" in request.path_params:
            entity, md5_hex = request.path_params["entity"], request.path_params["md5"]
        else:
            entity, md5_hex = v2_blob(request.path_params["rest"])
        token = request.query_params.get("token")
        caller = None if token is not None else await self._caller(request)
        key = self.artifact_files.blob_to_serve(entity, md5_hex, token, caller)
        missing = ApiError("NOT_FOUND", f"no artifact file {md5_hex} of entity {entity!r}")
        headers = {**_DOWNLOAD_HEADERS, "Content-Disposition": _attachment(md5_hex)}
        return await self._serve(request, key, "application/octet-stream", headers, missing)

    @staticmethod
    def _signed_path(request: Request) -> tuple[str, str, str]:
        entity, project, run_id = _path_names(request)
        return entity, project, run_id

    def _apply_stream(self, body: bytes, entity: str, project: str, run_id: str) -> None:
        apply_post(self.store, entity, project, run_id, parse_post(parse_object(body, "file stream")))

    async def _caller(self, request: Request) -> str:
        """The entity the request acts as (ApiError UNAUTHENTICATED without a valid key)."""
        header = request.headers.get("authorization")
        known = self.auth.known_entity(header)
        return known if known is not None else await run_in_threadpool(self.auth.entity, header)

    def _run_path(self, request: Request, caller: str) -> tuple[str, str, str]:
        """The checked (entity, project, run) of a /files/ path; NOT_FOUND if not the caller's entity."""
        entity, project, run_id = _path_names(request)
        if entity != caller:
            raise ApiError("NOT_FOUND", f"run {entity}/{project}/{run_id} does not exist or is not yours")
        return entity, project, run_id


def create_app(config: ServerConfig, store: Store) -> Starlette:
    endpoints = Endpoints(config, store)
    run_path = "/files/{entity}/{project}/{run}"
    routes = [
        Route("/healthz", endpoints.healthz, methods=["GET"]),
        Route("/graphql", endpoints.graphql, methods=["POST"]),
        Route(f"{run_path}/file_stream", endpoints.file_stream, methods=["POST"]),
        Route(f"{run_path}/{{name:path}}", endpoints.run_file, methods=["GET", "PUT"]),
        Route(
            "/history/{entity}/{project}/{run}/{segment}.parquet", endpoints.history_export, methods=["GET"]
        ),
        Route("/artifacts/{entity}/{md5}", endpoints.artifact_file, methods=["GET"]),
        Route("/artifacts/{entity}/{md5}", endpoints.artifact_files.upload_blob, methods=["PUT"]),
        Route("/artifactsV2/{rest:path}", endpoints.artifact_file, methods=["GET"]),
        Route(
            "/artifact-manifests/{entity}/{version}",
            endpoints.artifact_files.upload_manifest,
            methods=["PUT"],
        ),
        Route(
            "/artifact-manifests/{entity}/{version}",
            endpoints.artifact_files.download_manifest,
            methods=["GET"],
        ),
        # After the API's routes: none of their paths has the shape of a page.
        *ui_routes(),
    ]
    # Outermost first: a request for another host name, then a caller over its budget, is
    # refused before anything else is done for it.
    middleware = [Middleware(BodyDeadline, body_timeout=config.body_timeout)]
    if config.rate_limit > 0:
        limiter = RateLimiter(config.rate_limit, config.rate_burst)
        auth = endpoints.auth
        middleware.insert(
            0,
            Middleware(
                RateLimitMiddleware,
                limiter=limiter,
                key_entity=auth.key_entity,
                known_entity=auth.known_entity,
            ),
        )
    if is_loopback(config.host) or config.allowed_hosts:  # the rule is hosts.py's docstring
        middleware.insert(0, Middleware(HostCheck, allowed=frozenset(config.allowed_hosts)))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={ApiError: _api_error, HTTPException: _http_error, Exception: _unexpected},
    )
    app.state.files_location = endpoints.backend.location  # for the "serving" line
    return app


class HostCheck:
    """Refuses a request whose Host is neither a loopback name nor an allowed one, and one that
    could change something sent by a web page of another origin (hosts.py)."""

    def __init__(self, app: ASGIApp, allowed: frozenset[str]) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in UNCHECKED_PATHS:
            hosts = [value.decode("latin-1") for name, value in scope["headers"] if name == b"host"]
            message = refusal(hosts, self.allowed)
            if message is not None:
                # 400, not 421 Misdirected Request: a 421 invites the client to send the same
                # request again on another connection (RFC 9110 §15.5.20), and this one will
                # never be answered; a Host this server does not serve is an invalid one to it,
                # which RFC 9112 §3.2 answers with 400. Not 403: no key changes the answer.
                await error_response(ApiError("BAD_REQUEST", message))(scope, receive, send)
                return
            origins = [value.decode("latin-1") for name, value in scope["headers"] if name == b"origin"]
            message = cross_origin(scope["method"], origins, hosts[0], self.allowed)
            if message is not None:
                await error_response(ApiError("BAD_REQUEST", message))(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _json(value: object, status: int = 200) -> Response:
    return Response(orjson.dumps(value), status_code=status, media_type="application/json")


async def _api_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, ApiError):  # Starlette routes only ApiErrors here
        raise exc
    challenge = exc.code == "UNAUTHENTICATED" and CLIENT_HEADER not in request.headers
    return error_response(exc, headers=CHALLENGE if challenge else None)


async def _http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, HTTPException):
        raise exc
    code = _HTTP_CODES.get(exc.status_code, "BAD_REQUEST")
    if code == "NOT_FOUND":
        message = f"nothing is served at {request.url.path}"
    elif code == "METHOD_NOT_ALLOWED":
        message = f"{request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    return error_response(ApiError(code, message), headers=exc.headers, status=exc.status_code)


async def _unexpected(request: Request, exc: Exception) -> Response:
    # Starlette's ServerErrorMiddleware calls this, then re-raises, and uvicorn logs the traceback.
    return error_response(ApiError("INTERNAL", f"the server failed on {request.method} {request.url.path}"))


def _attachment(filename: str) -> str:
    """Content-Disposition of a download saved as filename (RFC 6266; non-ASCII as filename*)."""
    quoted = quote(filename)
    if quoted != filename:
        return f"attachment; filename*=utf-8''{quoted}"
    return f'attachment; filename="{filename}"'


def _path_names(request: Request) -> tuple[str, str, str]:
    """The checked entity, project and run of a /files/ or /history/ path."""
    params = request.path_params
    return (
        check_name(params["entity"], "entity"),
        check_project(params["project"]),
        check_name(params["run"], "run"),
    )
