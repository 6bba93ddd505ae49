"""Benchmark runner behind ``execrelay bench`` (micro, executor over one relay websocket, ...).

Kept out of the hot-path layers on purpose: nothing in ``execrelay`` imports this package; it
only imports them (and the optional ``matplotlib`` of the ``bench`` extra, for plots).
The rules it follows: a batched driver that reports its own CPU and busy fraction, executors
as child processes measured from ``/proc``, A B C interleaving.

One job per module: :mod:`.scenarios` (request shapes), :mod:`.load` (the load generator and
one measured run), :mod:`.registry` and :mod:`.fakerdv` (the HTTP registry and websocket
acceptor the driver plays the rendezvous with), :mod:`.processes` (child executors and our
rendezvous), :mod:`.executors` / :mod:`.rdv` / :mod:`.micro` / :mod:`.profile` (the suites),
:mod:`.report` and :mod:`.progress` (output).
"""
