"""Conformance cases for the codex 0.171.0 exec-server dialect, as implementation-agnostic coroutines.

Each case gets a ``Ctx171`` (server URL, the server's cwd and CODEX_HOME, a scratch dir) and
asserts exact outcomes: codes, messages and result shapes as the real 0.171.0 binary produces
them (FINDINGS.md lists what differs from docs/exec-server.md and from 0.131.0). Paths travel as
``file://`` URIs in this dialect, so expected values are built from the scratch dir with ``uri``;
replies are compared after ``normalise`` (uuids, timestamps, peer addresses).
"""
from __future__ import annotations

import asyncio
import os
import re
import socket
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.cases import Case, Ctx, assert_error, assert_result, b64, output_bytes, registrar, unb64
from interop.wsclient import UUID_RE, JsonWsClient, normalise

CASES: dict[int, Case] = {}
case = registrar(CASES)


@dataclass
class Ctx171(Ctx):
    """The 0.131 suite's context plus what a 0.171 server reports about its own environment."""

    server_cwd: Path = field(default=Path("/"), kw_only=True)
    codex_home: Path = field(default=Path("/"), kw_only=True)


# ---------------------------------------------------------------------------------------------
# helpers and the exact texts of the 0.171.0 binary

NOT_URI = "invalid URI: relative URL without a base"
NOT_FOUND = "No such file or directory (os error 2)"
PATH_ENV = {"PATH": "/usr/bin:/bin"}

ENV_INFO_KEYS = ["shell", "executorVersion", "providerId", "cwd", "userHomeDir", "platformOs",
                 "prependPathDirs", "temporaryDirectories", "tempDir", "capabilities"]
CAPABILITIES = ["networkProxyLaunch", "networkProxyReviewDomains", "networkProxyTransparentTcp",
                "credentialMasking", "credentialMaskingCustomProviders", "capabilityDiscoverySandbox",
                "fsWatchMissing", "capabilityDiscoveryV2", "environmentConfigRead", "httpHeaderEnvVars",
                "sandboxedFileStreaming", "fileWriteStreaming", "shellSnapshotV2", "windowsMxc",
                "linuxRootWritePreservesDevices", "linuxApprovedRootWritePreservesRestrictions"]
WALK_OPTIONS = {"maxDepth": 5, "maxDirectories": 100, "maxEntries": 100, "followDirectorySymlinks": False}
THREAD_ID = "550e8400-e29b-41d4-a716-446655440000"


def uri(path: Path | str) -> str:
    """``file://`` URI of an absolute native path, percent-encoded as the server encodes results."""
    return "file://" + urllib.parse.quote(str(path))


def pstart(pid: str, argv: list[str], cwd: Path | str, **kw: Any) -> dict[str, Any]:
    """``process/start`` params; ``cwd`` is a native path (turned into a URI) or a URI string."""
    cwd_s = cwd if isinstance(cwd, str) and ":" in cwd else uri(cwd)
    p: dict[str, Any] = {"processId": pid, "argv": argv, "cwd": cwd_s, "env": dict(PATH_ENV), "tty": False}
    p.update(kw)
    return p


async def start_ok(c: JsonWsClient, params: dict[str, Any]) -> None:
    assert_result(await c.call("process/start", params),
                  {"processId": params["processId"], "sandboxType": "none"})


async def run_to_close(c: JsonWsClient, params: dict[str, Any], timeout: float = 10.0) -> list[dict[str, Any]]:
    await start_ok(c, params)
    return await c.wait_process_closed(params["processId"], timeout)


def exited(events: list[dict[str, Any]]) -> dict[str, Any]:
    [ev] = [e for e in events if e["method"] == "process/exited"]
    return ev["params"]


async def fs_err(c: JsonWsClient, method: str, params: Any, code: int, message: str) -> None:
    assert_error(await c.call(method, params), code, message)


def make_tree(root: Path) -> Path:
    """a.txt, sub/b.txt, sub/deep/c.txt, sub/deep/deeper/ under ``root``/tree."""
    tree = root / "tree"
    (tree / "sub" / "deep" / "deeper").mkdir(parents=True)
    (tree / "a.txt").write_text("hello\n")
    (tree / "sub" / "b.txt").write_text("bb")
    (tree / "sub" / "deep" / "c.txt").write_text("c")
    return tree


def walk_entries(result: dict[str, Any], base: Path) -> list[tuple[str, str]]:
    """Walk entries as (path relative to ``base`` in URI form, kind), in wire order."""
    prefix = uri(base) + "/"
    out = []
    for e in result["entries"]:
        assert list(e) == ["path", "kind"], e
        assert e["path"].startswith(prefix), e
        out.append((e["path"][len(prefix):], e["kind"]))
    return out


# ---------------------------------------------------------------------------------------------
# initialize, the gates, the environment methods

def check_environment_info(ctx: Ctx171, info: dict[str, Any]) -> None:
    assert list(info) == ENV_INFO_KEYS, info
    assert list(info["shell"]) == ["name", "path"], info
    shell_path = info["shell"]["path"]
    assert shell_path.startswith("/") and os.path.basename(shell_path) == info["shell"]["name"], info
    assert isinstance(info["executorVersion"], str) and info["executorVersion"], info
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", info["providerId"]), info
    assert info["cwd"] == uri(ctx.server_cwd), info
    assert info["userHomeDir"] == uri(Path.home()), info
    assert info["platformOs"] == "linux", info
    assert isinstance(info["prependPathDirs"], list), info
    assert all(isinstance(d, str) and d.startswith("file:///") for d in info["prependPathDirs"]), info
    assert info["temporaryDirectories"] == [], info
    assert isinstance(info["tempDir"], str) and info["tempDir"].startswith("file:///"), info
    caps = info["capabilities"]
    assert list(caps) == CAPABILITIES, caps
    assert all(type(v) is bool for v in caps.values()), caps
    assert caps["windowsMxc"] is False, caps


@case(1, "initialize-environment-info")
async def c01(ctx: Ctx171) -> None:
    c = await ctx.conn(init=False)
    resp = await c.call("initialize", {"clientName": "t"}, id=1)
    assert list(resp) == ["id", "result"] and resp["id"] == 1, resp
    res = resp["result"]
    assert list(res) == ["sessionId", "environmentInfo"], res
    assert UUID_RE.match(res["sessionId"]), res
    check_environment_info(ctx, res["environmentInfo"])
    await c.notify("initialized", {})
    # environment/info answers the same object, with or without params.
    assert assert_result(await c.call("environment/info", {})) == res["environmentInfo"]
    assert assert_result(await c.call("environment/info")) == res["environmentInfo"]
    assert assert_result(await c.call("environment/status", {})) == {"status": "ready"}
    assert assert_result(await c.call("environment/status")) == {"status": "ready"}


@case(2, "initialize-twice-and-params")
async def c02(ctx: Ctx171) -> None:
    c = await ctx.conn(init=False)
    assert_error(await c.call("initialize", {}), -32602, "missing field `clientName`")
    assert_error(await c.call("initialize", None), -32602, "invalid type: null, expected struct InitializeParams")
    assert_error(await c.call("initialize", {"clientName": 5}), -32602, "invalid type: number, expected a string")
    first = assert_result(await c.call("initialize", {"clientName": "t", "extra": 1}))
    assert UUID_RE.match(first["sessionId"]), first
    assert_error(await c.call("initialize", {"clientName": "t"}), -32600,
                 "initialize may only be sent once per connection")
    other = await ctx.conn()
    assert other.session_id != first["sessionId"]


