"""deploy/ (docs/scaling.md) stays true to nbtrack: every nbtrack command in compose.yaml parses with
nbtrack's own command line, the replicas are the ones nginx.conf balances, the image installs
extras that exist. (nginx.conf itself is started by every load-balancer test: tests/load_balancer.py.)
Docker is not on this machine, so the images are not built here."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from nbtrack.cli import _parser
from nbtrack.server.timeouts import KEEP_ALIVE_SECONDS

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def test_every_nbtrack_command_of_the_compose_file_is_a_valid_command_line() -> None:
    commands = [
        service["command"]
        for service in compose()["services"].values()
        if isinstance(service.get("command"), list) and service["command"][0] == "nbtrack"
    ]
    assert len(commands) >= 2
    for command in commands:
        args = _parser().parse_args(command[1:])  # exits (SystemExit) on an unknown option
        assert args.db and args.db.startswith("postgresql://")
        assert args.files.startswith("s3://") and args.host == "0.0.0.0"


def test_the_replicas_are_what_nginx_balances_and_they_reach_the_same_store() -> None:
    services = compose()["services"]
    replicas = sorted(name for name in services if name.startswith("nbtrack-"))
    upstreams = re.findall(r"^ *server (nbtrack-\S+):8080 ", (DEPLOY / "nginx.conf").read_text(), flags=re.M)
    assert sorted(upstreams) == replicas and len(replicas) >= 2
    assert {tuple(services[name]["command"]) for name in replicas} == {
        tuple(services[replicas[0]]["command"])
    }
    env = services[replicas[0]]["environment"]
    assert {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(env)
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in services["nginx"]["volumes"]


def test_the_image_installs_extras_that_exist() -> None:
    extras = tomllib.loads((DEPLOY.parent / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    [wanted] = re.findall(r"'/src\[([^\]]+)\]'", (DEPLOY / "Dockerfile").read_text())
    assert set(wanted.split(",")) <= set(extras)


def test_nginx_drops_an_idle_replica_connection_before_the_replica_does() -> None:
    # Else a request sent on it as the replica closes it is reset, and nginx takes the replica out.
    upstream = re.search(r"upstream nbtrack \{(.*?)\}", (DEPLOY / "nginx.conf").read_text(), flags=re.S)
    assert upstream is not None
    timeout = re.search(r"^ *keepalive_timeout (\d+)s;", upstream.group(1), flags=re.M)
    assert timeout is not None and int(timeout.group(1)) < KEEP_ALIVE_SECONDS
