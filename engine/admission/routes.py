"""Which Engine API requests the plugin judges, and how: one table, by method and path.

The path is read as the engine's router reads it (`mux` matches the *decoded* path; the engine
sees `/containers/%63reate` as a create), with the API version prefix (`/v1.41`) taken off and the
path cleaned (an uncleaned path is only redirected by the engine, so judging it cleaned is the
stricter reading). Read-only methods pass. Old API versions change what a request means (below
1.24 `POST /containers/{id}/start` takes a HostConfig body), so a request that changes anything
on such a version is refused.
"""

from __future__ import annotations

import enum
import posixpath
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from engine.admission.errors import UnreadableRequest

READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OLDEST_API = (1, 24)  # below it, `start` accepts a HostConfig body
_VERSION = re.compile(r"^/v([0-9.]+)(/.*)$")


class Kind(enum.Enum):
    """What a request is, for the judge."""

    READ = "read"  # reads only: passes
    CREATE = "create"  # POST /containers/create: judged against a profile
    UPDATE = "update"  # POST /containers/{id}/update: no limit may change
    EXEC = "exec"  # POST /containers/{id}/exec: no privileged exec, no other user
    COMMIT = "commit"  # POST /commit: refused
    PLUGIN = "plugin"  # installing or configuring a managed plugin: refused
    SERVICE = "service"  # a swarm service (its own container settings): refused
    OTHER = "other"  # changes state, not a container's settings (start, stop, rm, pull, ...)


# (method, path pattern, kind); the first match decides.
ROUTES: tuple[tuple[str, re.Pattern[str], Kind], ...] = tuple(
    (method, re.compile(pattern), kind)
    for method, pattern, kind in (
        ("POST", r"/containers/create", Kind.CREATE),
        ("POST", r"/containers/[^/]+/update", Kind.UPDATE),
        ("POST", r"/containers/[^/]+/exec", Kind.EXEC),
        ("POST", r"/commit", Kind.COMMIT),
        ("POST", r"/plugins/(pull|create)", Kind.PLUGIN),
        ("POST", r"/plugins/[^/]+/(enable|set|upgrade|push)", Kind.PLUGIN),
        ("POST", r"/services/create", Kind.SERVICE),
        ("POST", r"/services/[^/]+/update", Kind.SERVICE),
    )
)


@dataclass(frozen=True)
class Route:
    """A request as the judge sees it."""

    method: str
    path: str  # decoded, cleaned, without the version prefix
    version: tuple[int, ...] | None  # the API version asked for, None without a prefix
    kind: Kind


def _version(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        raise UnreadableRequest(f"API version {text!r} is not a version") from None


def route(method: str, uri: str) -> Route:
    """Classify one request (`RequestMethod`, `RequestUri` of the engine's AuthZ request)."""
    if not method or not uri.startswith("/"):
        raise UnreadableRequest(f"request {method!r} {uri[:80]!r} is not an Engine API request")
    verb = method.upper()  # the router would not match `post`; judging it as POST is stricter
    path = unquote(urlsplit(uri).path)
    version = None
    matched = _VERSION.match(path)
    if matched:
        version, path = _version(matched.group(1)), matched.group(2)
    path = posixpath.normpath(path) if path not in ("", "/") else "/"
    path = "/" + path.lstrip("/")  # normpath keeps a leading `//`
    if verb in READ_ONLY_METHODS:
        return Route(verb, path, version, Kind.READ)
    if version is not None and version < OLDEST_API:
        raise UnreadableRequest(
            f"API version {'.'.join(map(str, version))} is refused for requests that change "
            "anything (before 1.24 a start request can carry container settings)"
        )
    for want, pattern, kind in ROUTES:
        if verb == want and pattern.fullmatch(path):
            return Route(verb, path, version, kind)
    return Route(verb, path, version, Kind.OTHER)
