"""The judge: one engine request in, one `Decision` out; pure (no socket, no clock, no engine).

Creates are allowed only as a profile renders them (`create_body` + the shared `diff`); settings of
a running container cannot be changed through the API; reads pass. Anything the judge cannot read,
and any error inside it, is a refusal that says so: it never allows by accident.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass
from typing import Any

from engine import labels as L
from engine.admission.create_body import read_create
from engine.admission.engine_json import decode, fold, is_zero
from engine.admission.errors import UnreadableRequest
from engine.admission.protocol import AuthZRequest
from engine.admission.routes import Kind, Route, route
from engine.audit.auditor import LAUNCHER_ENV
from engine.audit.drift import Drift, diff
from engine.render.interface import render
from engine.render.settings import ExpectedSettings, Settings
from engine.render.walk import walk
from policy.errors import Error
from policy.loader import Policy

PREFIX = "container-policy"  # every message starts so, after the engine's "denied by plugin X: "
# Fields of an update body that do not touch a limit.
UPDATE_HARMLESS = frozenset({"restartpolicy"})


class Mode(enum.StrEnum):
    """What a refusal does: `enforce` refuses; `audit` allows and records "would refuse"."""

    ENFORCE = "enforce"
    AUDIT = "audit"


@dataclass(frozen=True)
class Decision:
    """The verdict on one request: allowed or not, under which profile, and why."""

    allowed: bool
    why: str
    profile: str | None = None
    method: str = ""
    path: str = ""


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 100 else text[:97] + "..."


def differences(profile: str, drifts: list[Drift]) -> str:
    """The refusal of a create that is not exactly `profile`: each differing field."""
    fields = "; ".join(
        f"{d.field}: profile has {_show(d.expected)}, request has {_show(d.actual)}" for d in drifts
    )
    return f"the request differs from profile '{profile}' in {len(drifts)} field(s): {fields}"


class Judge:
    """Judges requests against one validated policy. `default_profile` is the profile that an
    unlabelled create must match exactly (None: an unlabelled create is refused)."""

    def __init__(self, policy: Policy, default_profile: str | None = None) -> None:
        if default_profile is not None:
            policy.profile(default_profile)  # a clear error for an unknown name, at start
        self.policy = policy
        self.default_profile = default_profile
        # Expected settings resolve mount sources on disk: once per profile and variant.
        self._expected: dict[tuple[Any, ...], Settings] = {}
        self._lock = threading.Lock()

    def judge(self, request: AuthZRequest) -> Decision:
        """The decision on `request`; never raises, never allows on an error."""
        where: Route | None = None
        try:
            where = route(request.method, request.uri)
            allowed, why, profile = self._judge(where, request)
        except Error as exc:
            allowed, why, profile = False, exc.message, None
        except Exception as exc:  # fail closed, and say what broke
            allowed, why, profile = False, f"internal error: {type(exc).__name__}: {exc}", None
        return Decision(
            allowed,
            why,
            profile,
            method=where.method if where else request.method,
            path=where.path if where else request.uri[:200],
        )

    def _judge(self, where: Route, request: AuthZRequest) -> tuple[bool, str, str | None]:
        kind = where.kind
        if kind in (Kind.READ, Kind.OTHER):
            return True, "reads only" if kind is Kind.READ else "changes no container setting", None
        if kind is Kind.CREATE:
            return self._create(request.body)
        if kind is Kind.UPDATE:
            return self._update(request.body)
        if kind is Kind.EXEC:
            return self._exec(request.body)
        if kind is Kind.COMMIT:
            return False, "commit is refused: images come from builds, not from containers", None
        if kind is Kind.PLUGIN:
            return False, "managed plugins run with privileges no profile vets; refused", None
        if kind is Kind.SERVICE:
            return False, "swarm services are not judged against profiles; refused", None
        raise AssertionError(kind)

    def _create(self, body: bytes | None) -> tuple[bool, str, str | None]:
        request = read_create(body)
        labels = request.labels
        name = labels.get(L.PROFILE)
        if name is None:
            if any(L.is_reserved(k) for k in labels):
                return False, "reserved labels without a profile label", None
            if self.default_profile is None:
                return (
                    False,
                    "no profile: launch it with `policy run PROFILE` (the create carries no "
                    f"{L.PROFILE} label)",
                    None,
                )
            name = self.default_profile
        else:
            if name not in self.policy.profiles:
                return False, f"profile '{name}' is not in the policy", name
            current = self.policy.digest(name)
            if labels.get(L.DIGEST) != current:
                return (
                    False,
                    f"profile '{name}': labelled with digest {str(labels.get(L.DIGEST))[:19]}, "
                    f"the policy's is {current[:19]}; launch it again with `policy run`",
                    name,
                )
        drifts = diff(self._expected_for(name, labels, request.settings), request.settings)
        if drifts:
            return False, differences(name, drifts), name
        return True, f"exactly profile '{name}'", name

    def _expected_for(self, name: str, labels: dict[str, str], observed: Settings) -> Settings:
        """What a create under `name` must ask for; the shard env of workers, and the image that
        `policy run --image` recorded, as the audit accepts them."""
        profile = self.policy.profiles[name]
        env = observed["env"]
        extra = {k: env[k] for k in LAUNCHER_ENV if str(env.get(k, "x")).isdigit()}
        override = labels.get(L.IMAGE) if L.PROFILE in labels else None
        memo = (name, tuple(sorted(extra.items())), override)
        with self._lock:
            expected = self._expected.get(memo)
        if expected is None:
            if extra:
                profile = profile.model_copy(update={"env": {**profile.env, **extra}})
            walked = walk(profile, self.policy.project, image=override)
            expected = render(ExpectedSettings(None), walked).value
            with self._lock:
                self._expected[memo] = expected
        return expected

    def _update(self, body: bytes | None) -> tuple[bool, str, str | None]:
        if not body:
            raise UnreadableRequest("the update request came without its body")
        update = fold(decode(body, "the update body"), "the update body")
        changed = sorted(
            f"{k}={_show(v)}"
            for k, v in update.items()
            if k not in UPDATE_HARMLESS and not _unset(k, v)
        )
        if changed:
            return (
                False,
                f"update refused ({', '.join(changed)}): a container's limits are its "
                "profile's; change the profile and launch again",
                None,
            )
        return True, "changes no limit", None

    def _exec(self, body: bytes | None) -> tuple[bool, str, str | None]:
        if not body:
            raise UnreadableRequest("the exec request came without its body")
        config = fold(decode(body, "the exec body"), "the exec body")
        if config.get("privileged") not in (None, False):
            return False, "a privileged exec is refused: it would have every capability", None
        user = config.get("user")
        if user not in (None, ""):
            # The judge sees the exec, not its container: any user named is refused, root or
            # not, since only the container's own user (its profile's) is vetted (CIS 5.24).
            return (
                False,
                f"an exec as user {_show(user)} is refused: an exec runs as the container's own "
                "user, its profile's; leave out --user",
                None,
            )
        return True, "an unprivileged exec as the container's user", None


def _unset(name: str, value: Any) -> bool:
    return value == -1 if name == "memoryswappiness" and value is not None else is_zero(value)
