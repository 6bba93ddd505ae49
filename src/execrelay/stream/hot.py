"""The stream layer's hot path, compiled when available (see ``execrelay._accel``).

``RecvWindow`` (receive window), ``SendWindow`` (ack processing, RTO, fast retransmit) and
``Reassembler`` (segment reassembly) are each written once, in ``_window_py``/``_sendwin_py``/
``_reasm_py``; ``setup.py`` compiles the same files as ``_window_c``/``_sendwin_c``/``_reasm_c``
(Cython pure Python mode, typed by ``ext/stream/*.pxd``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .._accel import select as _select
# the window's verdicts are plain ints, the same in both builds: imported from their one source
from ._window_py import BUFFERED, DROPPED, DUPLICATE, IN_ORDER

if TYPE_CHECKING:   # the type checker sees the pure modules: same API, real annotations
    from . import _reasm_py as _reasm
    from . import _sendwin_py as _sendwin
    from . import _window_py as _window
else:
    _window = _select("stream.window", "execrelay.stream._window_c", "execrelay.stream._window_py")
    _sendwin = _select("stream.sendwin", "execrelay.stream._sendwin_c",
                       "execrelay.stream._sendwin_py")
    _reasm = _select("stream.reasm", "execrelay.stream._reasm_c", "execrelay.stream._reasm_py")

RecvWindow = _window.RecvWindow
SendWindow = _sendwin.SendWindow
Reassembler = _reasm.Reassembler

IMPLEMENTATION: str = "cython" if _window.__name__.endswith("_c") else "pure"
