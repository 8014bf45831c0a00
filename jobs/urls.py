"""Checks on endpoint URLs that every settings model shares (no imports from jobs).

A URL with a backslash, user info or a control character is read differently by
different parsers (urlsplit, urllib3, a browser): the host a check sees may not be
the host a request goes to. Such a URL is never a legitimate Azure endpoint, so it
is refused everywhere. Messages show a URL's host only: paths and queries of
webhook and SAS URLs carry secrets.
"""
from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def url_fault(url: str) -> str | None:
    """Why ``url`` is not a plain absolute URL with a host, or None when it is."""
    if any(not ("!" <= c <= "~") or c == "\\" for c in url):
        return "has a backslash, a space, a control or a non-ASCII character"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return "is not a URL"
    if not parts.scheme or not parts.hostname:
        return "is not an absolute URL with a host"
    if "@" in parts.netloc:
        return "carries user info (user@host); put no credentials in an endpoint"
    return None


def host(url: str) -> str:
    """The host of ``url`` for a message: never its path, query or user info."""
    if url_fault(url):
        return "(not shown: malformed)"
    return urlsplit(url).hostname or ""


def is_loopback(url: str) -> bool:
    """True only for a well-formed URL whose host is localhost or a loopback address."""
    if url_fault(url):
        return False
    name = urlsplit(url).hostname or ""
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
