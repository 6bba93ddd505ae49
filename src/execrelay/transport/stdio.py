"""stdio transport: newline-delimited JSON on stdin/stdout (docs/exec-server.md §Transports).

One link for the life of the process.  Blank lines are ignored and ``\\r\\n`` is accepted; each
outbound message is one line.  No size limit (0.131.0 accepted an 80 MB line).
"""
from __future__ import annotations

import asyncio
import os
import sys
from typing import Any, BinaryIO, Iterable

from .base import LinkFactory, Payload


class StdioLink:
    peer = "stdio"

    def __init__(self, write_fd: int) -> None:
        self._fd = write_fd
        self.write_paused = False
        self._out: list[bytes] = []
        self._pending = bytearray()
        self._scheduled = False
        self._closed = False
        self._loop = asyncio.get_running_loop()
        self._done = self._loop.create_future()
        self._handler: Any = None
        self._writer_added = False
        try:
            os.set_blocking(write_fd, False)
            self._nonblocking = True
        except OSError:  # pragma: no cover
            self._nonblocking = False

    def send(self, data: Payload, binary: bool = False) -> None:
        if self._closed:
            return
        if type(data) is str:
            data = data.encode()
        self._out.append(bytes(data))
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def send_many(self, messages: Iterable[Payload], binary: bool = False) -> None:
        for m in messages:
            self.send(m, binary)

    def flush(self) -> None:
        self._scheduled = False
        if not self._out:
            return
        self._out.append(b"")
        self._pending += b"\n".join(self._out)
        self._out = []
        self._drain()

    def _drain(self) -> None:
        while self._pending:
            try:
                n = os.write(self._fd, self._pending)
            except BlockingIOError:
                break
            except OSError:
                self._pending.clear()
                self.close()
                return
            del self._pending[:n]
        if self._pending and not self._writer_added:
            self._writer_added = True
            self._loop.add_writer(self._fd, self._drain)
            if not self.write_paused and len(self._pending) > 4 * 1024 * 1024:
                self.write_paused = True
                if self._handler is not None:
                    self._handler.on_write_paused(True)
        elif not self._pending and self._writer_added:
            self._writer_added = False
            self._loop.remove_writer(self._fd)
            if self.write_paused:
                self.write_paused = False
                if self._handler is not None:
                    self._handler.on_write_paused(False)

    def close(self, graceful: bool = False) -> None:
        if self._closed:
            return
        self.flush()
        self._closed = True
        if not self._done.done():
            self._done.set_result(None)

    async def wait_closed(self) -> None:
        await self._done


async def serve_stdio(factory: LinkFactory, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
    """Serve one link on stdin/stdout until EOF on stdin (or the handler closes the link)."""
    loop = asyncio.get_running_loop()
    in_fd = (stdin or sys.stdin.buffer).fileno()
    out_fd = (stdout or sys.stdout.buffer).fileno()
    link = StdioLink(out_fd)
    handler = factory(link)
    link._handler = handler
    buf = bytearray()
    eof = loop.create_future()

    def feed_bytes(data: bytes) -> None:
        if not data:
            if not eof.done():
                eof.set_result(None)
            return
        buf.extend(data)
        start = 0
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            line = bytes(buf[start:nl]).strip()
            start = nl + 1
            if line:
                handler.on_message(line, False)
                if link._closed:
                    break
        del buf[:start]
        link.flush()

    def on_readable() -> None:
        try:
            data = os.read(in_fd, 1 << 20)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        feed_bytes(data)

    def read_blocking() -> None:  # stdin is a regular file: epoll refuses it, read in a thread
        while True:
            try:
                data = os.read(in_fd, 1 << 20)
            except OSError:
                data = b""
            loop.call_soon_threadsafe(feed_bytes, data)
            if not data:
                return

    use_reader = True
    try:
        os.set_blocking(in_fd, False)
        loop.add_reader(in_fd, on_readable)
    except (PermissionError, OSError):
        use_reader = False
        os.set_blocking(in_fd, True)
        import threading

        threading.Thread(target=read_blocking, name="stdio-reader", daemon=True).start()
    try:
        await asyncio.wait([eof, link._done], return_when=asyncio.FIRST_COMPLETED)
        if eof.done() and buf.strip():
            handler.on_message(bytes(buf).strip(), False)
    finally:
        if use_reader:
            loop.remove_reader(in_fd)
        link.flush()
        link._closed = True
        handler.on_close()
