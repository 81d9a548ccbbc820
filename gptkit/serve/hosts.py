"""Which requests reach the app at all: the Host a request names, and the page (Origin) a browser sent it from.

DNS rebinding: a web page on evil.example can make its name resolve to this machine, and the browser then sends
`Host: evil.example` to our port as if it were the page's own server. So every request must name this server:
an IP address (a browser only sends one as Host for a page loaded from that address, i.e. from us), `localhost`,
the address it listens on, this machine's host name when it listens beyond loopback, or a name given with
`--allow-host`. A browser's cross-site request (an Origin other than the Host it addresses) is refused too,
so another page cannot drive the API through the user's browser.
Refusals are JSON in the API's error shape. Entry point: the `HostCheck` ASGI middleware.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from gptkit.serve.errors import ApiError


def host_name(host_header: str) -> str:
    """The name part of a Host header (`[::1]:8000` -> `::1`, `Example.com.:80` -> `example.com`)."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    return host.rstrip(".")


def is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def allowed_names(bind_host: str, extra: tuple[str, ...] = ()) -> frozenset[str]:
    """Names a request may address this server by, besides any IP address: localhost, the bound address, the
    names given with --allow-host, and, when it listens beyond loopback, this machine's own host name (an
    attacker's page cannot make its site's name be ours)."""
    names = {"localhost", host_name(bind_host), *(host_name(name) for name in extra)}
    if not (is_ip(host_name(bind_host)) and ipaddress.ip_address(host_name(bind_host)).is_loopback):
        names.add(host_name(socket.gethostname()))
    return frozenset(names - {""})


def request_problem(headers: dict[str, str], names: frozenset[str]) -> ApiError | None:
    """The error for a request whose Host or Origin is not this server's; None for one that may pass."""
    host = headers.get("host", "")
    name = host_name(host)
    if not name or not (is_ip(name) or name in names):
        return ApiError(
            400,
            f"Host {host!r} is not this server's name; it answers to its IP addresses, "
            f"{', '.join(sorted(names))}, and names given with --allow-host",
            code="host_not_allowed",
        )
    origin = headers.get("origin")
    if origin is not None and urlsplit(origin).netloc.lower() != host.strip().lower():
        return ApiError(403, f"requests from pages of {origin} are refused; call the API from its own address")
    return None


class HostCheck:
    """ASGI middleware refusing requests whose Host or Origin is not this server's (see the module doc)."""

    def __init__(self, app, names: frozenset[str]):
        self.app, self.names = app, names

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            problem = request_problem(headers, self.names)
            if problem is not None:
                await problem.response()(scope, receive, send)
                return
        await self.app(scope, receive, send)
