"""fs_watch: the 0.171.0 watchMissing rules (replacement by higher id, one-shot notification)."""
from __future__ import annotations

import asyncio

import pytest

from execrelay.executor import fs_watch


class Sink:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict]] = []
        self.event = asyncio.Event()

    def __call__(self, method: str, params: dict) -> None:
        self.sent.append((method, params))
        self.event.set()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


def test_fires_once_when_a_path_appears(tmp_path) -> None:
    async def body():
        sink = Sink()
        w = fs_watch.MissingWatch(sink, interval=0.01)
        assert w.watch(1, [str(tmp_path / "x"), str(tmp_path / "d" / "y")]) == {"watching": True}
        await asyncio.sleep(0.05)
        assert sink.sent == []
        (tmp_path / "x").touch()
        await asyncio.wait_for(sink.event.wait(), 5)
        assert sink.sent == [("fs/missingChanged", {"watchId": 1})]
        (tmp_path / "d").mkdir()
        (tmp_path / "d" / "y").touch()
        await asyncio.sleep(0.05)
        assert len(sink.sent) == 1 and w.active_id is None
    run(body())


def test_replacement_rules(tmp_path) -> None:
    (tmp_path / "e").touch()

    async def body():
        sink = Sink()
        w = fs_watch.MissingWatch(sink, interval=0.01)
        m = lambda n: str(tmp_path / n)  # noqa: E731
        assert w.watch(5, [m("a")]) == {"watching": True}
        assert w.watch(3, [m("z")]) == {"watching": False}   # lower id: ignored
        assert w.watch(5, [m("z")]) == {"watching": False}   # same id: ignored
        assert w.active_id == 5
        assert w.watch(7, [m("a"), m("e")]) == {"watching": False}  # one exists: not watching...
        assert w.active_id is None                              # ...and watch 5 is gone
        (tmp_path / "a").touch()
        await asyncio.sleep(0.05)
        assert sink.sent == []
        assert w.watch(8, [m("b")]) == {"watching": True}
        assert w.watch(9, []) == {"watching": False}           # empty list cancels too
        (tmp_path / "b").touch()
        await asyncio.sleep(0.05)
        assert sink.sent == []
        assert w.watch(10, [m("e/x"), m("f")]) == {"watching": False}  # ENOTDIR: not watchable
        assert w.watch(11, [m("c")]) == {"watching": True}
        w.close()
        (tmp_path / "c").touch()
        await asyncio.sleep(0.05)
        assert sink.sent == []
    run(body())