@case(3, "gates-before-initialize")
async def c03(ctx: Ctx171) -> None:
    c = await ctx.conn(init=False)
    # Params are parsed before the initialize gate: a native path is -32602, not -32600.
    await fs_err(c, "fs/getMetadata", {"path": str(ctx.tmp)}, -32602, NOT_URI)
    await fs_err(c, "fs/getMetadata", {}, -32602, "missing field `path`")
    await fs_err(c, "process/start", {"processId": "x"}, -32602, "missing field `argv`")
    await fs_err(c, "fs/getMetadata", {"path": uri(ctx.tmp)}, -32600,
                 "client must call initialize before using filesystem methods")
    # The host check comes after the gate (it is not a parse error).
    await fs_err(c, "fs/getMetadata", {"path": "file://host/x"}, -32600,
                 "client must call initialize before using filesystem methods")
    for method, params in [("fs/open", {"handleId": "h", "path": uri(ctx.tmp)}), ("fs/close", {"handleId": "h"}),
                           ("fs/watchMissing", {"watchId": 1, "missing": []})]:
        await fs_err(c, method, params, -32600, "client must call initialize before using filesystem methods")
    for method, params in [("process/start", pstart("x", ["true"], ctx.tmp)), ("process/read", {"processId": "x"}),
                           ("process/write", {"processId": "x", "chunk": "", "writeId": "a"}),
                           ("process/signal", {"processId": "x", "signal": "interrupt"}),
                           ("process/terminate", {"processId": "x"})]:
        await fs_err(c, method, params, -32600, "client must call initialize before using exec methods")
    await fs_err(c, "environment/info", {}, -32600, "client must call initialize before using environment info methods")
    await fs_err(c, "environment/status", {}, -32600,
                 "client must call initialize before using environment status methods")
    await fs_err(c, "capabilities/discoverV2", {"cwd": uri(ctx.tmp)}, -32600,
                 "client must call initialize before using capability discovery methods")
    await fs_err(c, "foo/bar", {}, -32601, "exec-server stub does not implement `foo/bar` yet")


@case(4, "gates-before-initialized")
async def c04(ctx: Ctx171) -> None:
    c = await ctx.conn(init=True, initialized=False)
    await fs_err(c, "fs/getMetadata", {"path": uri(ctx.tmp)}, -32600,
                 "client must send initialized before using filesystem methods")
    await fs_err(c, "process/start", pstart("x", ["true"], ctx.tmp), -32600,
                 "client must send initialized before using exec methods")
    await fs_err(c, "environment/info", {}, -32600, "client must send initialized before using environment info methods")
    await fs_err(c, "environment/status", {}, -32600,
                 "client must send initialized before using environment status methods")
    await c.notify("initialized", {})
    assert assert_result(await c.call("fs/getMetadata", {"path": uri(ctx.tmp)}))["isDirectory"] is True


@case(5, "environment-config-read")
async def c05(ctx: Ctx171) -> None:
    c = await ctx.conn()
    m = "environmentConfig/read"
    await fs_err(c, m, None, -32602, "invalid type: null, expected struct EnvironmentConfigReadParams")
    await fs_err(c, m, {}, -32602, "missing field `cwd`")
    await fs_err(c, m, {"cwd": str(ctx.tmp)}, -32602, NOT_URI)
    await fs_err(c, m, {"cwd": uri(ctx.tmp)}, -32602, "missing field `configPaths`")
    await fs_err(c, m, {"cwd": uri(ctx.tmp), "configPaths": []}, -32602, "missing field `requirementsPaths`")
    await fs_err(c, m, {"cwd": uri(ctx.tmp), "configPaths": ["a.toml"], "requirementsPaths": []}, -32602,
                 'invalid type: string "a.toml", expected a sequence')
    await fs_err(c, m, {"cwd": uri(ctx.tmp), "configPaths": [], "requirementsPaths": []}, -32602,
                 "at least one config or requirements path is required")
    await fs_err(c, m, {"cwd": uri(ctx.tmp), "configPaths": [[]], "requirementsPaths": []}, -32602,
                 "TOML paths must contain at least one key segment")
    expected = {"userHomeDir": uri(Path.home()), "codexHomeDir": uri(ctx.codex_home), "hostname": socket.gethostname(),
                "config": {"layers": [], "cloudInsertionIndex": 0},
                "requirements": {"layers": [], "cloudInsertionIndex": 0}}
    for params in [{"cwd": uri(ctx.tmp), "configPaths": [["model"]], "requirementsPaths": []},
                   {"cwd": uri(ctx.tmp / "nope"), "configPaths": [["model"], ["features", "x"]],
                    "requirementsPaths": [["a"]]}]:
        res = assert_result(await c.call(m, params))
        assert res == expected and list(res) == list(expected), res


@case(6, "capability-discovery")
async def c06(ctx: Ctx171) -> None:
    c = await ctx.conn()
    v1, v2 = "capabilityRoots/discoverV1", "capabilities/discoverV2"
    await fs_err(c, v1, None, -32602, "invalid type: null, expected struct WireCapabilityRootsDiscoverParams")
    await fs_err(c, v1, {}, -32602, "missing field `roots`")
    assert assert_result(await c.call(v1, {"roots": []})) == {"roots": []}
    await fs_err(c, v1, {"roots": [uri(ctx.tmp)]}, -32602,
                 f'invalid type: string "{uri(ctx.tmp)}", expected struct WireCapabilityRootDiscoverRequest')
    await fs_err(c, v1, {"roots": [{"path": uri(ctx.tmp)}]}, -32602, "missing field `id`")
    await fs_err(c, v1, {"roots": [{"id": "r1", "root": uri(ctx.tmp)}]}, -32602, "missing field `path`")
    res = assert_result(await c.call(v1, {"roots": [{"id": "r1", "path": uri(ctx.tmp)}]}))
    assert res == {"roots": [{"id": "r1", "path": uri(ctx.tmp), "plugin": None, "skills": [], "namespaceManifests": [],
                              "warnings": [], "error": None}]}, res
    assert list(res["roots"][0]) == ["id", "path", "plugin", "skills", "namespaceManifests", "warnings", "error"]
    await fs_err(c, v2, None, -32602, "invalid type: null, expected struct DiscoverV2CapabilitiesRequest")
    await fs_err(c, v2, {}, -32602, "missing field `cwd`")
    await fs_err(c, v2, {"cwd": str(ctx.tmp)}, -32602, NOT_URI)
    res = assert_result(await c.call(v2, {"cwd": uri(ctx.tmp)}))
    assert res == {"plugins": [], "skills": [], "warnings": []} and list(res) == ["plugins", "skills", "warnings"]


@case(7, "methods-still-missing")
async def c07(ctx: Ctx171) -> None:
    c = await ctx.conn()
    for m in ["process/resize", "process/resizePty", "process/kill", "fs/watch", "fs/unwatch", "fs/unwatchMissing",
              "ping", "shutdown"]:
        await fs_err(c, m, {}, -32601, f"exec-server stub does not implement `{m}` yet")


