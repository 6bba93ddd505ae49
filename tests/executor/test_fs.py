"""fs/* methods: results, error codes and texts, sandbox profiles."""
from __future__ import annotations

import base64
import os

import pytest

from .conftest import Client, b64

pytestmark = pytest.mark.timeout(30)
ENOENT = (-32004, "No such file or directory (os error 2)")


async def test_write_read_round_trip_binary(client: Client, tmp_path) -> None:
    data = bytes(range(256)) * 3
    p = str(tmp_path / "f.bin")
    assert await client.result("fs/writeFile", {"path": p, "dataBase64": b64(data), "sandbox": None}) == {}
    res = await client.result("fs/readFile", {"path": p})
    assert base64.b64decode(res["dataBase64"]) == data


async def test_large_file_goes_through_thread(client: Client, tmp_path) -> None:
    data = os.urandom(3 * 1024 * 1024)
    p = str(tmp_path / "big.bin")
    assert await client.result("fs/writeFile", {"path": p, "dataBase64": b64(data)}) == {}
    res = await client.result("fs/readFile", {"path": p})
    assert base64.b64decode(res["dataBase64"]) == data


async def test_write_errors(client: Client, tmp_path) -> None:
    assert await client.error("fs/writeFile", {"path": str(tmp_path / "no" / "f"), "dataBase64": ""}) == ENOENT
    assert await client.error("fs/writeFile", {"path": str(tmp_path), "dataBase64": ""}) == (
        -32603, "Is a directory (os error 21)")
    assert await client.error("fs/writeFile", {"path": str(tmp_path / "x"), "dataBase64": "***"}) == (
        -32600, "fs/writeFile requires valid base64 dataBase64: Invalid symbol 42, offset 0.")


async def test_read_errors(client: Client, tmp_path) -> None:
    assert await client.error("fs/readFile", {"path": str(tmp_path / "missing")}) == ENOENT
    assert await client.error("fs/readFile", {"path": str(tmp_path)}) == (-32603, "Is a directory (os error 21)")
    big = tmp_path / "sparse"
    with open(big, "wb") as f:
        f.truncate(512 * 1024 * 1024 + 1)
    assert await client.error("fs/readFile", {"path": str(big)}) == (
        -32600, "file is too large to read: limit is 536870912 bytes")


@pytest.mark.parametrize("path", ["tmp", "", "~/x", "file:///tmp"])
async def test_relative_paths_refused(client: Client, path) -> None:
    for method in ("fs/getMetadata", "fs/readFile", "fs/readDirectory", "fs/remove", "fs/createDirectory"):
        assert await client.error(method, {"path": path}) == (
            -32602, "AbsolutePathBuf deserialized without a base path")


async def test_wrong_types(client: Client) -> None:
    assert await client.error("fs/getMetadata", {"path": 5}) == (-32602, "invalid type: integer `5`, expected a string")
    assert await client.error("fs/getMetadata", {}) == (-32602, "missing field `path`")
    assert await client.error("fs/remove", {"path": "/tmp/x", "force": "yes"}) == (
        -32602, 'invalid type: string "yes", expected a boolean')


async def test_paths_normalised(client: Client, tmp_path) -> None:
    (tmp_path / "f").write_bytes(b"hi")
    p = f"{tmp_path}/./sub/../f/"
    assert base64.b64decode((await client.result("fs/readFile", {"path": p}))["dataBase64"]) == b"hi"


async def test_create_directory(client: Client, tmp_path) -> None:
    p = str(tmp_path / "a" / "b" / "c")
    assert await client.result("fs/createDirectory", {"path": p}) == {}
    assert await client.result("fs/createDirectory", {"path": p, "recursive": None}) == {}
    assert await client.error("fs/createDirectory", {"path": p, "recursive": False}) == (
        -32603, "File exists (os error 17)")
    assert await client.error("fs/createDirectory", {"path": str(tmp_path / "m" / "n"), "recursive": False}) == ENOENT
    (tmp_path / "file").write_text("x")
    assert await client.error("fs/createDirectory", {"path": str(tmp_path / "file")}) == (
        -32603, "File exists (os error 17)")


