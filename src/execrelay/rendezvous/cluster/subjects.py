"""Subjects, KV keys, headers and the small JSON messages of the cluster
(docs/rendezvous.md §Several nodes).

Executor and stream ids are arbitrary strings; subject tokens are not (no ``.``, ``*``, ``>``,
spaces).  :func:`token` keeps a plain id (``[A-Za-z0-9_-]+``) as it is and writes any other
as ``=`` + unpadded base64url of its UTF-8 bytes: ``=`` never occurs in a plain id, so the
mapping is one to one, and both forms are valid subject tokens and KV key tokens.
"""
from __future__ import annotations

import base64
import re
from typing import Any

import orjson

_PLAIN = re.compile(r"[A-Za-z0-9_-]{1,200}")

#: Header of a Resume request / a Reset from a harness's node: the harness's credential.
CRED = "Rdv-Cred"
#: Header naming the node that sent a request or a Reset.
NODE = "Rdv-Node"


def token(name: str) -> str:
    if _PLAIN.fullmatch(name):
        return name
    return "=" + base64.urlsafe_b64encode(name.encode("utf-8", "surrogatepass")).decode().rstrip("=")


def executor_subject(executor_id: str) -> str:
    """Harness -> executor frames and Resume requests (the owner subscribes)."""
    return f"rdv.x.{token(executor_id)}"


def stream_subject(stream_id: str) -> str:
    """Executor -> harness frames (the harness's node subscribes)."""
    return f"rdv.s.{token(stream_id)}"


def control_subject(executor_id: str) -> str:
    """Ownership announcements of one executor."""
    return f"rdv.ctl.{token(executor_id)}"


def node_subject(node_id: str) -> str:
    return f"rdv.node.{node_id}"


NODE_WILDCARD = "rdv.node.*"


def owner_key(executor_id: str) -> str:
    """The executor's key in the ``rdv_owner`` bucket."""
    return f"own.{token(executor_id)}"


def dumps(**fields: Any) -> bytes:
    return orjson.dumps(fields)


def loads(data: bytes) -> dict[str, Any]:
    """A control message; anything that is not a JSON object reads as ``{}``."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}
