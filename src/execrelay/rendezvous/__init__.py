"""Rendezvous + registry service (profile P5): routes relay frames by stream_id.

See :mod:`execrelay.rendezvous.server` for the endpoints and the embedding API.
"""
from __future__ import annotations

from .config import RendezvousConfig
from .metrics import Metrics
from .router import (EXECUTOR_UNAVAILABLE, FRAME_TOO_LARGE, HARNESS_DISCONNECTED,
                     HARNESS_TOO_SLOW, PROTOCOL_ERROR, QUEUE_FULL, STREAM_IN_USE, Router)
from .server import RendezvousServer, harness_url
from .tokens import SECRET_ENV, SecretError, load_secret, mint, verify

__all__ = [
    "RendezvousServer", "RendezvousConfig", "Router", "Metrics", "harness_url",
    "mint", "verify", "load_secret", "SecretError", "SECRET_ENV",
    "HARNESS_DISCONNECTED", "EXECUTOR_UNAVAILABLE", "STREAM_IN_USE", "HARNESS_TOO_SLOW",
    "FRAME_TOO_LARGE", "QUEUE_FULL", "PROTOCOL_ERROR",
]
