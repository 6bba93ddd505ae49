"""Rendezvous + registry service (docs/rendezvous.md): routes relay frames by stream_id.

One aiohttp app on one port::

    POST /cloud/executor/{id}/register   Bearer <executor token for id> -> {"executor_id", "url"}
    GET  /executor/{id}?sig=TOKEN        the executor's websocket (one per id)
    GET  /harness?role=harness&executor_id=ID&sig=TOKEN   a harness websocket (any number)
    GET  /readyz, GET /metrics           200 "ok"; Prometheus text
    POST /cloud/environment/{id}/register|connect|validate   the Noise registry of Codex
                                         0.171 (:mod:`.noise_registry`)

Tokens: ``v1.<expiry>.<base64url(HMAC-SHA256(secret, "v1|<role>|<id>|<expiry>"))>`` (MAC
unpadded), see :mod:`.tokens`.  Bad tokens get HTTP 401 before any upgrade.

Behaviour (``Reset`` reasons in brackets):

- first frame of a new stream_id from a harness socket binds the stream to that socket; the
  same id from another socket gets a Reset [stream_in_use] and is not forwarded;
- harness socket gone: legacy streams Reset to the executor at once, reliable ones (opened
  with Resume{next_seq>=1} or Data seq>=1) after ``harness_grace`` unless a new socket
  Resumes them [harness_disconnected];
- executor socket gone, or not there yet: harness frames queue (bounded); the executor's
  return within ``executor_grace`` delivers them; otherwise the streams get Reset
  [executor_unavailable]; a full queue Resets the stream that overflowed it [queue_full];
- a harness whose outbound queue exceeds ``harness_queue_bytes`` is cut off; its streams are
  Reset toward the executor [harness_too_slow]; nothing waits on it;
- the executor's outbound backlog above ``executor_high_water`` pauses harness reads (TCP
  backpressure) instead of buffering without bound;
- a harness socket holds at most ``max_streams_per_harness`` streams, an executor
  ``max_streams_per_executor``, and new streams are rate limited per socket [too_many_streams,
  stream_rate_limited]; an orphaned reliable stream is resumed only with the token that opened
  it; connections must authenticate within ``handshake_timeout`` (docs/rendezvous.md
  §Security model);
- frames above ``max_frame_bytes`` are dropped and their stream Reset both ways
  [frame_too_large]; undecodable frames and text messages are counted and dropped; executor
  frames that are not canonical are fully validated first (an invalid frame is fatal to a
  0.131.0 harness) [protocol_error: ...].

Embedding (tests, the demo)::

    server = RendezvousServer(secret=b"16+ bytes", harness_grace=1.0, executor_grace=1.0)
    await server.start("127.0.0.1", 0)     # -> server.url == "http://127.0.0.1:<port>"
    token = server.mint_token("executor", "exec-1")
    url = server.harness_url("exec-1")      # ws://.../harness?role=harness&executor_id=...&sig=...
    await server.aclose()

State that a multi-node version replaces sits behind :mod:`.directory` (executor ownership,
registrations, per-executor stream tables).
"""
from __future__ import annotations

from .config import RendezvousConfig
from .metrics import Metrics
from .router import (EXECUTOR_UNAVAILABLE, FRAME_TOO_LARGE, HARNESS_DISCONNECTED,
                     HARNESS_TOO_SLOW, PROTOCOL_ERROR, QUEUE_FULL, STREAM_IN_USE,
                     STREAM_RATE_LIMITED, TOO_MANY_STREAMS, Router)
from .server import RendezvousServer, harness_url
from .tokens import SECRET_ENV, SecretError, load_secret, mint, verify

__all__ = [
    "RendezvousServer", "RendezvousConfig", "Router", "Metrics", "harness_url",
    "mint", "verify", "load_secret", "SecretError", "SECRET_ENV",
    "HARNESS_DISCONNECTED", "EXECUTOR_UNAVAILABLE", "STREAM_IN_USE", "HARNESS_TOO_SLOW",
    "FRAME_TOO_LARGE", "QUEUE_FULL", "PROTOCOL_ERROR", "TOO_MANY_STREAMS", "STREAM_RATE_LIMITED",
]
