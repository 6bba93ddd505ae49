"""Benchmark runner behind ``execrelay bench`` (micro, executor over one relay websocket, ...).

Kept out of the hot-path layers on purpose: nothing in ``execrelay`` imports this package; it
only imports them (and the optional ``matplotlib`` of the ``bench`` extra, for plots).
The rules it follows are ``performance.md``'s: a batched driver that reports its own CPU and
busy fraction, executors as child processes measured from ``/proc``, A B C interleaving.
"""
