"""Debian's nginx as a load balancer in front of `nbtrack server` replicas, for tests and the
scale benchmark: deploy/nginx.conf (what docs/scaling.md deploys) started on a free loopback port,
its logs and temporary files in a folder of its own.

Every request of nbtrack's and W&B's clients may be repeated (file-stream posts are addressed by
line, upserts are upserts), so a request a dead replica never answered goes to the next one
(`proxy_next_upstream ... non_idempotent`): what an operator is told to configure (README)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

__all__ = ["LoadBalancer", "load_balancer", "nginx_binary"]

DEPLOYED_CONF = Path(__file__).resolve().parent.parent / "deploy" / "nginx.conf"


def render_conf(folder: Path, port: int, upstreams: Sequence[str], workers: int) -> str:
    """deploy/nginx.conf, the file docs/scaling.md deploys, for this machine: the upstream servers
    and the listening port replaced, logs and temporary files in folder."""
    conf = DEPLOYED_CONF.read_text()
    servers = re.findall(r"^ *server nbtrack-\S+ (.*);$", conf, flags=re.M)
    if len(servers) < 1 or "listen 80;" not in conf or "worker_processes auto;" not in conf:
        raise RuntimeError(f"{DEPLOYED_CONF} no longer has the lines the tests replace")
    ours = "\n".join(f"        server {upstream} {servers[0]};" for upstream in upstreams)
    conf = re.sub(r"(?:^ *server nbtrack-\S+ .*;\n)+", ours + "\n", conf, flags=re.M)
    conf = conf.replace("listen 80;", f"listen 127.0.0.1:{port};")
    conf = conf.replace("worker_processes auto;", f"worker_processes {workers};")
    temp = "".join(
        f"    {kind}_temp_path {folder}/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = conf.replace("http {\n", "http {\n" + temp, 1)
    return f"user root;\nerror_log {folder}/error.log warn;\npid {folder}/nginx.pid;\n" + conf


def nginx_binary() -> str | None:
    """nginx's path, or None if it is not installed."""
    return shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)


@dataclass
class LoadBalancer:
    url: str
    folder: Path
    process: subprocess.Popen[bytes]

    def error_log(self) -> str:
        path = self.folder / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextmanager
def load_balancer(
    folder: Path, port: int, upstreams: Sequence[str], workers: int = 1
) -> Iterator[LoadBalancer]:
    """nginx on 127.0.0.1:port in front of upstreams ("host:port" each) until the block ends."""
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError("nginx is not installed (`apt-get install nginx-light`; .ci/run does)")
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "nginx.conf"
    conf.write_text(render_conf(folder, port, upstreams, workers))
    process = subprocess.Popen([binary, "-p", str(folder), "-c", str(conf), "-g", "daemon off;"])
    balancer = LoadBalancer(f"http://127.0.0.1:{port}", folder, process)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if requests.get(f"{balancer.url}/healthz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not serve on {balancer.url}: {balancer.error_log()}")
            time.sleep(0.1)
        yield balancer
    finally:
        process.send_signal(signal.SIGQUIT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
