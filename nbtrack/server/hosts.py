"""Which host names the server answers to: the defence against DNS rebinding.

A web page can make its own name resolve to 127.0.0.1 (DNS rebinding). The browser then sends
the page's requests to a loopback server as same-origin requests, with the page's name as Host,
and lets the page read the answers: without this check, any site a user visits could read and
change every run of a keyless loopback server. Every real client of a loopback server (nbtrack's,
W&B's, the web UI, curl) names it by a loopback name, so a server listening on loopback answers
only to localhost, *.localhost, 127.0.0.0/8 and ::1, and to the names the operator lists with
--allowed-host (a reverse proxy on this machine passing on its public name). A server listening
beyond loopback has keys (main.py refuses it otherwise), which a rebinding page does not have:
it answers to any name unless names are listed, and then to those and loopback's only.

The check does not depend on whether the store has keys: keys may be created while the server
runs, and a server whose accepted names changed with them would be harder to reason about.

A page of another origin can still *send* a request to a loopback server without rebinding:
the browser names the server correctly and only stops the page from reading the answer. A
POST whose body declares no type is such a "simple" request, and its side effects happen. So a
request that can change something (any method but GET, HEAD and OPTIONS) that carries an
Origin header — browsers add one to such requests; nbtrack's and W&B's clients never do — must
come from the server's own origin (the web UI) or from an --allowed-host name.

/healthz answers whatever the Host: a load balancer's probe names the backend however it was
set up (an address, a pool's name) or sends no Host at all over HTTP/1.0, and the answer says
nothing about any run.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection, Sequence

__all__ = ["UNCHECKED_PATHS", "allowed_host", "cross_origin", "host_name", "is_loopback_name", "refusal"]

# A host name or IPv4 address, or an IPv6 address in brackets; in a Host header, maybe a port after.
_NAME = r"(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<name>[^\[\]:/@\s]+))"
_HOST = re.compile(_NAME + r"(?::[0-9]*)?")
_BARE_NAME = re.compile(_NAME)
UNCHECKED_PATHS = frozenset({"/healthz"})  # answered whatever the Host (see above)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})  # change nothing: another origin may send them
_SHOWN_CHARS = 100  # of a refused Host value in the message: enough to recognise it


def host_name(value: str) -> str | None:
    """The name part of a Host value (port dropped, an IPv6 address without brackets, lowercase,
    no trailing dot), or None if it is not a host name at all."""
    return _name(_HOST.fullmatch(value))


def allowed_host(value: str) -> str | None:
    """An --allowed-host value as the name it admits (as host_name gives it), or None if it is
    not a plain host name: a port (the check is on names, whatever port a client used), a
    scheme, a wildcard."""
    value = value.strip()
    try:  # an IPv6 address as operators write it, without brackets
        return str(ipaddress.IPv6Address(value))
    except ValueError:
        pass
    name = _name(_BARE_NAME.fullmatch(value))
    if name is None or "*" in name or not name.strip("."):
        return None
    return name


def is_loopback_name(name: str) -> bool:
    """True for a name only this machine answers to: localhost, *.localhost (RFC 6761), 127.0.0.0/8, ::1."""
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:  # "127.1" and other shorthands are not addresses here: refused, never guessed at
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _name(match: re.Match[str] | None) -> str | None:
    if match is None:
        return None
    if match["ipv6"] is not None:
        try:
            return str(ipaddress.IPv6Address(match["ipv6"]))
        except ValueError:
            return None
    name = match["name"].lower()
    # "localhost." is the same name as "localhost" (fully qualified): one dot, dropped.
    return name[:-1] if name.endswith(".") and len(name) > 1 else name


def refusal(hosts: Sequence[str], allowed: Collection[str]) -> str | None:
    """Why a request with these Host header values is refused, or None if its name is served.
    allowed: names as allowed_host() gives them."""
    if len(hosts) != 1:
        return "the request has no Host header" if not hosts else "the request has more than one Host header"
    name = host_name(hosts[0])
    if name is not None and (is_loopback_name(name) or name in allowed):
        return None
    return (
        f"this server does not answer to the host name {hosts[0][:_SHOWN_CHARS]!r}: on loopback it "
        "answers to localhost and 127.0.0.1 (names a web page cannot pose as); start it with "
        "--allowed-host NAME to be reached by another name"
    )


def cross_origin(method: str, origins: Sequence[str], host: str, allowed: Collection[str]) -> str | None:
    """Why a request from a web page of another origin is refused, or None (see above).
    origins: the request's Origin header values; host: its Host header value."""
    if method in SAFE_METHODS or not origins:
        return None
    origin = origins[0]
    netloc = origin.partition("://")[2] if "://" in origin else ""
    name = host_name(netloc) if netloc else None
    if len(origins) == 1 and netloc and (netloc.lower() == host.lower() or name in allowed):
        return None
    return (
        f"a web page of another origin ({origin[:_SHOWN_CHARS]!r}) may not change runs here; open "
        "the web UI from this server, or start it with --allowed-host NAME for the page's host name"
    )
