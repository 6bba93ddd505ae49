"""Path conversion and dialect rules of the harness session, without a server.

A fake carrier records what the session sends, so "no round trip" and the exact params are
checked on the bytes; the live behaviour is in ``test_dialects.py``.
"""
from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import orjson
import pytest
from hypothesis import given, strategies as st

from execrelay.executor.fileuri import to_path
from execrelay.fileuri import from_uri, to_uri
from execrelay.harness import DIALECT_131, DIALECT_171, ExecSession, HarnessError, UnsupportedMethod
from execrelay.harness.paths import dialect_of, native_environment_info, params_to_uris, wire_path

pytestmark = pytest.mark.timeout(30)

ODD = "/tmp/a b/ü ç/#x/%41/?q/[y]|z^/new\nline"


def test_dialect_of_initialize_answer() -> None:
    assert dialect_of({"sessionId": "s"}) == DIALECT_131
    assert dialect_of({"sessionId": "s", "environmentInfo": {}}) == DIALECT_171


@pytest.mark.parametrize("path", ["/", "/tmp/x", "/tmp/a b", "/tmp/ü/ç", ODD, "/tmp/%2F", "/d/", "/tmp/b\\s"])
def test_wire_path_per_dialect(path: str) -> None:
    for arg in (path, Path(path)):
        native = os.fspath(arg)
        assert wire_path(arg, DIALECT_131) == native
        assert wire_path(arg, None) == native  # not initialized: sent as given
        uri = wire_path(arg, DIALECT_171)
        assert uri.startswith("file:///")
        assert not any(c in uri[7:] for c in " \n\\ü#?"), uri
        # the server's parser (ours, checked against the binary) and the client's reader agree
        assert to_path(uri) == native
        assert from_uri(uri) == native


def test_relative_paths_are_left_to_the_server() -> None:
    assert wire_path("rel/x", DIALECT_171) == "rel/x"
    assert wire_path(Path("rel"), DIALECT_131) == "rel"


def test_undecodable_bytes_round_trip() -> None:
    native = os.fsdecode(b"/tmp/\xff\xfe")
    uri = wire_path(native, DIALECT_171)
    assert uri == "file:///tmp/%FF%FE"
    assert from_uri(uri) == native == to_path(uri)


@given(st.lists(st.text(st.characters(blacklist_characters="/\0", blacklist_categories=("Cs",)),
                        min_size=1, max_size=8).filter(lambda s: s not in (".", "..")),
                min_size=1, max_size=4))
def test_uri_round_trip_property(parts: list[str]) -> None:
    native = "/" + "/".join(parts)
    uri = to_uri(native)
    assert from_uri(uri) == native
    assert to_path(uri) == native  # what the 0.171 parser (ours, probed against the binary) reads


@pytest.mark.parametrize("bad", ["/tmp/x", "http://h/x", "file://host/x", "file:///x?q", "file:///x#f", "file:x"])
def test_from_uri_refuses_what_servers_never_emit(bad: str) -> None:
    with pytest.raises(ValueError):
        from_uri(bad)


def test_from_uri_accepts_localhost_and_case() -> None:
    assert from_uri("file://localhost/x%20y") == "/x y"
    assert from_uri("FILE:///x") == "/x"


def test_environment_info_paths_become_native() -> None:
    info = {"shell": {"name": "bash", "path": "/bin/bash"}, "cwd": "file:///w/a%20b",
            "userHomeDir": "file:///root", "prependPathDirs": ["file:///p/%C3%BC"],
            "temporaryDirectories": [], "tempDir": "file:///tmp", "capabilities": {"fsWatchMissing": True}}
    out = native_environment_info(info)
    assert out == dict(info, cwd="/w/a b", userHomeDir="/root", prependPathDirs=["/p/ü"], tempDir="/tmp")
    assert info["cwd"] == "file:///w/a%20b"  # a copy
    assert native_environment_info(dict(info, cwd=None))["cwd"] is None
    with pytest.raises(HarnessError):
        native_environment_info(dict(info, userHomeDir="/not/a/uri"))


def test_params_to_uris_converts_path_members_only() -> None:
    params = {"path": "/a b", "cwd": "/w", "sourcePath": "/s", "destinationPath": "/d",
              "missing": ["/m", "file:///already", "rel"], "argv": ["/bin/echo", "/x"],
              "env": {"HOME": "/root"}, "nested": [{"path": "/ü"}], "other": "/o", "rel": {"path": "r"}}
    assert params_to_uris(params) == {
        "path": "file:///a%20b", "cwd": "file:///w", "sourcePath": "file:///s", "destinationPath": "file:///d",
        "missing": ["file:///m", "file:///already", "rel"], "argv": ["/bin/echo", "/x"],
        "env": {"HOME": "/root"}, "nested": [{"path": "file:///%C3%BC"}], "other": "/o", "rel": {"path": "r"}}
    assert params_to_uris(["/x", 1]) == ["/x", 1]


