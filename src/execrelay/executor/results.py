"""What a handler may return besides a plain JSON-able result (a leaf module: imports nothing).

:class:`~execrelay.executor.connection.RpcConnection` checks these types with ``type(x) is``
after every call, so they are final slot classes; handlers and the connection both import them
from here, which keeps the connection and the handler modules independent of each other.
"""
from __future__ import annotations

from typing import Any, Callable


class Deferred:
    """Returned by a handler whose answer needs waiting; ``coro`` produces the result.

    With ``encoded=True``, ``coro`` is instead a callable taking the response's head
    (``{"id":<id>,"result":`` as bytes) and returning an awaitable of the COMPLETE encoded
    response.  Used for large ``fs/readFile`` replies: the worker thread builds the bytes, so
    the event loop never serializes (or copies) megabytes while other streams wait.
    """

    __slots__ = ("coro", "encoded")

    def __init__(self, coro: Any, encoded: bool = False) -> None:
        self.coro = coro
        self.encoded = encoded


class Encoded:
    """A result already encoded as JSON, in pieces (joined once, after the id).

    ``fs/readFile``: base64 needs no JSON escaping, so ``{"dataBase64":"`` + base64 + ``"}``
    is orjson's compact encoding without building (and re-scanning) a str of the data.
    """

    __slots__ = ("parts",)

    def __init__(self, parts: tuple[bytes, ...]) -> None:
        self.parts = parts


class PostSend:
    """A result plus a callback to run right after the response has been sent.

    Used by streamed ``http/request``: the response must precede the first body delta.
    """

    __slots__ = ("result", "after")

    def __init__(self, result: Any, after: Callable[[], None]) -> None:
        self.result = result
        self.after = after