@case(8, "malformed-text")
async def c08(ctx: Ctx171) -> None:
    c = await ctx.conn()
    await c.send("nonsense")
    resp = await c.response()
    assert normalise(resp) == {"error": {"code": -32600, "message": (
        "failed to parse websocket JSON-RPC message from exec-server websocket <peer>: "
        "expected ident at line 1 column 2")}, "id": -1}, resp
    assert assert_result(await c.call("environment/status"))["status"] == "ready"


# ---------------------------------------------------------------------------------------------
# paths are file:// URIs

@case(10, "native-path-refused")
async def c10(ctx: Ctx171) -> None:
    c = await ctx.conn()
    (ctx.tmp / "a.txt").write_text("x")
    native, good = str(ctx.tmp / "a.txt"), uri(ctx.tmp / "a.txt")
    calls: list[tuple[str, dict[str, Any]]] = [
        ("fs/getMetadata", {"path": native}), ("fs/readFile", {"path": native}),
        ("fs/writeFile", {"path": native, "dataBase64": ""}), ("fs/createDirectory", {"path": native}),
        ("fs/readDirectory", {"path": native}), ("fs/remove", {"path": native}),
        ("fs/copy", {"sourcePath": native, "destinationPath": good, "recursive": False}),
        ("fs/copy", {"sourcePath": good, "destinationPath": native, "recursive": False}),
        ("fs/canonicalize", {"path": native}), ("fs/walk", {"path": native, "options": WALK_OPTIONS}),
        ("fs/open", {"handleId": "h", "path": native}), ("fs/watchMissing", {"watchId": 1, "missing": [native]}),
        ("fs/watchMissing", {"watchId": 2, "missing": ["a.txt"]}),
        ("process/start", dict(pstart("p", ["true"], ctx.tmp), cwd=str(ctx.tmp))),
        ("fs/readFile", {"path": ""}),
    ]
    for method, params in calls:
        await fs_err(c, method, params, -32602, NOT_URI)
    await fs_err(c, "fs/readFile", {"path": "http://x" + native}, -32602, "unsupported path URI scheme `http`")
    await fs_err(c, "process/start", pstart("p", ["true"], "http://x/y"), -32602, "unsupported path URI scheme `http`")
    await fs_err(c, "fs/readFile", {"path": good + "?q=1"}, -32602, "query parameters are not allowed in path URIs")
    await fs_err(c, "fs/readFile", {"path": good + "#f"}, -32602, "fragments are not allowed in path URIs")


@case(11, "uri-forms-accepted")
async def c11(ctx: Ctx171) -> None:
    c = await ctx.conn()
    (ctx.tmp / "with space").mkdir()
    (ctx.tmp / "with space" / "f.txt").write_text("sp")
    (ctx.tmp / "üni").mkdir()
    (ctx.tmp / "üni" / "f.txt").write_text("un")
    (ctx.tmp / "a.txt").write_text("hello\n")
    t = str(ctx.tmp)
    for path, data in [(f"file://{t}/with space/f.txt", b"sp"), (f"file://{t}/with%20space/f.txt", b"sp"),
                       (f"file://{t}/üni/f.txt", b"un"), (f"file://{t}/%C3%BCni/f.txt", b"un"),
                       (f"file://localhost{t}/a.txt", b"hello\n"), (f"file:{t}/a.txt", b"hello\n"),
                       (f"FILE://{t}/a.txt", b"hello\n"), (f"file:///tmp/../{t}/a.txt", b"hello\n")]:
        assert assert_result(await c.call("fs/readFile", {"path": path})) == {"dataBase64": b64(data)}, path
    # An empty path part is the root directory.
    for path in ["file://", "file:///"]:
        await fs_err(c, "fs/readFile", {"path": path}, -32600, "path `/` is not a file")


@case(12, "uri-host-refused")
async def c12(ctx: Ctx171) -> None:
    c = await ctx.conn()
    (ctx.tmp / "a.txt").write_text("x")
    for host in ["host", "127.0.0.1"]:
        bad = f"file://{host}{ctx.tmp}/a.txt"
        await fs_err(c, "fs/readFile", {"path": bad}, -32600, f"'{bad}' is invalid on 'linux'")
        await fs_err(c, "fs/canonicalize", {"path": bad}, -32600, f"'{bad}' is invalid on 'linux'")
        bad_dir = f"file://{host}{ctx.tmp}"
        await fs_err(c, "process/start", pstart("p", ["true"], bad_dir), -32602,
                     f"cwd URI `{bad_dir}` is not valid on this exec-server host: '{bad_dir}' is invalid on 'linux'")
    assert assert_result(await c.call("fs/watchMissing", {"watchId": 1, "missing": ["file://host/x"]})) == {
        "watching": False}


@case(13, "dotdot-textual")
async def c13(ctx: Ctx171) -> None:
    # `link/..` is removed while parsing the URI: it never goes through the link.
    d = ctx.tmp
    (d / "deep" / "inner").mkdir(parents=True)
    (d / "x.txt").write_text("top")
    (d / "deep" / "x.txt").write_text("deep")
    (d / "link").symlink_to(d / "deep" / "inner")
    assert (d / "link" / ".." / "x.txt").read_text() == "deep"  # what the kernel would do
    c = await ctx.conn()
    res = assert_result(await c.call("fs/readFile", {"path": f"file://{d}/link/../x.txt"}))
    assert unb64(res["dataBase64"]) == b"top"
    assert assert_result(await c.call("fs/canonicalize", {"path": f"file://{d}/link/.."})) == {"path": uri(d)}
    events = await run_to_close(c, pstart("p", ["/bin/pwd"], f"file://{d}/link/.."))
    assert output_bytes(events, "stdout") == f"{d}\n".encode()


@case(14, "cwd-uri-forms")
async def c14(ctx: Ctx171) -> None:
    c = await ctx.conn()
    (ctx.tmp / "with space").mkdir()
    (ctx.tmp / "üni").mkdir()
    t = str(ctx.tmp)
    for n, (cwd, expect) in enumerate([(f"file://{t}/with space", f"{t}/with space"),
                                       (f"file://{t}/with%20space", f"{t}/with space"),
                                       (f"file://{t}/üni", f"{t}/üni"), (f"file://{t}/%C3%BCni", f"{t}/üni"),
                                       (f"file://localhost{t}", t), (f"file:{t}", t)]):
        events = await run_to_close(c, pstart(f"p{n}", ["/bin/pwd"], cwd))
        assert output_bytes(events, "stdout") == f"{expect}\n".encode(), cwd
        assert exited(events)["exitCode"] == 0


@case(15, "uris-in-results-encoded")
async def c15(ctx: Ctx171) -> None:
    c = await ctx.conn()
    d = ctx.tmp / "enc"
    d.mkdir()
    for name in ["zeta", "b b", "mü", "Alpha"]:
        (d / name).write_text("x")
    assert assert_result(await c.call("fs/canonicalize", {"path": f"file://{d}/b b"})) == {
        "path": f"file://{d}/b%20b"}
    assert assert_result(await c.call("fs/canonicalize", {"path": f"file://{d}/mü"})) == {
        "path": f"file://{d}/m%C3%BC"}
    res = assert_result(await c.call("fs/walk", {"path": uri(d), "options": WALK_OPTIONS}))
    assert walk_entries(res, d) == [("Alpha", "file"), ("b%20b", "file"), ("m%C3%BC", "file"), ("zeta", "file")]
    # readDirectory names are plain names, not URIs.
    res = assert_result(await c.call("fs/readDirectory", {"path": uri(d)}))
    assert sorted(e["fileName"] for e in res["entries"]) == ["Alpha", "b b", "mü", "zeta"]