async def test_get_metadata(client: Client, tmp_path) -> None:
    f = tmp_path / "f"
    f.write_text("x")
    (tmp_path / "d").mkdir()
    (tmp_path / "lf").symlink_to(f)
    (tmp_path / "ld").symlink_to(tmp_path / "d")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    res = await client.result("fs/getMetadata", {"path": str(f)})
    assert list(res) == ["isDirectory", "isFile", "isSymlink", "createdAtMs", "modifiedAtMs"]
    assert res["isFile"] and not res["isDirectory"] and not res["isSymlink"]
    assert abs(res["modifiedAtMs"] - os.stat(f).st_mtime_ns // 1_000_000) <= 1
    assert (await client.result("fs/getMetadata", {"path": str(tmp_path / "lf")}))["isSymlink"] is True
    r = await client.result("fs/getMetadata", {"path": str(tmp_path / "ld")})
    assert r["isDirectory"] and r["isSymlink"]
    assert await client.error("fs/getMetadata", {"path": str(tmp_path / "dangling")}) == ENOENT
    assert await client.error("fs/getMetadata", {"path": str(tmp_path / "missing")}) == ENOENT


async def test_read_directory(client: Client, tmp_path) -> None:
    (tmp_path / "f").write_text("x")
    (tmp_path / "d").mkdir()
    (tmp_path / "ld").symlink_to(tmp_path / "d")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    os.mkfifo(tmp_path / "fifo")
    res = await client.result("fs/readDirectory", {"path": str(tmp_path)})
    got = {e["fileName"]: (e["isDirectory"], e["isFile"]) for e in res["entries"]}
    assert got == {"f": (False, True), "d": (True, False), "ld": (True, False), "fifo": (False, False)}
    assert await client.error("fs/readDirectory", {"path": str(tmp_path / "f")}) == (
        -32603, "Not a directory (os error 20)")
    assert await client.error("fs/readDirectory", {"path": str(tmp_path / "missing")}) == ENOENT


async def test_remove(client: Client, tmp_path) -> None:
    missing = str(tmp_path / "missing")
    assert await client.result("fs/remove", {"path": missing}) == {}
    assert await client.error("fs/remove", {"path": missing, "force": False}) == ENOENT
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "f").write_text("x")
    assert await client.error("fs/remove", {"path": str(d), "recursive": False}) == (
        -32603, "Directory not empty (os error 39)")
    assert await client.result("fs/remove", {"path": str(d)}) == {}
    assert not d.exists()
    target = tmp_path / "t"
    target.write_text("keep")
    (tmp_path / "l").symlink_to(target)
    assert await client.result("fs/remove", {"path": str(tmp_path / "l")}) == {}
    assert target.read_text() == "keep"


