"""The stream layer's hot path, compiled when available (see ``execrelay._accel``).

``RecvWindow`` (receive window) and ``SendWindow`` (ack processing, RTO, fast retransmit) are
each written once, in ``_window_py``/``_sendwin_py``; ``setup.py`` compiles the same files as
``_window_c``/``_sendwin_c`` (Cython pure Python mode, typed by ``ext/stream/*.pxd``).
``Reassembler`` is pure only: a compiled one measured no faster and no smaller (one copy per
segment either way), so it was dropped.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from . import _reasm_py as _reasm
from .._accel import select as _select

if TYPE_CHECKING:   # the type checker sees the pure modules: same API, real annotations
    from . import _sendwin_py as _sendwin
    from . import _window_py as _window
else:
    _window = _select("stream.window", "execrelay.stream._window_c", "execrelay.stream._window_py")
    _sendwin = _select("stream.sendwin", "execrelay.stream._sendwin_c",
                       "execrelay.stream._sendwin_py")

RecvWindow = _window.RecvWindow
SendWindow = _sendwin.SendWindow
Reassembler = _reasm.Reassembler
IN_ORDER: int = _window.IN_ORDER
BUFFERED: int = _window.BUFFERED
DUPLICATE: int = _window.DUPLICATE
DROPPED: int = _window.DROPPED

IMPLEMENTATION: str = "cython" if _window.__name__.endswith("_c") else "pure"
