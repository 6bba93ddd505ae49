"""A minimal HTTP/1.1 registry for the fake rendezvous (one request per connection).

``POST /cloud/executor/{id}/register`` -> ``{"executor_id": id, "url": "<ws base>/executor/{id}"}``,
anything else 404.  Hand-written on a bare asyncio protocol so the driver process stays lean;
tokens are not checked (the executor under test is ours to start).
"""
from __future__ import annotations

import asyncio


class Registry(asyncio.Protocol):
    """One registry connection: read one request, answer, close."""

    def __init__(self, ws_base: str) -> None:
        self.ws_base = ws_base
        self.buf = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        head, sep, body = self.buf.partition(b"\r\n\r\n")
        if not sep:
            return
        clen = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                clen = int(v.strip())
        if len(body) < clen:
            return
        parts = head.split(b" ")
        path = parts[1].decode() if len(parts) > 1 else "/"
        segs = path.split("/")
        if len(parts) > 1 and parts[0] == b"POST" and len(segs) == 5 and segs[1:3] == ["cloud", "executor"] \
                and segs[4] == "register":
            eid = segs[3]
            resp = b'{"executor_id":"%s","url":"%s/executor/%s"}' % (eid.encode(), self.ws_base.encode(),
                                                                   eid.encode())
            status = b"200 OK"
        else:
            resp, status = b'{"error":{"code":"not_found","message":"no"}}', b"404 Not Found"
        self.t.write(b"HTTP/1.1 %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                     b"connection: close\r\n\r\n%s" % (status, len(resp), resp))
        self.t.close()
