"""One JSON-RPC connection of the exec-server, independent of its transport.

A transport (local websocket, stdio, a relay stream) creates one :class:`RpcConnection` per
peer, calls :meth:`RpcConnection.feed` with each inbound message and :meth:`close` when the
peer is gone; the connection calls ``send`` with the encoded bytes of each outbound message.

Why it is shaped like this (issue 8): the whole per-request path for a request that can be
answered at once is plain function calls -- parse, dispatch, handler, encode, ``send`` -- with
no Task or Future.  Only a handler that must wait returns a :class:`Deferred`; while it runs,
later messages of this connection queue (0.131.0 handles one request at a time per
connection, docs/exec-server.md §Transports) and are replayed when it finishes.  Other
connections are never delayed.
"""
from __future__ import annotations

import asyncio
import json
from collections import deque
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import orjson

from .dialect import is_171
from .errors import INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, RpcError
from .metrics import MethodStats
from .params import bad_type, serde_text_171
from .results import Deferred, Encoded, PostSend

if TYPE_CHECKING:  # pragma: no cover
    from .fs_handles import HandleTable
    from .fs_watch import MissingWatch
    from .server import ExecServer
    from .session import Session

_loads = orjson.loads
_dumps = orjson.dumps
_JSONDecodeError = orjson.JSONDecodeError
_I64_MIN = -(1 << 63)
_I64_MAX = (1 << 63) - 1
_UNTAGGED = "data did not match any variant of untagged enum JSONRPCMessage"
#: queued messages (behind an async handler) at which the transport is asked to stop reading
QUEUE_PAUSE = 128
#: JSON-RPC error code (server-error range) of a request refused because QUEUE_PAUSE requests
#: already wait behind an async handler on a transport that cannot pause reading (a relay stream)
OVERLOADED = -32001


#: 0.171.0 decodes a message by its members, with its own texts (docs/dialects.md §Messages)
_NOT_OBJECT = "expected a JSON-RPC object"
_BAD_ID_171 = "data did not match any variant of untagged enum RequestId"


def _shape_error_171(msg: dict) -> str | None:
    """0.171.0's text for an object that is no valid request or notification, or None when it is
    a well-formed response or error object (a client must not send those: the connection ends)."""
    if "method" in msg:  # present but not a string
        err = bad_type(msg["method"], "a string")
        return err.message171 or err.message
    if "result" not in msg:
        error = msg.get("error")
        if error is None:
            return "missing field `error`"
        if type(error) is dict:
            for name in ("code", "message"):
                if name not in error:
                    return f"missing field `{name}`"
    if "id" not in msg:
        return "missing field `id`"
    return None


_UNKNOWN: dict[str, bytes] = {}


#: names longer than this are not cached, so the cache holds at most 256 * 128 bytes of names
_UNKNOWN_NAME_MAX = 128


def _unknown_prefix(method: str) -> bytes:
    """Encoded -32601 error up to the id, cached for a bounded set of short method names."""
    prefix = (b'{"error":{"code":' + str(METHOD_NOT_FOUND).encode() + b',"message":'
              + _dumps(f"exec-server stub does not implement `{method}` yet") + b'},"id":')
    if len(_UNKNOWN) < 256 and len(method) <= _UNKNOWN_NAME_MAX:
        _UNKNOWN[method] = prefix
    return prefix