async def test_copy(client: Client, tmp_path) -> None:
    (tmp_path / "f").write_text("hello")
    assert await client.result("fs/copy", {"sourcePath": str(tmp_path / "f"), "destinationPath": str(tmp_path / "g"),
                                           "recursive": False}) == {}
    assert (tmp_path / "g").read_text() == "hello"
    src = tmp_path / "tree"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "a").write_text("a")
    (src / "link").symlink_to("sub/a")
    os.mkfifo(src / "fifo")
    assert await client.error("fs/copy", {"sourcePath": str(src), "destinationPath": str(tmp_path / "t2"),
                                          "recursive": False}) == (
        -32600, "fs/copy requires recursive: true when sourcePath is a directory")
    assert await client.error("fs/copy", {"sourcePath": str(src), "destinationPath": str(src / "sub" / "in"),
                                          "recursive": True}) == (
        -32600, "fs/copy cannot copy a directory to itself or one of its descendants")
    assert await client.error("fs/copy", {"sourcePath": str(src), "destinationPath": str(tmp_path / "t2")}) == (
        -32602, "missing field `recursive`")
    assert await client.result("fs/copy", {"sourcePath": str(src), "destinationPath": str(tmp_path / "t2"),
                                           "recursive": True}) == {}
    assert (tmp_path / "t2" / "sub" / "a").read_text() == "a"
    assert os.readlink(tmp_path / "t2" / "link") == "sub/a"
    assert not (tmp_path / "t2" / "fifo").exists()
    assert await client.error("fs/copy", {"sourcePath": str(src / "fifo"), "destinationPath": str(tmp_path / "ff"),
                                          "recursive": False}) == (
        -32600, "fs/copy only supports regular files, directories, and symlinks")
    assert await client.error("fs/copy", {"sourcePath": str(tmp_path / "nope"), "destinationPath": str(tmp_path / "x"),
                                          "recursive": False}) == ENOENT
    assert await client.error("fs/copy", {"sourcePath": str(tmp_path / "f"), "destinationPath": str(src),
                                          "recursive": False}) == (-32603, "Is a directory (os error 21)")


async def test_sandbox_values(client: Client, tmp_path) -> None:
    p = str(tmp_path)
    assert await client.error("fs/getMetadata", {"path": p, "sandbox": {}}) == (-32602, "missing field `permissions`")
    for perms in ({"type": "disabled"}, {"type": "external", "network": "restricted"},
                  {"type": "managed", "file_system": {"type": "unrestricted"}, "network": "restricted"}):
        sb = {"permissions": perms, "windowsSandboxLevel": "disabled"}
        assert "isDirectory" in await client.result("fs/getMetadata", {"path": p, "sandbox": sb})
    bad = {"permissions": {"type": "bogus"}, "windowsSandboxLevel": "disabled"}
    assert (await client.error("fs/getMetadata", {"path": p, "sandbox": bad}))[0] == -32602


async def test_sandbox_restricted_roots(client: Client, tmp_path) -> None:
    ro = tmp_path / "ro"
    rw = tmp_path / "rw"
    out = tmp_path / "out"
    for d in (ro, rw, out):
        d.mkdir()
    (ro / "f").write_text("r")
    (out / "secret").write_text("s")
    (rw / "escape").symlink_to(out / "secret")

    def sb(*entries):
        return {"permissions": {"type": "managed", "network": "restricted", "file_system": {
            "type": "restricted", "entries": [{"path": {"type": "path", "path": str(p)}, "access": a}
                                               for p, a in entries]}}, "windowsSandboxLevel": "disabled"}

    s = sb((ro, "read"), (rw, "write"))
    assert base64.b64decode((await client.result("fs/readFile", {"path": str(ro / "f"), "sandbox": s}))["dataBase64"]) == b"r"
    assert await client.error("fs/writeFile", {"path": str(ro / "g"), "dataBase64": "", "sandbox": s}) == (
        -32603, "Read-only file system (os error 30)")
    assert await client.result("fs/writeFile", {"path": str(rw / "g"), "dataBase64": b64("w"), "sandbox": s}) == {}
    assert (await client.error("fs/readFile", {"path": str(out / "secret"), "sandbox": s}))[0] == -32004
    assert (await client.error("fs/readFile", {"path": str(rw / "escape"), "sandbox": s}))[0] == -32004
    assert (await client.error("fs/getMetadata", {"path": str(ro), "sandbox": sb()}))[0] == -32004


async def test_read_endless_device_stops_at_limit(client: Client, server) -> None:
    server.config.read_file_limit = 1024 * 1024  # /dev/zero never ends: bounded by the limit
    assert await client.error("fs/readFile", {"path": "/dev/zero"}, timeout=20) == (
        -32600, "file is too large to read: limit is 1048576 bytes")


