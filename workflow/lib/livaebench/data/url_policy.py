"""Which URLs a GEO download may contact: http(s) only, on allowed origins, redirects included.

An origin is scheme + host + port (as browsers define it): another port of an allowed host can be
another service (an admin interface, a proxy), so it is refused like another host. The allowed origins
are those of ``geo.base_url`` and of the sample query page, and those named in ``geo.allowed_hosts``,
whose entries are ``host`` (http on port 80 and https on 443), ``host:port`` (http and https on that
port) or ``http(s)://host[:port]`` (that origin alone).
"""
from __future__ import annotations

import re
import urllib.parse
import urllib.request

from ..errors import InputError
from .untrusted import escaped, shown

Origin = tuple[str, str, int]  # (scheme, host, port)
_DEFAULT_PORT = {"http": 80, "https": 443}
# http.client refuses these in a request line; a listed URL holding them is hostile or broken
_URL_UNSAFE_RE = re.compile(r"[\x00-\x20\x7f-\U0010ffff]")


def origin(url: str) -> Origin | None:
    """(scheme, host, port) of an http(s) URL (the port defaults by scheme); None for anything else."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:  # a port out of range or not a number
        return None
    if parts.scheme not in _DEFAULT_PORT or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.lower(), port or _DEFAULT_PORT[parts.scheme]


def _host_port(scheme: str, host: str, port: int) -> str:
    """How ``geo.allowed_hosts`` names the port of a host: no port when it is the scheme's default."""
    host = f"[{host}]" if ":" in host else host
    return host if port == _DEFAULT_PORT[scheme] else f"{host}:{port}"


def _entry_origins(entry) -> set[Origin]:
    text = str(entry).strip().lower()
    if "://" in text:
        found = origin(text)
        parts = urllib.parse.urlsplit(text)
        return {found} if found and parts.path in ("", "/") and not parts.query else set()
    try:
        parts = urllib.parse.urlsplit("//" + text)
        port = parts.port
    except ValueError:
        return set()
    if not parts.hostname or parts.path or parts.query or parts.username:
        return set()
    return {(scheme, parts.hostname, port or default) for scheme, default in _DEFAULT_PORT.items()}


def allowed_origins(urls, extra=()) -> frozenset[Origin]:
    """The origins of ``urls`` (the GEO base URL, the sample query page) and the ``geo.allowed_hosts`` entries."""
    found = {origin(u) for u in urls} - {None}
    for entry in extra:
        origins = _entry_origins(entry)
        if not origins:
            raise InputError("config geo.allowed_hosts", f"the entry {shown(entry)} is not a host, host:port or "
                             "http(s)://host[:port]", "write each allowed origin as host or host:port")
        found |= origins
    return frozenset(found)


def url_problem(url: str, allowed: frozenset[Origin]) -> str | None:
    """Why ``url`` may not be fetched, or None."""
    if _URL_UNSAFE_RE.search(url):
        return "holds control characters, spaces or non-ASCII characters"
    try:
        scheme = urllib.parse.urlsplit(url).scheme
    except ValueError:
        return "is not a valid URL"
    if scheme not in _DEFAULT_PORT:
        return "is not an http(s) URL"
    found = origin(url)
    if found is None:
        return "is not a valid URL"
    if found in allowed:
        return None
    where = f"{found[0]}://{_host_port(*found)}"
    if any(host == found[1] for _, host, _ in allowed):
        return (f"is on {where}, another port or scheme of an allowed host; an origin (scheme, host and port) "
                "is allowed only when it is the GEO base URL's or listed in geo.allowed_hosts")
    return f"is on host '{found[1]}', which is neither the GEO host nor listed in geo.allowed_hosts"


def refusal_fix(url: str) -> str:
    found = None if _URL_UNSAFE_RE.search(url) else origin(url)
    if found is None:
        return "only http(s) URLs of plain printable ASCII are fetched: narrow the pattern to leave the file out"
    return (f"add '{escaped(_host_port(*found))}' to geo.allowed_hosts (it takes host or host:port) if you trust "
            "that origin, or narrow the pattern to leave the file out")


def check_url(url: str, allowed: frozenset[Origin], *, what: str) -> None:
    """Raise a one-line InputError when ``url`` is not an http(s) URL on an allowed origin."""
    problem = url_problem(url, allowed)
    if problem:
        raise InputError(what, f"refused to fetch {escaped(url, 300)}: it {problem}", refusal_fix(url))


class Refused(Exception):
    """A redirect to a URL that may not be fetched."""

    def __init__(self, url: str, problem: str):
        super().__init__(url, problem)
        self.url, self.problem = url, problem

    def error(self, what: str, url: str) -> InputError:
        return InputError(what, f"refused to follow the redirect of {escaped(url, 300)} to {escaped(self.url, 300)}: "
                          f"it {self.problem}", refusal_fix(self.url))


class GuardedRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects only to allowed origins (never from https to http); headers stay with their origin."""

    def __init__(self, allowed: frozenset[Origin]):
        self.allowed = allowed

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        problem = url_problem(newurl, self.allowed)
        if problem is None and origin(req.full_url)[0] == "https" and origin(newurl)[0] != "https":
            problem = "downgrades https to plain http"
        if problem:
            raise Refused(newurl, problem)
        request = super().redirect_request(req, fp, code, msg, headers, newurl)
        if request is not None and origin(newurl) != origin(req.full_url):
            for key in [k for k in request.headers if k.lower() != "user-agent"]:
                del request.headers[key]  # Range, If-Range: meant for the first origin only
        return request