def _json_error_text(message: bytes | str) -> str:
    """A serde_json-like text for a parse failure (slow path; clients match on the prefix).

    The stdlib parser is used only to locate and name the error the way serde does.
    """
    try:
        text = message.decode("utf-8") if not isinstance(message, str) else message
    except UnicodeDecodeError as exc:
        return f"invalid unicode code point at line 1 column {exc.start + 1}"
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        msg = exc.msg
        if msg.startswith("Extra data"):
            what = "trailing characters"
        elif exc.pos >= len(text.rstrip()):
            what = "EOF while parsing a value"
        elif msg.startswith("Expecting value") and text[exc.pos] in _IDENTS:
            # serde reads a literal from its first letter on ("nonsense": `null` expected, the
            # `o` is the error, column 2), where the stdlib stops at the letter
            ident = _IDENTS[text[exc.pos]]
            i = 1
            while i < len(ident) and exc.pos + i < len(text) and text[exc.pos + i] == ident[i]:
                i += 1
            if exc.pos + i >= len(text):
                return f"EOF while parsing a value at line {exc.lineno} column {exc.colno + i - 1}"
            return f"expected ident at line {exc.lineno} column {exc.colno + i}"
        elif msg.startswith("Expecting value"):
            what = "expected value"
        elif msg.startswith("Expecting property name"):
            what = "key must be a string"
        elif msg.startswith("Expecting ',' delimiter"):
            what = "expected `,` or `}`"
        elif msg.startswith("Expecting ':' delimiter"):
            what = "expected `:`"
        elif msg.startswith("Invalid control character"):
            what = "control character (\\u0000-\\u001F) found while parsing a string"
        else:
            what = msg[:1].lower() + msg[1:]
        return f"{what} at line {exc.lineno} column {exc.colno}"
    except Exception as exc:  # pragma: no cover
        return str(exc)
    return "number out of range at line 1 column 1"


_IDENTS = {"t": "true", "f": "false", "n": "null"}
_STDIO_PREFIX = "failed to parse JSON-RPC message from exec-server stdio: "


class _Extra:
    """The rarely used part of a connection's state, allocated on first need.

    Why: an executor holds thousands of idle relay streams, each one connection (issue 8:
    <= 2 KiB per idle stream).  A stream that never pauses, never queues behind an async
    handler and uses the default parse-error text never allocates this.
    """

    __slots__ = ("parse_error_prefix", "pause_reading", "queue", "write_paused", "reading_paused",
                 "paused_sources", "handles", "watch")

    def __init__(self, parse_error_prefix: str, pause_reading: Callable[[bool], None] | None) -> None:
        #: text before the parser's message in the id -1 error (differs per transport, docs/exec-server.md §Errors)
        self.parse_error_prefix = parse_error_prefix
        #: transport hook: stop/restart reading when too many messages queue behind an async
        #: handler (0.131.0 reads through a bounded channel, so a flooding client is held back)
        self.pause_reading = pause_reading
        #: messages that arrived while an async handler ran
        self.queue: deque[bytes | str] | None = None
        #: set by the transport while its write buffer is above the high-water mark
        self.write_paused = False
        self.reading_paused = False
        self.paused_sources: list[Callable[[], None]] | None = None
        #: 0.171's file handles and missing-path watch: per connection, gone with it
        #: (:mod:`.fs_171`; created on first use)
        self.handles: HandleTable | None = None
        self.watch: MissingWatch | None = None


