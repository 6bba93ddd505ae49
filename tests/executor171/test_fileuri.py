"""fileuri against a table probed from the real 0.171.0 binary, plus the rules it implies."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from execrelay.executor import fileuri
from execrelay.executor.errors import RpcError, INVALID_PARAMS, INVALID_REQUEST, NOT_FOUND

from ._probe_tree import build_probe_tree

_DATA = json.loads((Path(__file__).parent / "data" / "fileuri_171.json").read_text("utf-8"))
_ROWS = _DATA["rows"]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The probe's fixture tree, rebuilt; its path must need no percent-encoding."""
    base = tmp_path_factory.mktemp("furi")
    fx = _DATA["fixture"]
    build_probe_tree(base, fx, fx["a.txt"])
    (base / "u").mkdir()
    for name in fx["u_names"]:
        (base / "u" / name).touch()
    assert fileuri.to_uri(str(base)) == "file://" + str(base)
    return str(base)


def _resolve(row_input: str, root: str) -> str:
    return row_input.replace("<root>", root)


@pytest.mark.parametrize("row", _ROWS, ids=[f"{r['method']}:{r['input']!r}" for r in _ROWS])
def test_matches_real_binary(row: dict, root: str) -> None:
    uri = _resolve(row["input"], root)
    err = row.get("error")
    if err is not None and err["code"] != NOT_FOUND:
        with pytest.raises(RpcError) as ei:
            fileuri.to_path(uri)
        assert (ei.value.code, ei.value.message) == (err["code"], _resolve(err["message"], root))
        return
    path = fileuri.to_path(uri)
    if err is not None:  # parses, but names nothing
        assert not os.path.lexists(path)
    elif row["method"] == "fs/getMetadata":
        assert os.path.isdir(path) == row["isDirectory"]
    else:
        assert fileuri.to_uri(os.path.realpath(path)) == _resolve(row["canonical"], root)