# ---------------------------------------------------------------------------------------------
# fs methods

def metadata(is_dir: bool, is_file: bool, is_link: bool, size: int | str) -> dict[str, Any]:
    return {"isDirectory": is_dir, "isFile": is_file, "isSymlink": is_link, "size": size, "createdAtMs": 0,
            "modifiedAtMs": "<ms>"}


@case(20, "fs-get-metadata")
async def c20(ctx: Ctx171) -> None:
    c = await ctx.conn()
    d = ctx.tmp
    (d / "a.txt").write_text("hello\n")
    (d / "sub").mkdir()
    (d / "link").symlink_to(d / "sub")
    os.mkfifo(d / "fifo")
    for name, expected in [("a.txt", metadata(False, True, False, 6)), ("fifo", metadata(False, False, False, 0))]:
        res = assert_result(await c.call("fs/getMetadata", {"path": uri(d / name)}))
        assert normalise(res) == expected and list(res) == list(expected), res
    for name in ["sub", "link"]:
        res = assert_result(await c.call("fs/getMetadata", {"path": uri(d / name)}))
        assert normalise(res) == metadata(True, False, name == "link", res["size"]), res
        assert type(res["size"]) is int and res["size"] == os.stat(d / name).st_size, res
    await fs_err(c, "fs/getMetadata", {"path": uri(d / "nope")}, -32004, NOT_FOUND)


@case(21, "fs-read-write-file")
async def c21(ctx: Ctx171) -> None:
    c = await ctx.conn()
    d = ctx.tmp
    assert assert_result(await c.call("fs/writeFile", {"path": uri(d / "w.txt"), "dataBase64": b64("hi")})) == {}
    assert (d / "w.txt").read_bytes() == b"hi"
    assert assert_result(await c.call("fs/readFile", {"path": uri(d / "w.txt")})) == {"dataBase64": b64("hi")}
    await fs_err(c, "fs/writeFile", {"path": uri(d / "nodir" / "w.txt"), "dataBase64": b64("x")}, -32004, NOT_FOUND)
    await fs_err(c, "fs/writeFile", {"path": uri(d / "w.txt"), "dataBase64": "!!"}, -32600,
                 "fs/writeFile requires valid base64 dataBase64: Invalid symbol 33, offset 0.")
    await fs_err(c, "fs/readFile", {"path": uri(d / "nope")}, -32004, NOT_FOUND)
    (d / "sub").mkdir()
    os.mkfifo(d / "fifo")
    for name in ["sub", "fifo"]:
        await fs_err(c, "fs/readFile", {"path": uri(d / name)}, -32600, f"path `{d / name}` is not a file")


@case(27, "fs-write-fifo-waits-alone")
async def c27(ctx: Ctx171) -> None:
    """``fs/writeFile`` to a FIFO waits for a reader, and only that request waits: another
    connection is answered meanwhile (docs/exec-server.md §Methods)."""
    c, other = await ctx.conn(), await ctx.conn()
    fifo = ctx.tmp / "fifo"
    os.mkfifo(fifo)
    rid = await c.request("fs/writeFile", {"path": uri(fifo), "dataBase64": b64("through")})
    assert assert_result(await other.call("fs/getMetadata", {"path": uri(ctx.tmp)}, timeout=3.0))["isDirectory"]

    def drain() -> bytes:
        with open(fifo, "rb") as f:
            return f.read()
    got = await asyncio.get_running_loop().run_in_executor(None, drain)
    resp = await c.response(5.0)
    assert resp.get("id") == rid and resp.get("result") == {}, resp
    assert got == b"through"


@case(22, "fs-create-remove")
async def c22(ctx: Ctx171) -> None:
    c = await ctx.conn()
    d = ctx.tmp
    for params in [{"path": uri(d / "n1" / "n2")}, {"path": uri(d / "n1" / "n2"), "recursive": True},
                   {"path": uri(d / "n3"), "recursive": False}]:
        assert assert_result(await c.call("fs/createDirectory", params)) == {}, params
    assert (d / "n1" / "n2").is_dir() and (d / "n3").is_dir()
    await fs_err(c, "fs/createDirectory", {"path": uri(d / "n3"), "recursive": False}, -32603, "File exists (os error 17)")
    await fs_err(c, "fs/createDirectory", {"path": uri(d / "n4" / "n5"), "recursive": False}, -32004, NOT_FOUND)
    # remove defaults to recursive and force: a tree goes, a missing path is fine.
    for params in [{"path": uri(d / "n1")}, {"path": uri(d / "n1")}, {"path": uri(d / "n1"), "recursive": False},
                   {"path": uri(d / "n1"), "recursive": True}]:
        assert assert_result(await c.call("fs/remove", params)) == {}, params
    assert not (d / "n1").exists()
    await fs_err(c, "fs/remove", {"path": uri(d / "n1"), "recursive": True, "force": False}, -32004, NOT_FOUND)


@case(23, "fs-copy-read-directory")
async def c23(ctx: Ctx171) -> None:
    c = await ctx.conn()
    tree = make_tree(ctx.tmp)
    await fs_err(c, "fs/copy", {"sourcePath": uri(tree / "sub"), "destinationPath": uri(tree / "sub2")}, -32602,
                 "missing field `recursive`")
    await fs_err(c, "fs/copy", {"path": uri(tree / "a.txt"), "destinationPath": uri(tree / "x")}, -32602,
                 "missing field `sourcePath`")
    assert assert_result(await c.call("fs/copy", {"sourcePath": uri(tree / "sub"), "destinationPath": uri(tree / "sub2"),
                                                   "recursive": True})) == {}
    assert (tree / "sub2" / "deep" / "c.txt").read_text() == "c"
    assert assert_result(await c.call("fs/copy", {"sourcePath": uri(tree / "a.txt"),
                                                   "destinationPath": uri(tree / "a2.txt"), "recursive": False})) == {}
    assert (tree / "a2.txt").read_text() == "hello\n"
    (tree / "link").symlink_to(tree / "sub")
    os.mkfifo(tree / "fifo")
    res = assert_result(await c.call("fs/readDirectory", {"path": uri(tree)}))
    assert list(res) == ["entries"] and all(list(e) == ["fileName", "isDirectory", "isFile"] for e in res["entries"])
    assert sorted(res["entries"], key=lambda e: e["fileName"]) == [
        {"fileName": "a.txt", "isDirectory": False, "isFile": True},
        {"fileName": "a2.txt", "isDirectory": False, "isFile": True},
        {"fileName": "fifo", "isDirectory": False, "isFile": False},
        {"fileName": "link", "isDirectory": True, "isFile": False},
        {"fileName": "sub", "isDirectory": True, "isFile": False},
        {"fileName": "sub2", "isDirectory": True, "isFile": False}]
    await fs_err(c, "fs/readDirectory", {"path": uri(tree / "a.txt")}, -32603, "Not a directory (os error 20)")
    await fs_err(c, "fs/readDirectory", {"path": uri(tree / "nope")}, -32004, NOT_FOUND)