class RpcConnection:
    """JSON-RPC-lite endpoint for one peer; see the module docstring.

    Per-connection memory is kept small on purpose (issue 8): eight slots; "initialize done"
    is ``session is not None``, "an async handler is running" is ``_task is not None``, and
    everything rare lives in :class:`_Extra`.
    """

    __slots__ = ("server", "_send", "_on_close", "session", "initialized", "closed", "_task", "_x")

    def __init__(
        self,
        server: "ExecServer",
        send: Callable[[bytes], None],
        on_close: Callable[[], None] | None = None,
        *,
        parse_error_prefix: str = _STDIO_PREFIX,
        pause_reading: Callable[[bool], None] | None = None,
    ) -> None:
        self.server = server
        self._send = send
        self._on_close = on_close
        self.session: Session | None = None
        #: ``initialized`` received after a successful ``initialize``
        self.initialized = False
        self.closed = False
        #: the running async handler (later messages queue while it runs)
        self._task: asyncio.Task | None = None
        self._x: _Extra | None = None
        if pause_reading is not None or parse_error_prefix != _STDIO_PREFIX:
            self._x = _Extra(parse_error_prefix, pause_reading)
        # until initialize attaches a session (which then references this connection)
        server.connections.add(self)
        server.metrics.connections_total += 1

    def _extra(self) -> _Extra:
        x = self._x
        if x is None:
            x = self._x = _Extra(_STDIO_PREFIX, None)
        return x

    @property
    def parse_error_prefix(self) -> str:
        x = self._x
        return _STDIO_PREFIX if x is None else x.parse_error_prefix

    def open_handles(self) -> int:
        """0.171 file handles this connection holds open (a gauge, read at scrape time)."""
        x = self._x
        return 0 if x is None or x.handles is None else len(x.handles)

    def queued(self) -> int:
        """Messages waiting behind the running request (a gauge, read at scrape time)."""
        x = self._x
        return 0 if x is None or x.queue is None else len(x.queue)

    @property
    def write_paused(self) -> bool:
        """True while the transport's write buffer is above its high-water mark."""
        x = self._x
        return x is not None and x.write_paused

    # ------------------------------------------------------------------ inbound
    def feed(self, message: bytes | str, binary: bool = False) -> None:
        """Process one inbound JSON-RPC message (text or binary payload: both hold JSON)."""
        if self._task is not None:
            x = self._extra()
            queue = x.queue
            if queue is None:
                queue = x.queue = deque()
            elif len(queue) >= QUEUE_PAUSE and self._refuse_queued(message):
                return
            queue.append(message)
            if len(queue) >= QUEUE_PAUSE and not x.reading_paused:
                self._update_reading()
            return
        if not self.closed:
            self._process(message)

    def _refuse_queued(self, message: bytes | str) -> bool:
        """``message`` arrived while QUEUE_PAUSE messages already wait behind an async handler:
        True if it was dealt with here instead of queued.  A transport that can pause reading
        queues what it already read (False); one that cannot (a relay stream shares its
        socket) refuses instead, so the queue stays bounded."""
        return False

    def _process(self, message: bytes | str) -> None:
        try:
            msg = _loads(message)
        except _JSONDecodeError:
            self.server.metrics.other_bytes_in += len(message)
            self._send_parse_error(message)
            return
        if type(msg) is not dict:
            self._send_error(-1, INVALID_REQUEST, self.parse_error_prefix + (
                _NOT_OBJECT if is_171(self) else _UNTAGGED))
            return
        method = msg.get("method")
        if type(method) is str:
            rid = msg.get("id", _ABSENT)
            t = type(rid)
            if t is str or (t is int and _I64_MIN <= rid <= _I64_MAX):
                # per request: one stats lookup and the begin/end pair (one clock pair, C
                # counters; docs/operations.md §Cost on the request path)
                stats = self.server.dispatch.get(method)
                if stats is None:
                    # inline, not a method call: "method not found" is what the bench's trivial
                    # request measures (two Python calls here cost ~3,000 instructions a request)
                    stats = self.server.metrics.unknown
                    stats.begin(message)
                    prefix = _UNKNOWN.get(method)
                    if prefix is None:
                        prefix = _unknown_prefix(method)
                    data = prefix + _dumps(rid) + b"}"
                    self._send(data)
                    stats.end_error(data)
                    if stats.log is not None:
                        stats.log(self, stats, msg, stats.last_ns, "error")
                    return
                stats.begin(message)
                try:
                    result = stats.handler(self, msg.get("params"))
                except RpcError as exc:
                    err = exc.wire(self)
                    if exc.code == INVALID_PARAMS and exc.message171 is None and is_171(self):
                        err["message"] = serde_text_171(err["message"])
                    self._answered(stats, msg, _dumps({"error": err, "id": rid}), "error")
                    return
                except Exception as exc:  # a bug in a handler must not kill the connection
                    self._send_error(rid, INTERNAL_ERROR, f"internal error: {exc!r}")
                    self._answered(stats, msg, None, "internal_error")
                    return
                if type(result) is Deferred:
                    if result.encoded:
                        self._start_async(rid, result.coro(b'{"id":' + _dumps(rid) + b',"result":'), True,
                                          stats, msg, stats.started)
                    else:
                        self._start_async(rid, result.coro, False, stats, msg, stats.started)
                    return
                if type(result) is Encoded:
                    data = b"".join((b'{"id":', _dumps(rid), b',"result":', *result.parts, b"}"))
                    self._send(data)
                    stats.end(data)
                elif type(result) is PostSend:
                    data = _dumps({"id": rid, "result": result.result})
                    self._send(data)
                    stats.end(data)
                    result.after()
                else:
                    data = _dumps({"id": rid, "result": result})
                    self._send(data)
                    stats.end(data)
                if stats.log is not None:
                    stats.log(self, stats, msg, stats.last_ns, "ok")
                return
            if rid is not _ABSENT and is_171(self):
                self._send_error(-1, INVALID_REQUEST, self.parse_error_prefix + _BAD_ID_171)
                return
            # not a valid RequestId: serde's untagged decoding makes it a notification (0.131.0)
            self.server.metrics.other_bytes_in += len(message)
            self._notification(method, msg)
            return
        self.server.metrics.other_bytes_in += len(message)
        if is_171(self):
            problem = _shape_error_171(msg)
            if problem is not None:
                self._send_error(-1, INVALID_REQUEST, self.parse_error_prefix + problem)
                return
            self.close("client sent a response")
            return
        if "id" in msg and ("result" in msg or "error" in msg):
            # the client sent a response or an error object: 0.131.0 drops the connection
            self.close("client sent a response")
            return
        self._send_error(-1, INVALID_REQUEST, self.parse_error_prefix + _UNTAGGED)

    def _answered(self, stats: MethodStats, msg: dict, data: bytes | None, outcome: str) -> None:
        """Send an error answer (None: ``_send_error`` sent it, counted with the other bytes)
        and count it: the slow path of a request, after ``stats.begin``."""
        if data is None:
            stats.internal += 1
            stats.end(b"")
        else:
            self._send(data)
            stats.end_error(data)
        if stats.log is not None:
            stats.log(self, stats, msg, stats.last_ns, outcome)

    def _notification(self, method: str, msg: dict) -> None:
        if method == "initialized" and self.session is not None:
            self.initialized = True
            return
        # unknown notification, early `initialized`, `initialize` without id, bad id: close
        self.close(f"unexpected notification {method!r}")

    def _start_async(self, rid: Any, coro: Awaitable[Any], encoded: bool, stats: MethodStats,
                     msg: dict, t0: int) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._run_async(rid, coro, encoded, stats, msg, t0))

    async def _run_async(self, rid: Any, coro: Awaitable[Any], encoded: bool, stats: MethodStats,
                         msg: dict, t0: int) -> None:
        outcome = "ok"
        data = b""
        try:
            result = await coro
        except RpcError as exc:
            outcome = "error"
            if not self.closed:
                data = _dumps({"error": exc.wire(self), "id": rid})
                self._send(data)
        except asyncio.CancelledError:
            outcome = "cancelled"
            return
        except Exception as exc:
            outcome = "internal_error"
            if not self.closed:
                self._send_error(rid, INTERNAL_ERROR, f"internal error: {exc!r}")
        else:
            if not self.closed:
                if encoded:
                    data = result
                    self._send(data)
                elif type(result) is PostSend:
                    data = _dumps({"id": rid, "result": result.result})
                    self._send(data)
                    result.after()
                else:
                    data = _dumps({"id": rid, "result": result})
                    self._send(data)
            else:
                outcome = "cancelled"
                if type(result) is PostSend:
                    result.after()
        finally:
            self._task = None
            if outcome == "error":
                stats.errors += 1
            elif outcome == "internal_error":
                stats.internal += 1
            elif outcome == "cancelled":
                stats.cancelled += 1
            stats.end_since(t0, len(data))
            if stats.log is not None:
                stats.log(self, stats, msg, stats.last_ns, outcome)
        x = self._x
        if x is None:
            return
        queue = x.queue
        while queue and self._task is None and not self.closed:
            self._process(queue.popleft())
        if queue is not None and not queue and x.queue is queue:
            x.queue = None
        if x.reading_paused:
            self._update_reading()

    def _update_reading(self) -> None:
        """Ask the transport to stop reading while requests pile up behind an async handler or
        while the peer does not read our output (0.131.0's bounded queues have the same effect:
        a client that stops reading stalls only its own connection)."""
        x = self._x
        if x is None or x.pause_reading is None or self.closed:
            return
        queue = x.queue
        queued = len(queue) if queue is not None else 0
        if x.reading_paused:
            want = x.write_paused or queued >= QUEUE_PAUSE // 2
        else:
            want = x.write_paused or queued >= QUEUE_PAUSE
        if want != x.reading_paused:
            x.reading_paused = want
            if want:
                self.server.metrics.read_pauses += 1
            x.pause_reading(want)

    # ----------------------------------------------------------------- outbound
    def _send_parse_error(self, message: bytes | str) -> None:
        """Answer a message that is not JSON (id -1); the text costs a second parse, so a
        connection that drops these answers overrides this without building it."""
        self._send_error(-1, INVALID_REQUEST, self.parse_error_prefix + _json_error_text(message))

    def _send_error(self, rid: Any, code: int, message: str) -> None:
        data = _dumps({"error": {"code": code, "message": message}, "id": rid})
        self.server.metrics.other_bytes_out += len(data)
        self._send(data)

    def send_bytes(self, data: bytes) -> None:
        """Send an already-encoded message (notifications from processes / http streams)."""
        if not self.closed:
            self.server.metrics.other_bytes_out += len(data)
            self._send(data)

    def notify(self, method: str, params: Any) -> None:
        if not self.closed:
            data = _dumps({"method": method, "params": params})
            self.server.metrics.other_bytes_out += len(data)
            self._send(data)

    # ------------------------------------------------------------ flow control
    def pause_writing(self) -> None:
        """Transport buffer is full: output producers and request intake stop until
        :meth:`resume_writing`."""
        self.server.metrics.write_pauses += 1
        self._extra().write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        x = self._x
        if x is None:
            return
        x.write_paused = False
        if x.reading_paused:
            self._update_reading()
        sources, x.paused_sources = x.paused_sources, None
        if sources:
            for resume in sources:
                resume()

    def add_paused_source(self, resume: Callable[[], None]) -> None:
        """Register a producer that paused itself because of :attr:`write_paused`."""
        x = self._extra()
        if x.paused_sources is None:
            x.paused_sources = []
        x.paused_sources.append(resume)

    # ------------------------------------- transport LinkHandler protocol (base.py)
    on_message = feed

    def on_close(self) -> None:
        self.close("transport closed")

    def on_write_paused(self, paused: bool) -> None:
        if paused:
            self.pause_writing()
        else:
            self.resume_writing()

    # ------------------------------------------------------------------- close
    def close(self, reason: str | None = None) -> None:
        """The peer is gone (or must be dropped): detach the session, stop in-flight work.

        Idempotent.  Calls ``on_close`` once so the transport can drop the link without a
        close frame (what 0.131.0 does).
        """
        if self.closed:
            return
        self.closed = True
        task = self._task
        if task is not None:
            task.cancel()
        session = self.session
        if session is not None:
            self.server.detach(session, self)
        self.server.connections.discard(self)
        x = self._x
        if x is not None:
            x.queue = None
            if x.handles is not None:
                x.handles.close_all()
            if x.watch is not None:
                x.watch.close()
            sources, x.paused_sources = x.paused_sources, None
            if sources:
                for resume in sources:  # detached sessions keep draining output into retention
                    resume()
        cb = self._on_close
        self._on_close = None
        if cb is not None:
            cb()


class _Absent:
    __slots__ = ()


_ABSENT: Any = _Absent()