# ---------------------------------------------------------------------------- fake carrier
class _Carrier:
    """Records sent requests; answers each with a result taken from ``answers`` by method."""

    def __init__(self, answers: dict[str, object]) -> None:
        self.sent: list[dict] = []
        self.answers = answers
        self.session = ExecSession(self.send, lambda reason: None, "fake")

    def send(self, data: bytes) -> None:
        msg = orjson.loads(data)
        self.sent.append(msg)
        if "id" in msg:
            result = self.answers[msg["method"]]
            asyncio.get_running_loop().call_soon(self.session.deliver, orjson.dumps({"id": msg["id"], "result": result}))


async def _initialized(init_result: dict, answers: dict[str, object] | None = None) -> _Carrier:
    carrier = _Carrier({"initialize": init_result, **(answers or {})})
    await carrier.session.initialize(timeout=5)
    return carrier


NEW_CALLS = {
    "environment/info": lambda s: s.refresh_environment_info(),
    "environment/status": lambda s: s.environment_status(),
    "process/signal": lambda s: s.process_signal("p"),
    "fs/canonicalize": lambda s: s.fs_canonicalize("/x"),
    "fs/walk": lambda s: s.fs_walk("/x", max_depth=1, max_directories=1, max_entries=1),
    "fs/open": lambda s: s.fs_open("/x"),
    "fs/readBlock": lambda s: s.fs_read_block("h", 0, 1),
    "fs/writeBlock": lambda s: s.fs_write_block("h", 0, b"x"),
    "fs/close": lambda s: s.fs_close("h"),
    "fs/watchMissing": lambda s: s.fs_watch_missing(1, ["/x"]),
    "fs/missingChanged": lambda s: s.wait_missing_changed(1, timeout=0.1),
}


@pytest.mark.parametrize("method", sorted(NEW_CALLS))
async def test_new_calls_refused_on_131_without_a_round_trip(method: str) -> None:
    carrier = await _initialized({"sessionId": "s"})
    assert carrier.session.dialect == DIALECT_131 and carrier.session.environment_info is None
    before = list(carrier.sent)
    with pytest.raises(UnsupportedMethod) as ei:
        await NEW_CALLS[method](carrier.session)
    assert ei.value.method == method and ei.value.dialect == DIALECT_131
    assert method in str(ei.value) and "0.131" in str(ei.value)
    assert carrier.sent == before


async def test_new_calls_refused_before_initialize() -> None:
    carrier = _Carrier({})
    with pytest.raises(UnsupportedMethod, match="not initialized"):
        await carrier.session.fs_canonicalize("/x")
    assert carrier.sent == []


async def test_typed_calls_send_uris_to_171_and_native_paths_to_131() -> None:
    answers = {"fs/getMetadata": {}, "fs/copy": {}, "process/start": {"processId": "p"},
               "fs/canonicalize": {"path": "file:///r/%C3%BC"}}
    c131 = await _initialized({"sessionId": "s"}, answers)
    c171 = await _initialized({"sessionId": "s", "environmentInfo": {"cwd": "file:///w%20x"}}, answers)
    assert c171.session.dialect == DIALECT_171 and c171.session.environment_info == {"cwd": "/w x"}
    for carrier in (c131, c171):
        await carrier.session.fs_get_metadata(Path("/a b/ü"))
        await carrier.session.fs_copy("/s", Path("/d d"))
        await carrier.session.process_start("p", ["true"], Path("/c w"))
    native = [m["params"] for m in c131.sent[2:]]
    uris = [m["params"] for m in c171.sent[2:]]
    assert native[0]["path"] == "/a b/ü" and uris[0]["path"] == "file:///a%20b/%C3%BC"
    assert (native[1]["sourcePath"], native[1]["destinationPath"]) == ("/s", "/d d")
    assert (uris[1]["sourcePath"], uris[1]["destinationPath"]) == ("file:///s", "file:///d%20d")
    assert native[2]["cwd"] == "/c w" and uris[2]["cwd"] == "file:///c%20w"
    assert await c171.session.fs_canonicalize("/r/ü") == "/r/ü"
    assert c171.sent[-1]["params"] == {"path": "file:///r/%C3%BC"}


async def test_process_write_gets_a_write_id_on_171_only() -> None:
    answers = {"process/write": {"status": "accepted"}}
    c131 = await _initialized({"sessionId": "s"}, answers)
    c171 = await _initialized({"sessionId": "s", "environmentInfo": {}}, answers)
    await c131.session.process_write("p", b"x")
    await c171.session.process_write("p", b"x")
    await c171.session.process_write("p", b"x")
    await c131.session.process_write("p", b"x", write_id="mine")
    assert "writeId" not in c131.sent[-2]["params"] and c131.sent[-1]["params"]["writeId"] == "mine"
    ids = [m["params"]["writeId"] for m in c171.sent[-2:]]
    assert ids[0] != ids[1] and all(uuid.UUID(i).version == 4 for i in ids)