@case(24, "fs-canonicalize")
async def c24(ctx: Ctx171) -> None:
    c = await ctx.conn()
    d = ctx.tmp
    (d / "dz" / "in").mkdir(parents=True)
    (d / "lnk").symlink_to(d / "dz")
    for path, expect in [(uri(d / "lnk"), uri(d / "dz")), (uri(d / "lnk" / "in"), uri(d / "dz" / "in")),
                         (f"file://localhost{d}", uri(d)), (f"file:{d}", uri(d))]:
        res = assert_result(await c.call("fs/canonicalize", {"path": path}))
        assert res == {"path": expect}, path
    await fs_err(c, "fs/canonicalize", {"path": uri(d / "nope")}, -32004, NOT_FOUND)
    await fs_err(c, "fs/canonicalize", {}, -32602, "missing field `path`")


@case(25, "fs-walk-options")
async def c25(ctx: Ctx171) -> None:
    c = await ctx.conn()
    p = uri(ctx.tmp)
    await fs_err(c, "fs/walk", {"path": p}, -32602, "missing field `options`")
    await fs_err(c, "fs/walk", {"path": p, "options": None}, -32602, "invalid type: null, expected struct WalkOptions")
    opts: dict[str, Any] = {}
    for missing in ["maxDepth", "maxDirectories", "maxEntries", "followDirectorySymlinks"]:
        await fs_err(c, "fs/walk", {"path": p, "options": opts}, -32602, f"missing field `{missing}`")
        opts[missing] = WALK_OPTIONS[missing]
    assert_result(await c.call("fs/walk", {"path": p, "options": dict(opts, unknownOption=1)}))
    await fs_err(c, "fs/walk", {"path": p, "options": dict(opts, maxDepth=-1)}, -32602, "invalid number")


@case(26, "fs-walk-results")
async def c26(ctx: Ctx171) -> None:
    c = await ctx.conn()
    tree = make_tree(ctx.tmp)
    (tree / "lnk").symlink_to(tree / "sub")

    async def walk(path: Path, **kw: Any) -> tuple[list[tuple[str, str]], bool]:
        res = assert_result(await c.call("fs/walk", {"path": uri(path), "options": dict(WALK_OPTIONS, **kw)}))
        assert list(res) == ["entries", "errors", "truncated"] and res["errors"] == [], res
        return walk_entries(res, tree), res["truncated"]

    # Breadth first, each directory's entries sorted by name; symlinks are not entries unless followed.
    full = [("a.txt", "file"), ("sub", "directory"), ("sub/b.txt", "file"), ("sub/deep", "directory"),
            ("sub/deep/c.txt", "file"), ("sub/deep/deeper", "directory")]
    assert await walk(tree) == (full, False)
    # Followed, the link is walked and the directory it points to is not walked twice.
    assert await walk(tree, followDirectorySymlinks=True) == (
        [("a.txt", "file"), ("lnk", "directory"), ("sub", "directory"), ("lnk/b.txt", "file"),
         ("lnk/deep", "directory"), ("lnk/deep/c.txt", "file"), ("lnk/deep/deeper", "directory")], False)
    assert await walk(tree, maxDepth=0) == (full[:2], False)
    assert await walk(tree, maxDepth=1) == (full[:4], False)
    assert await walk(tree, maxEntries=2) == (full[:1], True)
    assert await walk(tree, maxDirectories=1) == (full[:2], True)
    assert await walk(tree / "a.txt") == ([], False)
    assert await walk(tree / "lnk") == ([], False)
    await fs_err(c, "fs/walk", {"path": uri(tree / "nope"), "options": WALK_OPTIONS}, -32004, NOT_FOUND)


# ---------------------------------------------------------------------------------------------
# the handle API: fs/open, fs/readBlock, fs/writeBlock, fs/close

BLOCK_LEN_READ = "file read block length must be between 1 and 1048576"
BLOCK_LEN_WRITE = "file write block length must be between 1 and 1048576"
BAD_FD = "Bad file descriptor (os error 9)"


async def open_ok(c: JsonWsClient, handle: str, path: Path, mode: str | None = None) -> None:
    params: dict[str, Any] = {"handleId": handle, "path": uri(path)}
    if mode is not None:
        params["mode"] = mode
    assert assert_result(await c.call("fs/open", params)) == {"handleId": handle}


async def read_block(c: JsonWsClient, handle: str, offset: int, length: int) -> tuple[bytes, bool]:
    res = assert_result(await c.call("fs/readBlock", {"handleId": handle, "offset": offset, "len": length}))
    assert list(res) == ["chunk", "eof"], res
    return unb64(res["chunk"]), res["eof"]


@case(30, "fs-handle-read")
async def c30(ctx: Ctx171) -> None:
    c = await ctx.conn()
    d = ctx.tmp
    (d / "a.txt").write_text("hello world\n")
    (d / "sub").mkdir()
    await fs_err(c, "fs/open", {"handleId": "h1"}, -32602, "missing field `path`")
    await fs_err(c, "fs/open", {"path": uri(d / "a.txt")}, -32602, "missing field `handleId`")
    await fs_err(c, "fs/open", {"handleId": 5, "path": uri(d / "a.txt")}, -32602, "invalid type: number, expected a string")
    await fs_err(c, "fs/open", {"handleId": "h1", "path": uri(d / "a.txt"), "mode": "x"}, -32602,
                 "unknown variant `x`, expected `read` or `replace`")
    await open_ok(c, "h1", d / "a.txt")  # mode defaults to read
    await fs_err(c, "fs/open", {"handleId": "h1", "path": uri(d / "a.txt"), "mode": "read"}, -32600,
                 "file handle `h1` already exists")
    for params, missing in [({}, "handleId"), ({"handleId": "h1"}, "offset"), ({"handleId": "h1", "offset": 0}, "len")]:
        await fs_err(c, "fs/readBlock", params, -32602, f"missing field `{missing}`")
    assert await read_block(c, "h1", 0, 5) == (b"hello", False)
    assert await read_block(c, "h1", 6, 100) == (b"world\n", True)
    assert await read_block(c, "h1", 12, 5) == (b"", True)
    assert await read_block(c, "h1", 100, 5) == (b"", True)
    for length in [0, 1048577]:
        await fs_err(c, "fs/readBlock", {"handleId": "h1", "offset": 0, "len": length}, -32600, BLOCK_LEN_READ)
    assert (await read_block(c, "h1", 0, 1048576)) == (b"hello world\n", True)
    await fs_err(c, "fs/writeBlock", {"handleId": "h1", "offset": 0, "chunk": b64("hi")}, -32603, BAD_FD)
    await fs_err(c, "fs/readBlock", {"handleId": "zz", "offset": 0, "len": 5}, -32004, "unknown file handle `zz`")
    # close is idempotent: an unknown or already closed handle is fine.
    for handle in ["h1", "h1", "zz"]:
        assert assert_result(await c.call("fs/close", {"handleId": handle})) == {}
    await fs_err(c, "fs/close", {}, -32602, "missing field `handleId`")
    await fs_err(c, "fs/readBlock", {"handleId": "h1", "offset": 0, "len": 5}, -32004, "unknown file handle `h1`")
    await open_ok(c, "", d / "a.txt", "read")  # an empty id is an id
    await fs_err(c, "fs/open", {"handleId": "r3", "path": uri(d / "nope"), "mode": "read"}, -32004, NOT_FOUND)
    await fs_err(c, "fs/open", {"handleId": "r4", "path": uri(d / "sub"), "mode": "read"}, -32600,
                 f"path `{d / 'sub'}` is not a file")
    await fs_err(c, "fs/open", {"handleId": "w4", "path": uri(d / "sub"), "mode": "replace"}, -32603,
                 "Is a directory (os error 21)")
    await fs_err(c, "fs/open", {"handleId": "w3", "path": uri(d / "nodir" / "x"), "mode": "replace"}, -32004, NOT_FOUND)


