"""Docker's (legacy) authorization plugin protocol: what the engine sends, what it wants back.

The engine activates the plugin with `POST /Plugin.Activate` and expects `{"Implements":
["authz"]}`; then, for every API request, `POST /AuthZPlugin.AuthZReq` before handling it and
`POST /AuthZPlugin.AuthZRes` after, each answered with `{"Allow": bool, "Msg": ..., "Err": ...}`.
A refusal reaches the user as `Error response from daemon: authorization denied by plugin NAME:
MSG`. Field names are moby's `pkg/authorization` `Request` (note `RequestUri`); the body is base64
(Go's `[]byte`), and the engine sends it only for JSON bodies of at most 1 MiB.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.admission.errors import UnreadableRequest

ACTIVATE = "/Plugin.Activate"
AUTHZ_REQUEST = "/AuthZPlugin.AuthZReq"
AUTHZ_RESPONSE = "/AuthZPlugin.AuthZRes"
CONTENT_TYPE = "application/vnd.docker.plugins.v1.2+json"
ACTIVATION = {"Implements": ["authz"]}


class AuthZRequest(BaseModel):
    """One request as the engine describes it to the plugin (the fields the judge reads)."""

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    user: str = Field("", alias="User")
    method: str = Field("", alias="RequestMethod")
    uri: str = Field("", alias="RequestUri")
    body_base64: str | None = Field(None, alias="RequestBody")
    headers: dict[str, str] | None = Field(None, alias="RequestHeaders")

    @property
    def body(self) -> bytes | None:
        if not self.body_base64:
            return None
        try:
            return base64.b64decode(self.body_base64, validate=True)
        except (binascii.Error, ValueError):
            raise UnreadableRequest("the request body is not valid base64") from None


def parse_request(document: Any) -> AuthZRequest:
    """The engine's AuthZ request, or `UnreadableRequest`."""
    try:
        return AuthZRequest.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(document)"
        raise UnreadableRequest(f"the engine's AuthZ request: {where}: {first['msg']}") from None


def answer(allow: bool, message: str = "", error: str = "") -> dict[str, Any]:
    """The plugin's answer (`authorization.Response`)."""
    return {"Allow": allow, "Msg": message, "Err": error}
