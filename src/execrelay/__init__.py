"""execrelay: the Codex exec-server and its remote relay, with a native hot path.

Layers, from the bottom up (one subpackage each):

``wire``        relay frame codec (protobuf ``RelayMessageFrame``), Cython + pure twins
``stream``      sans-I/O per-stream state machines (legacy and reliable modes) + multiplexer
``transport``   websocket (picows fast path, websockets pure path) and stdio transports
``executor``    the exec-server: JSON-RPC sessions, process/fs/http methods, local and remote
``rendezvous``  the registry + rendezvous service that routes relay frames
``harness``     the client library a harness (agent) uses to reach an executor
``cli``         the ``execrelay`` command
"""
from __future__ import annotations

__version__ = "0.1.0"


def accelerated() -> dict[str, str]:
    """Report which implementation each accelerated component uses ("cython" or "pure").

    Importing the components is what makes the choice, so this imports them first.  A
    component on "pure" without ``EXECRELAY_PURE`` is a fallback: ``execrelay._accel.FALLBACKS``
    says why.
    """
    import importlib

    from . import _accel

    # every module that selects a twin (importing it makes the choice)
    for name in ("execrelay.wire", "execrelay.stream.hot", "execrelay.stream.noise", "execrelay.executor.fs",
                 "execrelay.transport.ws_picows", "execrelay.rendezvous.ws_fast"):
        importlib.import_module(name)
    return dict(_accel.ACTIVE)


def is_accelerated() -> bool:
    """True when every accelerated component runs its compiled (Cython) implementation."""
    active = accelerated()
    return bool(active) and all(v == "cython" for v in active.values())
