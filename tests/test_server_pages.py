"""The web UI's pages and static files, and 401s that do not make a browser pop up its login dialog.

The shell page and the UI's own files are the front-end's (nbtrack/web/ui/); until that has landed
the tests that need them are skipped, saying so. The rules (headers, types, paths) are checked on
files that are always there (nbtrack/web/shared/chart.js, served as /static/shared/chart.js).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests import serving
from tests.serving import Client, ServerProcess, create_key, start_server

STATIC = Path(__file__).resolve().parent.parent / "nbtrack" / "web"  # served at /static/
SHELL = STATIC / "ui" / "index.html"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
PAGES = [
    "/",
    "/local/mnist",
    "/local/mnist/runs/r1",
    "/local/mnist/compare",
    "/local/mnist/compare?runs=a,b",
    "/local/mnist/artifacts/all",
    "/local/mnist/artifacts/dataset/digits",
    "/local/mnist/artifacts/dataset/digits/v3",
]
NOT_PAGES = [
    "/local",
    "/local/mnist/runs",
    "/local/mnist/runs/r1/files",
    "/a/b/c",
    "/local/mnist/compare/x",
    "/local/mnist/artifacts",
    "/local/mnist/artifacts/dataset/digits/v3/x",
]

server = serving.server  # a fresh server per test (these tests create keys)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    served = start_server(tmp_path_factory.mktemp("server"))
    yield served
    served.stop()
    assert "Traceback" not in served.log(), served.log_tail()


def needs(path: Path) -> None:
    if not path.is_file():
        pytest.skip(
            f"{path.relative_to(STATIC.parent.parent)} is not there yet (the front-end has not landed)"
        )


def assert_ui_headers(response: requests.Response) -> None:
    assert response.headers["Content-Security-Policy"] == CSP
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-cache"


def assert_not_found(response: requests.Response) -> None:
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"


@pytest.mark.parametrize("path", PAGES)
def test_every_page_is_the_shell(shared: ServerProcess, path: str) -> None:
    needs(SHELL)
    response = requests.get(f"{shared.url}{path}", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.content == SHELL.read_bytes()
    assert_ui_headers(response)


@pytest.mark.parametrize("path", NOT_PAGES)
def test_paths_of_other_shapes_stay_not_found(shared: ServerProcess, path: str) -> None:
    assert_not_found(requests.get(f"{shared.url}{path}", timeout=10))


def test_a_page_path_asked_with_another_method_is_not_found(shared: ServerProcess) -> None:
    for method in ("POST", "PUT", "DELETE"):
        assert_not_found(requests.request(method, f"{shared.url}/local/mnist", data=b"x", timeout=10))
    head = requests.head(f"{shared.url}/static/shared/chart.js", timeout=10)
    assert head.status_code == 200 and head.content == b""


def test_the_api_keeps_its_paths(shared: ServerProcess) -> None:
    assert requests.get(f"{shared.url}/healthz", timeout=10).json() == {"ok": True}
    # /graphql has a page's length, but it is the API's: GET stays "method not allowed".
    response = requests.get(f"{shared.url}/graphql", timeout=10)
    assert response.status_code == 405
    assert response.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"
    Client(shared.url).upsert("mnist", "r1")
    download = requests.get(f"{shared.url}/files/local/mnist/r1/absent.txt", timeout=10)
    assert_not_found(download)
    assert "absent.txt" in download.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("shared/chart.js", "text/javascript; charset=utf-8"),
        ("widget/panel.js", "text/javascript; charset=utf-8"),
        ("ui/app.js", "text/javascript; charset=utf-8"),
        ("ui/ui.css", "text/css; charset=utf-8"),
        ("ui/favicon.svg", "image/svg+xml"),
        ("ui/index.html", "text/html; charset=utf-8"),
    ],
)
def test_static_files_have_their_type(shared: ServerProcess, name: str, content_type: str) -> None:
    needs(STATIC / name)
    response = requests.get(f"{shared.url}/static/{name}", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.content == (STATIC / name).read_bytes()
    assert_ui_headers(response)


def test_an_unchanged_file_is_not_sent_again(shared: ServerProcess) -> None:
    url = f"{shared.url}/static/shared/chart.js"
    first = requests.get(url, timeout=10)
    etag = first.headers["ETag"]
    again = requests.get(url, headers={"If-None-Match": etag}, timeout=10)
    assert again.status_code == 304 and again.content == b"" and again.headers["ETag"] == etag
    other = requests.get(url, headers={"If-None-Match": '"other"'}, timeout=10)
    assert other.status_code == 200 and other.content == first.content


@pytest.mark.parametrize(
    "path",
    [
        "/static/%2E%2E/server/app.py",
        "/static/%2E%2E/%2E%2E/pyproject.toml",
        "/static/ui/%2E%2E/%2E%2E/store/store.py",
        "/static//etc/passwd",
        "/static/%2Fetc%2Fpasswd",
        "/static/..%5C..%5Cpyproject.toml",
        "/static/shared/chart.js%00.js",
        "/static/",
        "/static/shared",  # a folder
        "/static/absent.js",
        "/static/../pyproject.toml",
    ],
)
def test_static_paths_never_leave_the_folder(shared: ServerProcess, path: str) -> None:
    # A raw request: requests would tidy "/../" away before sending it.
    request = requests.Request("GET", f"{shared.url}{path}").prepare()
    request.url = f"{shared.url}{path}"
    with requests.Session() as session:
        response = session.send(request, timeout=10)
    assert_not_found(response)


def test_files_of_other_kinds_are_not_served(tmp_path: Path) -> None:
    # Only the UI's types are served (with nosniff, a browser runs a module only under a script
    # type). The shipped folder holds no other kind, so the rule is checked on a folder of its own.
    from starlette.requests import Request

    from nbtrack.server import ui
    from nbtrack.server.errors import ApiError

    request = Request({"type": "http", "method": "GET", "path": "/static/x", "headers": []})
    for name in ("panel.test.mjs", "ui.py", "README", "notes.txt"):
        (tmp_path / name).write_text("x")
        with pytest.raises(ApiError) as refused:
            ui._file(request, tmp_path / name, "no such file")
        assert refused.value.code == "NOT_FOUND"
    (tmp_path / "app.js").write_text("x")
    assert ui._file(request, tmp_path / "app.js", "no such file").status_code == 200


# ---- no login dialog ---------------------------------------------------------------------


def test_a_401_to_nbtracks_own_client_has_no_challenge(server: ServerProcess) -> None:
    create_key(server, "alice")
    query = {"query": "{ viewer { entity } }"}
    plain = requests.post(f"{server.url}/graphql", json=query, timeout=10)
    assert plain.status_code == 401 and plain.headers["WWW-Authenticate"] == 'Basic realm="nbtrack"'
    for auth in (None, ("api", "nbt_wrong")):
        ui = requests.post(
            f"{server.url}/graphql", json=query, headers={"X-Nbtrack-Client": "ui"}, auth=auth, timeout=10
        )
        assert ui.status_code == 401 and "WWW-Authenticate" not in ui.headers
        assert ui.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    download = requests.get(
        f"{server.url}/files/alice/p/r/x.txt", headers={"X-Nbtrack-Client": "ui"}, timeout=10
    )
    assert download.status_code == 401 and "WWW-Authenticate" not in download.headers


def test_pages_need_no_key_but_data_does(server: ServerProcess) -> None:
    key = create_key(server, "alice")
    response = requests.get(f"{server.url}/static/shared/chart.js", timeout=10)
    assert response.status_code == 200 and "WWW-Authenticate" not in response.headers
    if SHELL.is_file():
        assert requests.get(f"{server.url}/alice/p", timeout=10).status_code == 200
    alice = Client(server.url, "alice", key)
    alice.session.headers["X-Nbtrack-Client"] = "ui"
    assert alice.data("{ viewer { entity } }") == {"viewer": {"entity": "alice"}}
