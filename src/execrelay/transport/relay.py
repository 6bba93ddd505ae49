"""Drive a sans-I/O relay :class:`~execrelay.stream.Multiplexer` over websocket links.

The multiplexer knows nothing of sockets or clocks; this pump is the only place where relay
frames meet the event loop.  It

* feeds every binary websocket message to the multiplexer with the loop's time;
* writes everything the multiplexer has ready with ONE ``send_many`` (one socket write),
  coalescing all output produced in one loop iteration (reads, handler replies, process
  output) into a single ``call_soon`` flush: a callback costs ~1 µs, a write several;
* keeps one loop timer armed at the multiplexer's earliest deadline (acks, retransmission,
  heartbeats of reliable streams);
* survives link changes: :meth:`attach` a new websocket (reliable streams Resume and resend),
  :meth:`detach` when it is gone (legacy streams end, as in 0.131.0).

Text messages are not part of the relay protocol: they are counted and dropped (what the
0.131.0 executor does).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Callable

from ..stream import Multiplexer
from .base import Link

log = logging.getLogger("execrelay.relay")

#: Stop collecting frames for one write once this much is queued (the rest goes next turn).
WRITE_BATCH_BYTES = 4 * 1024 * 1024
#: Frames handled within one read batch between two writes (see RelayPump.on_message).
FLUSH_EVERY = 16


class RelayPump:
    """Owns the link side of one :class:`Multiplexer`; see the module docstring."""

    def __init__(self, mux: Multiplexer, loop: asyncio.AbstractEventLoop | None = None,
                 on_link_lost: Callable[[], None] | None = None) -> None:
        self.mux = mux
        self.loop = loop or asyncio.get_running_loop()
        self.link: Link | None = None
        self._had_link = False
        #: True while a flush is queued for this loop iteration (senders check it to skip kick())
        self.flush_scheduled = False
        self._fed = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = -1.0
        self._on_link_lost = on_link_lost
        #: text (non-binary) messages dropped
        self.text_dropped = 0

    # ------------------------------------------------------------------ links
    def handler_for(self, link: Link) -> "_PumpHandler":
        """The transport's LinkHandler for a new websocket: attaches it to this pump."""
        self.attach(link)
        return _PumpHandler(self, link)

    def attach(self, link: Link) -> None:
        if self.link is not None and self.link is not link:
            self.detach()
        self.link = link
        if self._had_link:
            self.mux.on_reconnect(self.loop.time())
        self._had_link = True
        self.kick()

    def detach(self, link: Link | None = None) -> None:
        """The current link is gone (``link``: only if it is still the current one)."""
        if link is not None and link is not self.link:
            return
        if self.link is None:
            return
        self.link = None
        self.mux.on_disconnect()
        if self._on_link_lost is not None:
            self._on_link_lost()

    # ------------------------------------------------------------------ data path
    def on_message(self, data: bytes | str, binary: bool) -> None:
        if not binary or isinstance(data, str):
            self.text_dropped += 1
            return
        self.mux.feed(data, self.loop.time())
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self._fed = 0
            self.loop.call_soon(self._flush)
        else:
            # Within a big read batch, write what is ready every FLUSH_EVERY frames instead
            # of only at the end: the peer starts on the first replies (and refills its
            # windows) while we process the rest, so both sides work at once instead of
            # taking turns.  One extra write per FLUSH_EVERY requests.
            self._fed += 1
            if self._fed >= FLUSH_EVERY:
                self._fed = 0
                self._write()

    def kick(self) -> None:
        """Something was queued in the multiplexer outside a read: flush in this iteration."""
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self.flush_scheduled = False
        if self._write():
            self.kick()
        self._arm(self.mux.next_deadline())

    def _write(self) -> bool:
        """Write one batch of ready frames with one write; True if more is left."""
        mux = self.mux
        link = self.link
        if link is None or not mux.has_output():
            return False
        if getattr(link, "write_paused", False):
            return False  # on_write_paused(False) calls kick() when the socket drains
        frames = mux.poll_output(self.loop.time(), WRITE_BATCH_BYTES)
        if frames:
            link.send_many(frames, binary=True)
            link.flush()
        return mux.has_output()

    def _arm(self, deadline: float | None) -> None:
        if deadline is None:
            return
        if self._timer is not None:
            if self._timer_at <= deadline:
                return
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = -1.0
        self.mux.tick(self.loop.time())
        self._flush()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class _PumpHandler:
    """Per-websocket LinkHandler: forwards to the pump while its link is the current one."""

    __slots__ = ("pump", "link", "on_message")

    def __init__(self, pump: RelayPump, link: Link) -> None:
        self.pump = pump
        self.link = link
        self.on_message = pump.on_message

    def on_close(self) -> None:
        self.pump.detach(self.link)

    def on_write_paused(self, paused: bool) -> None:
        if not paused:
            self.pump.kick()
