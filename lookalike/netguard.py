"""Where image downloads and image files may come from (SSRF and path-escape guard).

A catalogue or an API request names image URLs and paths; without this guard they could make
a worker read cloud metadata (169.254.169.254), internal services or ``/etc/passwd``.

* URLs: only http(s); the host is resolved once (a ``resolve`` hook, so tests never touch
  DNS) and every address must be public. IP literals in any spelling (decimal ``2130706433``,
  octal ``0177.0.0.1``, hex ``0x7f.1``, IPv4-mapped IPv6) are parsed like the C resolver
  would, then checked. The caller connects to the checked address (no DNS rebinding) and
  re-checks every redirect hop. Hosts in ``allowed_hosts`` (names, IPs or CIDR networks)
  skip the address check: trusted internal image servers.
* Paths: when roots are configured, the real path (symlinks resolved) must lie inside one;
  the file must always be a regular file (no devices, FIFOs or directories).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from lookalike.errors import ImageError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

# is_global misses a few ranges that still must not be reached from a worker.
_EXTRA_BLOCKED = tuple(
    ipaddress.ip_network(n)
    for n in ("100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15", "64:ff9b::/96", "2002::/16")
)


def system_resolve(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host`` (the default ``resolve`` hook)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ImageError(f"cannot resolve host {host!r}: {exc}", source=host) from None
    return [str(info[4][0]) for info in infos]


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address a host string spells, in any form ``inet_aton`` or IPv6 accepts, else None.

    ``inet_aton`` is what the C library applies to names, so ``0x7f.1`` *is* 127.0.0.1 to a
    resolver; parsing it the same way here means no spelling slips through as a "name".
    """
    text = host.strip("[]")
    try:
        return _unmap(ipaddress.ip_address(text.split("%", 1)[0]))
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except (OSError, ValueError):
        return None


def _unmap(addr: IPAddress) -> IPAddress:
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return addr.ipv4_mapped
        if addr.sixtofour is not None:
            return addr.sixtofour
    return addr


def is_public(addr: IPAddress) -> bool:
    """Whether an address is globally routable (not private, loopback, link-local, metadata)."""
    addr = _unmap(addr)
    if not addr.is_global or addr.is_multicast:
        return False
    return not any(addr.version == n.version and addr in n for n in _EXTRA_BLOCKED)


@dataclass(frozen=True)
class CheckedURL:
    """A URL that passed the guard, and the address to connect to."""

    url: str
    scheme: str
    host: str
    port: int
    address: str


class URLGuard:
    """Checks URLs against the address rules; one instance per settings (cheap to build)."""

    def __init__(self, allowed_hosts: Iterable[str] = (), resolve: Resolver | None = None) -> None:
        self.resolve: Resolver = resolve or system_resolve
        self._names: set[str] = set()
        self._networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in allowed_hosts:
            entry = entry.strip().lower()
            if not entry:
                continue
            try:
                self._networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self._names.add(entry.rstrip("."))

    def _trusted(self, host: str, addr: IPAddress | None) -> bool:
        if host in self._names:
            return True
        return addr is not None and any(
            addr.version == n.version and addr in n for n in self._networks
        )

    def check(self, url: str) -> CheckedURL:
        """The URL's host, port and one vetted address to connect to; ImageError if refused."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise ImageError(f"invalid URL {url}: {exc}", source=url) from None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise ImageError(f"unsupported URL scheme {scheme!r} in {url}", source=url)
        host = (parts.hostname or "").lower().rstrip(".")
        if not host:
            raise ImageError(f"URL has no host: {url}", source=url)
        if parts.username is not None or parts.password is not None:
            raise ImageError(f"URLs with credentials are refused: {url}", source=url)
        port = port or (443 if scheme == "https" else 80)
        literal = parse_ip_literal(host)
        candidates = [str(literal)] if literal is not None else self.resolve(host, port)
        if not candidates:
            raise ImageError(f"cannot resolve host {host!r}", source=url)
        for text in candidates:
            addr = parse_ip_literal(text)
            if addr is None:
                raise ImageError(f"resolver gave a non-address {text!r} for {host}", source=url)
            if not (self._trusted(host, addr) or is_public(addr)):
                raise ImageError(
                    f"refused: {host} resolves to non-public address {addr} "
                    "(add it to LOOKALIKE_IMAGE_ALLOWED_HOSTS if it is a trusted image host)",
                    source=url,
                    address=str(addr),
                )
        address = str(parse_ip_literal(candidates[0]))
        return CheckedURL(url=url, scheme=scheme, host=host, port=port, address=address)


def check_path(path: Path, roots: Sequence[Path] = ()) -> Path:
    """The real path of an image file that may be read; ImageError if it escapes or is special.

    With ``roots`` the resolved path (``..`` and symlinks followed) must lie in one of them.
    Devices, FIFOs and directories are refused always: reading one can block forever.
    """
    source = str(path)
    try:
        real = Path(os.path.realpath(path))
        mode = os.stat(real).st_mode
    except OSError as exc:
        raise ImageError(
            f"cannot read image file {source}: {exc.strerror or exc}", source=source
        ) from None
    if roots:
        resolved = [Path(os.path.realpath(r)) for r in roots]
        if not any(real == r or real.is_relative_to(r) for r in resolved):
            raise ImageError(
                f"image path {source} is outside the allowed image roots (LOOKALIKE_IMAGE_ROOTS)",
                source=source,
            )
    if not stat.S_ISREG(mode):
        raise ImageError(f"cannot read image file {source}: not a regular file", source=source)
    return real
