"""The fs/getMetadata kernel: Cython and pure twins give identical results and errors."""
from __future__ import annotations

import errno
import os

import pytest


@pytest.fixture(scope="module")
def mod(twin):
    """Each twin in turn (the suite-wide ``twin`` fixture, tests/conftest.py)."""
    return twin("fsmeta")


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "f").write_bytes(b"x")
    (tmp_path / "d").mkdir()
    (tmp_path / "lf").symlink_to(tmp_path / "f")
    (tmp_path / "ld").symlink_to(tmp_path / "d")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    os.utime(tmp_path / "f", ns=(0, 1_700_000_000_123_456_789))
    os.utime(tmp_path / "d", ns=(0, -1_500_000_000))  # before the epoch: floor division
    return tmp_path


def test_results(mod, tree) -> None:
    assert mod.metadata(str(tree / "f")) == {"isDirectory": False, "isFile": True, "isSymlink": False,
                                              "createdAtMs": 0, "modifiedAtMs": 1_700_000_000_123}
    assert mod.metadata(str(tree / "d"))["modifiedAtMs"] == -1500
    assert mod.metadata(str(tree / "lf"))["isSymlink"] is True
    r = mod.metadata(str(tree / "ld"))
    assert r["isDirectory"] and r["isSymlink"] and not r["isFile"]
    assert list(r) == ["isDirectory", "isFile", "isSymlink", "createdAtMs", "modifiedAtMs"]


def test_errors(mod, tree) -> None:
    for name in ("dangling", "missing"):
        with pytest.raises(OSError) as info:
            mod.metadata(str(tree / name))
        assert info.value.errno == errno.ENOENT
    with pytest.raises(OSError) as info:
        mod.metadata(str(tree / "f" / "x"))
    assert info.value.errno == errno.ENOTDIR
    with pytest.raises(ValueError):
        mod.metadata(str(tree) + "/a\0b")


def test_twins_agree(twin_pair, tree) -> None:
    FAST, PURE = twin_pair("fsmeta")
    names = ["f", "d", "lf", "ld", "d/", "d/../f"]
    undecodable = os.fsdecode(b"caf\xe9")  # not UTF-8: surrogateescape round trip
    with open(os.path.join(os.fsencode(str(tree)), b"caf\xe9"), "wb"):
        pass
    names.append(undecodable)
    for name in names:
        p = os.path.join(str(tree), name)
        assert FAST.metadata(p) == PURE.metadata(p), name
        assert FAST.metadata_171(p) == PURE.metadata_171(p), name
        assert list(FAST.metadata_171(p)) == list(PURE.metadata_171(p)), name  # key order is on the wire
    for mod in (FAST, PURE):
        with pytest.raises(FileNotFoundError):
            mod.metadata_171(str(tree / "missing"))
        with pytest.raises(ValueError):
            mod.metadata_171(str(tree) + "/a\0b")


async def test_get_metadata_fast_matches_the_handler(twin, tree) -> None:
    """``get_metadata_fast`` answers only what the full handler answers the same way (or None),
    in every ``--compat`` and remembered dialect, for both twins."""
    from execrelay.executor import fs
    from execrelay.executor.connection import RpcConnection
    from execrelay.executor.server import ExecServer, ExecServerConfig

    fast = twin("fsmeta").get_metadata_fast
    paths = [str(tree / "f"), str(tree / "ld"), str(tree / "d") + "/", str(tree / "d/../f"), "/",
             str(tree / "missing"), str(tree) + "/a\0b", "relative", "file://" + str(tree / "f"),
             "file://" + str(tree / "lf"), "file://" + str(tree / "no%20pe"), "file://host/x", 7]
    answered = 0
    for compat in ("auto", "0.131", "0.171"):
        for dialect in (None, "0.131", "0.171"):
            server = ExecServer(ExecServerConfig(compat=compat))
            conn = RpcConnection(server, lambda data: None)
            assert fast(conn, {"path": paths[0], "sandbox": None}) is None  # not initialized
            conn.feed(b'{"id":0,"method":"initialize","params":{"clientName":"t"}}')
            conn.feed(b'{"method":"initialized","params":{}}')
            for path in paths:
                for params in ({"path": path, "sandbox": None}, {"path": path}, [path],
                               {"path": path, "sandbox": {"mode": "x"}}):
                    assert conn.session is not None
                    conn.session.dialect = dialect
                    got = fast(conn, params)
                    if got is None:
                        continue
                    answered += 1
                    assert conn.session.dialect == dialect  # the fast path never changes it
                    want = fs.get_metadata_full(conn, params)
                    assert got == want and list(got) == list(want), (compat, dialect, params)
    assert answered >= 12  # the common cases were answered fast
