"""Where webhooks may send: http(s) URLs whose host resolves to public addresses only, unless
SEGMENTER_WEBHOOK_ALLOW_PRIVATE. Checked when a URL is set and again, on the resolved address the
connection then uses, at each send (a name that later resolves elsewhere is caught there)."""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings


class AddressRefused(Exception):
    pass


def url_parts(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http or https URL; AddressRefused otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise AddressRefused(f"Not a valid URL: {exc}.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AddressRefused("The URL must be http:// or https:// with a host.")
    if parts.username or parts.password:
        raise AddressRefused("The URL may not carry a user name or password.")
    if port == 0:  # no server listens there; `port or default` would send to the default port instead
        raise AddressRefused("The URL's port must be 1 to 65535.")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def address_resolve(host: str, port: int) -> str:
    """The address to connect to: the host's first address, once every address it resolves to is allowed."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise AddressRefused(f"The host {host} does not resolve.") from None
    addresses = [info[4][0] for info in infos]
    if not settings.SEGMENTER_WEBHOOK_ALLOW_PRIVATE:
        for address in addresses:
            if not _public(ipaddress.ip_address(address.split("%")[0])):
                raise AddressRefused(f"The host {host} resolves to a private, loopback or link-local address.")
    return addresses[0]


GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")  # RFC 4291: IPv6's global unicast; the rest is special or unassigned
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052's well-known prefix: the last 32 bits are an IPv4 address


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """A global unicast address. An IPv6 one that carries an IPv4 address at a known place (mapped
    ::ffff:0:0/96, the well-known NAT64 prefix) is judged by that address; any other outside 2000::/3 is
    refused: Python's `is_global` calls ::/96 (::127.0.0.1, ::7f00:1), ::ffff:0:0:0/96 (::ffff:0:7f00:1)
    and the local-use NAT64 prefix 64:ff9b:1::/48 global, and each can reach an IPv4 address. Inside
    2000::/3, 6to4 and Teredo carry an IPv4 address too, which must be public as well: 2002:7f00:1::
    reaches 127.0.0.1 through 6to4."""
    if ip.version == 4:
        return ip.is_global and not ip.is_multicast
    inner = ip.ipv4_mapped or (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in NAT64 else None)
    if inner is not None:
        return _public(inner)
    if ip not in GLOBAL_UNICAST or not ip.is_global:
        return False
    carried = [ip.sixtofour, ip.teredo[1] if ip.teredo else None]
    return all(_public(address) for address in carried if address is not None)


def url_check(url: str) -> None:
    """AddressRefused unless `url` may receive webhooks now."""
    _, host, port = url_parts(url)
    address_resolve(host, port)