@pytest.mark.parametrize("size", [0, 1, 2, 64 * 1024, 256 * 1024,  # inline (Encoded)
                                  256 * 1024 + 1, 3 << 18, (3 << 18) + 1, (3 << 19) + 2, 3 * 1024 * 1024 + 5])
@pytest.mark.parametrize("rid", [7, "r-\u00e9\"x"])
async def test_large_read_reply_bytes_are_orjson_compact(client: Client, tmp_path, size, rid) -> None:
    """Reads are encoded by concatenation (small: on the loop; large: in a worker thread, base64
    pieces of 768 KiB input): the bytes must equal orjson's compact encoding of the same
    response, key order included, for sizes around the inline limit and the piece boundaries,
    and for a string id that needs escaping."""
    import orjson

    data = os.urandom(size)
    p = tmp_path / "big.bin"
    p.write_bytes(data)
    client.send({"id": rid, "method": "fs/readFile", "params": {"path": str(p)}})
    await client.response(rid, timeout=20)
    raw = next(r for r, m in zip(client.raw, client.messages) if m.get("id") == rid)
    assert raw == orjson.dumps({"id": rid, "result": {"dataBase64": base64.b64encode(data).decode()}})


async def test_large_read_errors_keep_the_connection(client: Client, server, tmp_path) -> None:
    """Errors raised in the worker (size limit) answer the request; later requests still work."""
    server.config.read_file_limit = 1024 * 1024
    assert await client.error("fs/readFile", {"path": "/dev/zero"}, timeout=20) == (
        -32600, "file is too large to read: limit is 1048576 bytes")
    (tmp_path / "f").write_bytes(b"ok")
    res = await client.result("fs/readFile", {"path": str(tmp_path / "f")})
    assert base64.b64decode(res["dataBase64"]) == b"ok"


@pytest.mark.parametrize("size", [10, 400 * 1024])  # inline and worker-thread decoding
async def test_write_error_order_same_inline_and_large(client: Client, tmp_path, size) -> None:
    """Large writes decode in a worker thread: the errors (bad base64 before the sandbox,
    sandbox before the write) and their texts must be the inline ones."""
    ro = tmp_path / "ro"
    ro.mkdir()
    s = {"permissions": {"type": "managed", "network": "restricted", "file_system": {
        "type": "restricted", "entries": [{"path": {"type": "path", "path": str(ro)}, "access": "read"}]}},
        "windowsSandboxLevel": "disabled"}
    good = b64(os.urandom(size))
    bad = good[:-8] + "*" + good[-7:]
    assert await client.error("fs/writeFile", {"path": str(ro / "x"), "dataBase64": bad, "sandbox": s}) == (
        -32600, f"fs/writeFile requires valid base64 dataBase64: Invalid symbol 42, offset {len(good) - 8}.")
    assert await client.error("fs/writeFile", {"path": str(ro / "x"), "dataBase64": good, "sandbox": s}) == (
        -32603, "Read-only file system (os error 30)")
    assert await client.error("fs/writeFile", {"path": str(tmp_path / "no" / "x"), "dataBase64": good}) == ENOENT
    assert await client.result("fs/writeFile", {"path": str(tmp_path / "x"), "dataBase64": good}) == {}
    assert (tmp_path / "x").read_bytes() == base64.b64decode(good)


async def test_close_before_a_large_read_runs_leaks_no_fd(server, tmp_path) -> None:
    """The connection closes in the same loop turn as a large read request: the read (which
    owns the fd opened on the loop) still runs in the worker and closes its fd."""
    import asyncio

    big = tmp_path / "big"
    big.write_bytes(b"x" * (1 << 20))
    fds = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        c = Client(server)
        await c.handshake()
        c.send({"id": 1, "method": "fs/readFile", "params": {"path": str(big)}})
        c.conn.close()
    for _ in range(200):
        if len(os.listdir("/proc/self/fd")) <= fds:
            break
        await asyncio.sleep(0.01)
    assert len(os.listdir("/proc/self/fd")) <= fds
