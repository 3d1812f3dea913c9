"""Which URLs a webhook may point at: http(s) only, and no loopback, private, link-local or
unique-local address (every address the host resolves to) unless the setting allows them."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

MAX_URL = 2048


class Refused(ValueError):
    """A URL a webhook may not point at (the message says why)."""


def check_form(url: str) -> str:
    """The URL if it is an absolute http(s) URL with a host; ``Refused`` otherwise."""
    if len(url) > MAX_URL:
        raise Refused(f"a URL has at most {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number or out of range
    except ValueError as exc:
        raise Refused(f"not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise Refused("a webhook URL is http:// or https://")
    if not parts.hostname:
        raise Refused("a webhook URL names a host")
    if any(c.isspace() or not c.isprintable() for c in url):
        raise Refused("a URL has no spaces or control characters")
    # A backslash or a user part reads as another host to one URL parser than to another
    # (http://127.0.0.1:80\@example.com/ is example.com here, 127.0.0.1 to the sender).
    if "\\" in url or "@" in parts.netloc:
        raise Refused("a webhook URL has no backslash and no user part (user@host)")
    return url


def _private(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):  # the IPv4 address inside, where there is one:
        ip = ip.ipv4_mapped or ip.sixtofour or ip  # ::ffff:127.0.0.1, 2002:7f00:1:: (6to4)
    return (
        not ip.is_global  # 100.64/10 (shared address space) and 6to4 (2002::/16) too
        or ip.is_loopback
        or ip.is_private  # 10/8, 172.16/12, 192.168/16, fc00::/7 (unique-local), ...
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to; ``Refused`` if it resolves to none."""
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise Refused(f"its host {host!r} does not resolve ({exc})") from None
    return sorted({str(info[4][0]) for info in infos})


def check(url: str, allow_private: bool) -> str:
    """The URL if a webhook may be sent there now; ``Refused`` saying why otherwise."""
    addresses(url, allow_private)
    return url


def addresses(url: str, allow_private: bool) -> list[str]:
    """Where a webhook may be sent now: every address its host resolves to, each checked
    (``Refused`` saying why otherwise); with private targets allowed, the host itself.

    Checked at registration and again before each attempt (a name may resolve elsewhere
    later), and the attempt connects to these very addresses: a name that resolves to a public
    address for the check and to a private one a moment later (DNS rebinding) is not followed
    there. Redirects are never followed either, so the checked host is the one sent to."""
    check_form(url)
    parts = urlsplit(url)
    host = parts.hostname or ""
    if allow_private:
        return [host]
    port = parts.port or (443 if parts.scheme == "https" else 80)
    found = resolve(host, port)
    for address in found:
        if _private(address):
            raise Refused(
                f"its host {host!r} resolves to {address}, a loopback, private or link-local "
                "address (TRAINQ_WEBHOOKS_ALLOW_PRIVATE allows them)"
            )
    return found
