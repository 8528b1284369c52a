"""Debian's nginx as a load balancer in front of `nbtrack server` replicas, for tests and the
scale benchmark: started on a free loopback port with a configuration of its own in a folder.

Every request of nbtrack's and W&B's clients may be repeated (file-stream posts are addressed by
line, upserts are upserts), so a request a dead replica never answered goes to the next one
(`proxy_next_upstream ... non_idempotent`): what an operator is told to configure (README)."""

from __future__ import annotations

import os
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

_CONF = """
user root;
worker_processes {workers};
error_log {dir}/error.log warn;
pid {dir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    client_max_body_size 0;
    upstream nbtrack {{
{servers}
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://nbtrack;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_next_upstream error timeout http_502 non_idempotent;
            proxy_connect_timeout 2s;
            proxy_read_timeout 120s;
        }}
    }}
}}
"""


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
    # A replica that fails a connection is left alone for 30 s (then tried again).
    servers = "\n".join(f"        server {u} max_fails=1 fail_timeout=30s;" for u in upstreams)
    conf = folder / "nginx.conf"
    conf.write_text(_CONF.format(dir=folder, servers=servers, port=port, workers=workers))
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