def _no_slow_path(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(uri: str, invalid_code: int) -> str:
        raise AssertionError(f"slow path taken for {uri!r}")
    monkeypatch.setattr(fileuri, "_slow", refuse)
    fileuri._memo.clear()


def test_fast_path_is_identity_on_plain_uris(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_slow_path(monkeypatch)
    for p in ("/", "/tmp", "/a/.git/HEAD", "/a/b..c/.x", "/x/[y]|z^", "/tmp//x", "/d/", "/a b", "/ü/x", "/a.",
              "/.../x"):
        assert fileuri.to_path("file://" + p) == p


@pytest.mark.parametrize("uri", ["file:///a/./b", "file:///a/../b", "file:///a/..", "file:///a/.",
                                 "file:///a%20b", "file:///C:/x", "file:///c|/x", "file:///a?b", "file:///a#b",
                                 "file:///a\\b", "file:///a\tb", "file:///a ", "file:///a\x00b"])
def test_fast_path_declines(uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_slow_path(monkeypatch)
    with pytest.raises(AssertionError, match="slow path taken"):
        fileuri.to_path(uri)


def test_dot_segments_are_textual() -> None:
    # `..` never resolves through a symlink: it is removed before the OS sees the path
    assert fileuri.to_path("file:///l/sub/../x") == "/l/x"
    assert fileuri.to_path("file:///../../x") == "/x"
    assert fileuri.to_path("file:///a/b/%2E%2e/c") == "/a/c"
    assert fileuri.to_path("file:///a/b/..") == "/a/"


def test_percent_decoding_bytes() -> None:
    assert fileuri.to_path("file:///a%2Fb") == "/a/b"
    assert fileuri.to_path("file:///%zz/%6") == "/%zz/%6"
    raw = os.fsencode(fileuri.to_path("file:///x%FFy"))
    assert raw == b"/x\xffy"
    assert fileuri.to_uri(raw) == "file:///x%FFy"
    assert fileuri.to_uri(fileuri.to_path("file:///x%FFy")) == "file:///x%FFy"


def test_backslash_and_whitespace() -> None:
    assert fileuri.to_path("file:///a\\b\\c") == "/a/b/c"
    assert fileuri.to_path(" \tfile:///a\tb\n ") == "/ab"


def test_invalid_code_for_cwd() -> None:
    with pytest.raises(RpcError) as ei:
        fileuri.to_path("file://host/x", INVALID_PARAMS)
    assert ei.value.code == INVALID_PARAMS
    assert ei.value.message == "'file://host/x' is invalid on 'linux'"


def test_query_before_fragment() -> None:
    with pytest.raises(RpcError) as ei:
        fileuri.to_path("file:///a?q#f")
    assert ei.value.message == fileuri.QUERY


@pytest.mark.parametrize("name,encoded", [
    ("a b", "a%20b"), ("q?x", "q%3Fx"), ("#h", "%23h"), ("p%", "p%25"), ("<>", "%3C%3E"),
    ("`{}", "%60%7B%7D"), ('"', "%22"), ("é", "%C3%A9"), ("t\tx", "t%09x"), ("\x7f", "%7F"),
    ("[x]|^;=&+'@:,*()!$~", "[x]|^;=&+'@:,*()!$~"),
])
def test_to_uri_encode_set(name: str, encoded: str) -> None:
    assert fileuri.to_uri("/d/" + name) == "file:///d/" + encoded
    assert fileuri.to_path(fileuri.to_uri("/d/" + name)) == "/d/" + name


@pytest.mark.parametrize("value,expected", [
    ("file:///x", True), ("FILE:///x", True), ("file:x", True), ("http://x", True), ("c:/x", True),
    ("/tmp/x", False), ("relative", False), ("", False), ("/a:b", False), ("./x:y", False),
])
def test_is_uri(value: str, expected: bool) -> None:
    assert fileuri.is_uri(value) is expected


def test_path_param_auto_and_strict() -> None:
    assert fileuri.path_param("/tmp/x", auto=True) == ("/tmp/x", False)
    assert fileuri.path_param("file:///tmp/x", auto=True) == ("/tmp/x", True)
    with pytest.raises(RpcError) as ei:
        fileuri.path_param("/tmp/x", auto=False)
    assert (ei.value.code, ei.value.message) == (INVALID_PARAMS, fileuri.RELATIVE)
    with pytest.raises(RpcError) as ei:
        fileuri.path_param("file://h/x", auto=True)
    assert ei.value.code == INVALID_REQUEST


class _Conn:
    """Just what :func:`pathparam.path_arg` reads of a connection (``--compat 0.171``, initialized)."""

    def __init__(self) -> None:
        self.server = type("S", (), {"config": type("C", (), {"compat": "0.171"})()})()
        self.session = None
        self.initialized = True


EXTRA_URIS = ["file:///a/.git/HEAD", "file:///a b/ü", "file:///a/./b", "file:///C:/x", "file:///a\tb", "file:///a ",
              "file:///a?q", "file:///a#f", "file:///a%20b", "file:///a\\b", "file:///a\x00b", "file:///"]


@pytest.mark.parametrize("uri", [r["input"] for r in _ROWS] + EXTRA_URIS)
def test_path_arg_inlined_fast_path_agrees_with_to_path(uri: str, root: str) -> None:
    # pathparam.path_arg inlines to_path's fast path (a call is ~10% of a request): same answers
    from execrelay.executor.pathparam import path_arg
    uri = _resolve(uri, root)
    try:
        expected: object = fileuri.to_path(uri)
    except RpcError as exc:
        expected = (exc.code, exc.message)
    conn = _Conn()
    conn.session = type("Sess", (), {"conn": conn, "dialect": None})()
    try:
        got: object = path_arg(conn, {"path": uri}, "path")[0]  # type: ignore[arg-type]
    except RpcError as exc:
        got = (exc.code, exc.message)
    assert got == expected


@pytest.mark.parametrize("uri", [r["input"] for r in _ROWS] + EXTRA_URIS + ["file:///a/b.c", "file:///x/.", "file:///ab:"])
def test_uri_fast_path_twins_agree_with_to_path(twin, uri: str, root: str) -> None:
    """Both builds of the compiled one-pass scan: None (full parser needed) or to_path's answer."""
    uri = _resolve(uri, root)
    fast = twin("fsmeta").uri_fast_path(uri)
    if fast is not None:
        assert fast == fileuri.to_path(uri)
