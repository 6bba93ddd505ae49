"""Issue 13, item 8 (harness part): the notification queue of a session is bounded; past the
bound the session ends with a clear reason (never a silent loss)."""
from __future__ import annotations

import asyncio

import orjson
import pytest

from execrelay.harness.errors import ConnectionLost
from execrelay.harness.session import ExecSession

pytestmark = pytest.mark.timeout(10)


async def test_overflowing_notification_queue_closes_the_session_with_a_reason() -> None:
    closed: list[str] = []
    session = ExecSession(lambda data: None, closed.append, "s", max_notifications=10)
    call = asyncio.ensure_future(session.call("process/read", {"processId": "p"}))
    await asyncio.sleep(0)
    for i in range(11):
        session.deliver(orjson.dumps({"method": "process/output", "params": {"seq": i}}))
    assert session.closed and "notification" in (session.closed_reason or "")
    assert closed == [session.closed_reason]          # the carrier was told (stream Reset)
    with pytest.raises(ConnectionLost):
        await call
    seen = [params["seq"] async for _, params in session.notifications()]
    assert seen == list(range(10))                    # everything queued is still readable
    with pytest.raises(ConnectionLost, match="notification"):
        await session.next_notification(1.0)


async def test_notification_bytes_are_bounded_too() -> None:
    session = ExecSession(lambda data: None, lambda reason: None, "s", max_notification_bytes=1000)
    session.deliver(orjson.dumps({"method": "x", "params": "a" * 600}))
    assert not session.closed
    assert (await session.next_notification(1.0))[0] == "x"   # reading frees the budget
    session.deliver(orjson.dumps({"method": "x", "params": "a" * 600}))
    assert not session.closed
    session.deliver(orjson.dumps({"method": "x", "params": "a" * 600}))
    assert session.closed
