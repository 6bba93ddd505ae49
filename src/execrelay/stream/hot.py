"""The stream layer's hot path, compiled when available (see ``execrelay._accel``).

``RecvWindow`` (receive window), ``SendWindow`` (ack processing, RTO, fast retransmit) and
``Reassembler`` each come from ``ext/stream/*_c.pyx`` or from their pure twins
``_window_py``/``_sendwin_py``/``_reasm_py`` (identical API, compared by differential tests).
"""
from __future__ import annotations

from .._accel import select as _select

_window = _select("stream.window", "execrelay.stream._window_c", "execrelay.stream._window_py")
_sendwin = _select("stream.sendwin", "execrelay.stream._sendwin_c", "execrelay.stream._sendwin_py")
_reasm = _select("stream.reasm", "execrelay.stream._reasm_c", "execrelay.stream._reasm_py")

RecvWindow = _window.RecvWindow
SendWindow = _sendwin.SendWindow
Reassembler = _reasm.Reassembler
IN_ORDER: int = _window.IN_ORDER
BUFFERED: int = _window.BUFFERED
DUPLICATE: int = _window.DUPLICATE
DROPPED: int = _window.DROPPED

IMPLEMENTATION: str = "cython" if _window.__name__.endswith("_c") else "pure"