@case(31, "fs-handle-write")
async def c31(ctx: Ctx171) -> None:
    c = await ctx.conn()
    d = ctx.tmp
    (d / "a.txt").write_text("hello world\n")
    await open_ok(c, "w1", d / "new.txt", "replace")
    assert (d / "new.txt").read_bytes() == b""  # created at open
    for params, missing in [({}, "handleId"), ({"handleId": "w1"}, "offset"), ({"handleId": "w1", "offset": 0}, "chunk")]:
        await fs_err(c, "fs/writeBlock", params, -32602, f"missing field `{missing}`")
    for offset in [0, 2, 10]:
        assert assert_result(await c.call("fs/writeBlock", {"handleId": "w1", "offset": offset, "chunk": b64("hi")})) == {}
    await fs_err(c, "fs/writeBlock", {"handleId": "w1", "offset": 4, "chunk": ""}, -32600, BLOCK_LEN_WRITE)
    await fs_err(c, "fs/writeBlock", {"handleId": "w1", "offset": 4, "chunk": "!!"}, -32602, "Invalid symbol 33, offset 0.")
    await fs_err(c, "fs/readBlock", {"handleId": "w1", "offset": 0, "len": 5}, -32603, BAD_FD)
    # Writes land in place (a gap reads as zeros) before and after close.
    assert (d / "new.txt").read_bytes() == b"hihi" + b"\0" * 6 + b"hi"
    assert assert_result(await c.call("fs/close", {"handleId": "w1"})) == {}
    assert (d / "new.txt").read_bytes() == b"hihi" + b"\0" * 6 + b"hi"
    await fs_err(c, "fs/writeBlock", {"handleId": "w1", "offset": 0, "chunk": b64("x")}, -32004, "unknown file handle `w1`")
    # replace truncates the existing file at open; a reader of the same file sees it.
    await open_ok(c, "r1", d / "a.txt", "read")
    await open_ok(c, "w2", d / "a.txt", "replace")
    assert (d / "a.txt").read_bytes() == b""
    assert await read_block(c, "r1", 0, 100) == (b"", True)
    assert assert_result(await c.call("fs/writeBlock", {"handleId": "w2", "offset": 0, "chunk": b64("xx")})) == {}
    assert await read_block(c, "r1", 0, 100) == (b"xx", True)


@case(32, "fs-handle-limit")
async def c32(ctx: Ctx171) -> None:
    c = await ctx.conn()
    (ctx.tmp / "a.txt").write_text("x")
    for i in range(128):
        await open_ok(c, f"L{i}", ctx.tmp / "a.txt")
    await fs_err(c, "fs/open", {"handleId": "L128", "path": uri(ctx.tmp / "a.txt")}, -32600,
                 "at most 128 file handles may be open per connection")
    assert assert_result(await c.call("fs/close", {"handleId": "L0"})) == {}
    await open_ok(c, "L128", ctx.tmp / "a.txt")
    # The table is per connection: another one has all 128 slots and its own ids.
    other = await ctx.conn()
    await fs_err(other, "fs/readBlock", {"handleId": "L1", "offset": 0, "len": 1}, -32004, "unknown file handle `L1`")
    await open_ok(other, "L1", ctx.tmp / "a.txt")


@case(33, "fs-handles-die-with-connection")
async def c33(ctx: Ctx171) -> None:
    (ctx.tmp / "a.txt").write_text("abc")
    c = await ctx.conn()
    sid = c.session_id
    await open_ok(c, "h", ctx.tmp / "a.txt")
    await open_ok(c, "w", ctx.tmp / "w.txt", "replace")
    assert assert_result(await c.call("fs/writeBlock", {"handleId": "w", "offset": 0, "chunk": b64("xx")})) == {}
    await c.close()
    assert (ctx.tmp / "w.txt").read_bytes() == b"xx"
    # Even the resumed session has no handles: they belonged to the connection.
    resumed = await ctx.conn(init=False)
    assert (await resumed.initialize("t", resume=sid)) == sid
    await fs_err(resumed, "fs/readBlock", {"handleId": "h", "offset": 0, "len": 1}, -32004, "unknown file handle `h`")
    await open_ok(resumed, "w", ctx.tmp / "w.txt", "replace")


# ---------------------------------------------------------------------------------------------
# fs/watchMissing and fs/missingChanged

def missing_changed(watch_id: int) -> dict[str, Any]:
    return {"method": "fs/missingChanged", "params": {"watchId": watch_id}}


async def watch(c: JsonWsClient, watch_id: int, paths: list[str], watching: bool) -> None:
    res = assert_result(await c.call("fs/watchMissing", {"watchId": watch_id, "missing": paths}))
    assert res == {"watching": watching}, (watch_id, paths, res)


async def expect_notification(c: JsonWsClient, expected: dict[str, Any], timeout: float = 5.0) -> None:
    msg = await c.recv(timeout)
    assert msg == expected, msg


@case(40, "watch-missing-params")
async def c40(ctx: Ctx171) -> None:
    c = await ctx.conn()
    m = "fs/watchMissing"
    await fs_err(c, m, {"watchId": "a", "missing": []}, -32602, 'invalid type: string "a", expected u64')
    await fs_err(c, m, {"watchId": 1}, -32602, "missing field `missing`")
    await fs_err(c, m, {"watchId": 1, "paths": [uri(ctx.tmp / "x")]}, -32602, "missing field `missing`")
    await fs_err(c, m, {"missing": []}, -32602, "missing field `watchId`")
    await fs_err(c, m, {"watchId": 1, "missing": "x"}, -32602, 'invalid type: string "x", expected a sequence')
    await fs_err(c, m, {"watchId": 1, "missing": [{"path": uri(ctx.tmp)}]}, -32602, "invalid type: map, expected a string")
    await fs_err(c, m, {"watchId": 18446744073709551616, "missing": []}, -32602, "invalid number")
    await watch(c, 18446744073709551615, [uri(ctx.tmp / "m")], True)


@case(41, "watch-missing-fires-once")
async def c41(ctx: Ctx171) -> None:
    c = await ctx.conn()
    d = ctx.tmp
    (d / "exists").write_text("x")
    # Nothing to wait for when the list is empty or a path already exists.
    await watch(c, 1, [], False)
    await watch(c, 2, [uri(d / "exists")], False)
    await watch(c, 3, [uri(d / "exists"), uri(d / "m0")], False)
    await watch(c, 5, [uri(d / "m1"), uri(d / "x y" / "ü")], True)
    (d / "m1").write_text("x")
    await expect_notification(c, missing_changed(5))
    (d / "x y").mkdir()
    (d / "x y" / "ü").write_text("x")
    await c.expect_silence(0.8)  # one notification per watch
    await watch(c, 6, [uri(d / "newdir")], True)
    (d / "newdir").mkdir()
    await expect_notification(c, missing_changed(6))


@case(42, "watch-missing-replaced")
async def c42(ctx: Ctx171) -> None:
    d = ctx.tmp
    c = await ctx.conn()
    await watch(c, 5, [uri(d / "m1")], True)
    # A lower or equal id is stale: refused, and the current watch stays.
    await watch(c, 3, [uri(d / "m2")], False)
    await watch(c, 5, [uri(d / "m2")], False)
    (d / "m2").write_text("x")
    await c.expect_silence(0.8)
    # A higher id replaces the watch.
    await watch(c, 6, [uri(d / "m3")], True)
    (d / "m1").write_text("x")
    await c.expect_silence(0.8)
    (d / "m3").write_text("x")
    await expect_notification(c, missing_changed(6))
    # ... even when it answers watching:false.
    await watch(c, 7, [uri(d / "m4")], True)
    await watch(c, 8, ["file://host/x"], False)
    (d / "m4").write_text("x")
    await c.expect_silence(0.8)
    # One watch per connection: each connection is notified for its own.
    other = await ctx.conn()
    await watch(other, 1, [uri(d / "m5")], True)
    await watch(c, 9, [uri(d / "m5")], True)
    (d / "m5").write_text("x")
    await expect_notification(other, missing_changed(1))
    await expect_notification(c, missing_changed(9))


# ---------------------------------------------------------------------------------------------
# processes

@case(50, "process-start-metadata")
async def c50(ctx: Ctx171) -> None:
    c = await ctx.conn()
    argv = ["/bin/sh", "-c", "printf 'out1\\n'; printf 'err1\\n' >&2; exit 3"]
    for n, meta in enumerate([{}, None, {"threadId": THREAD_ID, "toolCallId": "call_1"},
                              {"threadId": "urn:uuid:" + THREAD_ID}, {"threadId": "{" + THREAD_ID + "}"},
                              {"threadId": THREAD_ID.replace("-", "").upper(), "unknown": 1}]):
        events = await run_to_close(c, pstart(f"m{n}", argv, ctx.tmp, metadata=meta))
        # seq 1..4, closed last; exited may overtake the last output (the pipes race the wait).
        assert [e["params"]["seq"] for e in events] == [1, 2, 3, 4], events
        assert sorted(e["method"] for e in events[:3]) == ["process/exited", "process/output", "process/output"]
        assert events[3]["method"] == "process/closed", events
        assert output_bytes(events, "stdout") == b"out1\n" and output_bytes(events, "stderr") == b"err1\n"
        ev = exited(events)
        assert list(ev) == ["processId", "seq", "exitCode", "sandboxDenied"], ev
        assert ev == {"processId": f"m{n}", "seq": ev["seq"], "exitCode": 3, "sandboxDenied": False}
        out = [e["params"] for e in events if e["method"] == "process/output"]
        assert all(list(p) == ["processId", "seq", "stream", "chunk"] for p in out), out
    urn = "an optional prefix of `urn:uuid:` followed by [0-9a-fA-F-]"
    for tid, message in [("abc", "invalid length: expected length 32 for simple format, found 3"),
                         ("", "invalid length: expected length 32 for simple format, found 0"),
                         ("z" + THREAD_ID[1:], f"invalid character: expected {urn}, found `z` at 1"),
                         (THREAD_ID[:-1] + "g", f"invalid character: expected {urn}, found `g` at 36"),
                         (THREAD_ID + "1", "invalid group length in group 4: expected 12, found 13"),
                         (5, "invalid type: number, expected a string")]:
        await fs_err(c, "process/start", pstart("bad", ["true"], ctx.tmp, metadata={"threadId": tid}), -32602, message)
    await fs_err(c, "process/start", pstart("bad", ["true"], ctx.tmp, metadata={"toolCallId": 5}), -32602,
                 "invalid type: number, expected a string")


@case(51, "process-start-sandbox-fields")
async def c51(ctx: Ctx171) -> None:
    c = await ctx.conn()
    await start_ok(c, pstart("s1", ["true"], ctx.tmp, sandbox=None))
    await start_ok(c, pstart("s2", ["true"], ctx.tmp, enforceManagedNetwork=False, managedNetwork=None))
    await fs_err(c, "process/start", pstart("x", ["true"], ctx.tmp, sandbox={}), -32602, "missing field `permissions`")
    await fs_err(c, "process/start", pstart("x", ["true"], ctx.tmp, sandbox="none"), -32602,
                 'invalid type: string "none", expected struct WireFileSystemSandboxContext')
    await fs_err(c, "process/start", pstart("x", ["true"], ctx.tmp, enforceManagedNetwork="x"), -32602,
                 'invalid type: string "x", expected a boolean')
    await fs_err(c, "process/start", pstart("x", [], ctx.tmp), -32602, "argv must not be empty")
    await fs_err(c, "process/start", pstart("s1", ["true"], ctx.tmp), -32600, "process s1 already exists")
    await c.wait_process_closed("s1")
    await c.wait_process_closed("s2")


@case(52, "process-read")
async def c52(ctx: Ctx171) -> None:
    c = await ctx.conn()
    await run_to_close(c, pstart("r", ["/bin/sh", "-c", "echo hi"], ctx.tmp))
    tail = {"nextSeq": 4, "exited": True, "exitCode": 0, "closed": True, "failure": None, "sandboxDenied": False}
    res = assert_result(await c.call("process/read", {"processId": "r"}))
    # the output is seq 1, or seq 2 when the exit was recorded first (the real binary does both;
    # see c50 and FINDINGS.md)
    seq = res["chunks"][0]["seq"] if res.get("chunks") else None
    assert seq in (1, 2), res
    assert res == {"chunks": [{"seq": seq, "stream": "stdout", "chunk": b64("hi\n")}], **tail}, res
    assert list(res) == ["chunks", *tail] and list(res["chunks"][0]) == ["seq", "stream", "chunk"], res
    res = assert_result(await c.call("process/read", {"processId": "r", "afterSeq": seq, "maxBytes": 1, "waitMs": 0}))
    assert res == {"chunks": [], **tail}, res
    await fs_err(c, "process/read", {"processId": "nope"}, -32600, "unknown process id nope")


@case(53, "process-write-id")
async def c53(ctx: Ctx171) -> None:
    c = await ctx.conn()
    await start_ok(c, pstart("cat", ["cat"], ctx.tmp, pipeStdin=True))

    async def write(pid: str, data: str, write_id: Any) -> dict[str, Any]:
        return await c.call("process/write", {"processId": pid, "chunk": b64(data), "writeId": write_id})

    # writeId is required, even for an unknown process.
    for pid in ["cat", "nope"]:
        await fs_err(c, "process/write", {"processId": pid, "chunk": b64("x")}, -32602, "missing field `writeId`")
    assert assert_result(await write("nope", "x", "w1")) == {"status": "unknownProcess"}
    assert_error(await write("cat", "x", 7), -32602, "invalid type: number, expected a string")
    assert_error(await write("cat", "x", ""), -32602, "writeId must not be empty")
    await fs_err(c, "process/write", {"processId": "cat", "chunk": "!!", "writeId": "w9"}, -32602,
                 "Invalid symbol 33, offset 0.")
    # A repeated id is accepted and not delivered again.
    for data, write_id in [("a\n", "w1"), ("b\n", "w1"), ("c\n", "w2"), ("d\n", "w1")]:
        assert assert_result(await write("cat", data, write_id)) == {"status": "accepted"}
    await c.collect(lambda _: output_bytes(c.process_events("cat")) == b"a\nc\n", 5)
    await c.expect_silence(0.5)
    assert output_bytes(c.process_events("cat")) == b"a\nc\n"
    await start_ok(c, pstart("nopipe", ["sleep", "30"], ctx.tmp))
    assert assert_result(await write("nopipe", "x", "x1")) == {"status": "stdinClosed"}
    for pid in ["cat", "nopipe"]:
        assert assert_result(await c.call("process/terminate", {"processId": pid})) == {"running": True}
        assert exited(await c.wait_process_closed(pid))["exitCode"] == 137


@case(54, "process-signal-interrupt")
async def c54(ctx: Ctx171) -> None:
    c = await ctx.conn()
    await start_ok(c, pstart("i", ["sleep", "30"], ctx.tmp))
    await fs_err(c, "process/signal", {"processId": "i"}, -32602, "missing field `signal`")
    await fs_err(c, "process/signal", {"processId": "i", "signal": "SIGTERM"}, -32602,
                 "unknown variant `SIGTERM`, expected `interrupt`")
    await asyncio.sleep(0.2)
    assert assert_result(await c.call("process/signal", {"processId": "i", "signal": "interrupt"})) == {}
    assert exited(await c.wait_process_closed("i"))["exitCode"] == 130
    # Exited and unknown processes answer {} too.
    for pid in ["i", "nope"]:
        assert assert_result(await c.call("process/signal", {"processId": pid, "signal": "interrupt"})) == {}
    await start_ok(c, pstart("t", ["sleep", "30"], ctx.tmp, tty=True))
    await asyncio.sleep(0.2)
    assert assert_result(await c.call("process/signal", {"processId": "t", "signal": "interrupt"})) == {}
    assert exited(await c.wait_process_closed("t"))["exitCode"] == 1


@case(55, "process-exit-codes")
async def c55(ctx: Ctx171) -> None:
    c = await ctx.conn()
    await start_ok(c, pstart("k", ["sleep", "30"], ctx.tmp))
    await start_ok(c, pstart("kt", ["sleep", "30"], ctx.tmp, tty=True))
    for pid in ["k", "kt"]:
        assert assert_result(await c.call("process/terminate", {"processId": pid})) == {"running": True}
    assert exited(await c.wait_process_closed("k"))["exitCode"] == 137
    assert exited(await c.wait_process_closed("kt"))["exitCode"] == 1
    for pid in ["k", "nope"]:
        assert assert_result(await c.call("process/terminate", {"processId": pid})) == {"running": False}
    # A non-tty process killed by signal N reports 128+N; a tty process reports 1 (its own exit code stays).
    for pid, script, tty, code in [("st", "kill -TERM $$", False, 143), ("sk", "kill -KILL $$", False, 137),
                                   ("stt", "kill -TERM $$", True, 1), ("ex", "exit 7", True, 7)]:
        events = await run_to_close(c, pstart(pid, ["/bin/sh", "-c", script], ctx.tmp, tty=tty))
        assert exited(events)["exitCode"] == code, (pid, events)


@case(56, "process-spawn-errors")
async def c56(ctx: Ctx171) -> None:
    c = await ctx.conn()
    (ctx.tmp / "file").write_text("x")

    async def spawn_error(params: dict[str, Any], kind: str, message: str) -> None:
        resp = await c.call("process/start", params)
        assert set(resp) == {"error", "id"}, resp
        assert resp["error"] == {"code": -32603, "data": {"kind": kind}, "message": message}, resp
        assert list(resp["error"]) == ["code", "data", "message"], resp

    await spawn_error(pstart("a", ["/nonexistent/x"], ctx.tmp), "spawnNotFound", NOT_FOUND)
    await spawn_error(pstart("b", ["definitely-not-a-command-171"], ctx.tmp), "spawnNotFound", NOT_FOUND)
    await spawn_error(pstart("c", [str(ctx.tmp)], ctx.tmp), "spawnPermissionDenied", "Permission denied (os error 13)")
    await spawn_error(pstart("d", ["true"], ctx.tmp / "nope"), "spawnNotFound", NOT_FOUND)
    await spawn_error(pstart("e", ["true"], ctx.tmp / "file"), "spawnFailed", "Not a directory (os error 20)")
    # A failed spawn leaves no process behind.
    await fs_err(c, "process/read", {"processId": "a"}, -32600, "unknown process id a")


# ---------------------------------------------------------------------------------------------
# sessions

@case(60, "resume-while-attached")
async def c60(ctx: Ctx171) -> None:
    c = await ctx.conn()
    sid = c.session_id
    other = await ctx.conn(init=False)
    assert_error(await other.call("initialize", {"clientName": "t", "resumeSessionId": sid}), -32010,
                 f"session {sid} is already attached to another connection")
    assert_error(await other.call("initialize", {"clientName": "t", "resumeSessionId": THREAD_ID}), -32600,
                 f"unknown session id {THREAD_ID}")
    assert_error(await other.call("initialize", {"clientName": "t", "resumeSessionId": "x"}), -32600,
                 "unknown session id x")
    # After refused resumes the same connection can still start a fresh session, once.
    fresh = assert_result(await other.call("initialize", {"clientName": "t"}))
    assert UUID_RE.match(fresh["sessionId"]) and fresh["sessionId"] != sid, fresh
    assert_error(await other.call("initialize", {"clientName": "t"}), -32600,
                 "initialize may only be sent once per connection")


@case(61, "resume-after-12s-detach", timeout=40)
async def c61(ctx: Ctx171) -> None:
    # 0.131.0 expired a detached session after 10 s; 0.171.0 keeps it for more than a minute.
    c = await ctx.conn()
    sid = c.session_id
    await start_ok(c, pstart("bg", ["/bin/sh", "-c", "sleep 1; echo late"], ctx.tmp))
    await watch(c, 4, [uri(ctx.tmp / "never")], True)
    await c.close()
    detached = time.monotonic()
    await asyncio.sleep(12.0)
    resumed = await ctx.conn(init=False)
    assert (await resumed.initialize("t", resume=sid)) == sid
    assert time.monotonic() - detached >= 12.0
    res = assert_result(await resumed.call("process/read", {"processId": "bg"}))
    assert res == {"chunks": [{"seq": 1, "stream": "stdout", "chunk": b64("late\n")}], "nextSeq": 4, "exited": True,
                   "exitCode": 0, "closed": True, "failure": None, "sandboxDenied": False}, res
    await fs_err(resumed, "process/start", pstart("bg", ["true"], ctx.tmp), -32600, "process bg already exists")
    # The watch belonged to the old connection: the new one starts from any id.
    await watch(resumed, 1, [uri(ctx.tmp / "never")], True)
