"""The rendezvous on several nodes, over NATS (docs/rendezvous.md §Several nodes).

``execrelay rendezvous --nats nats://HOST:PORT[,...] --node-id NAME`` builds a
:class:`ClusterNode` around the usual :class:`~execrelay.rendezvous.server.RendezvousServer`::

    server = RendezvousServer(secret)
    node = ClusterNode(server, parse_servers("nats://127.0.0.1:4222"), "n1")
    await server.start("127.0.0.1", 8000)
    await node.start()          # NATS, the rdv_owner KV bucket, heartbeats
    ...
    await node.close(); await server.aclose()

Without a node the server is the single-node rendezvous, unchanged.  Modules: :mod:`.config`
(settings), :mod:`.subjects` (names and messages), :mod:`.bus` (the NATS connection),
:mod:`.registrations` (registrations valid on every node: the ``rdv_reg`` bucket),
:mod:`.links` (remote ends shaped as sockets), :mod:`.state` (directory and stream table),
:mod:`.inbox` (bounded per-socket queues), :mod:`.liveness` (heartbeats),
:mod:`.metrics`, :mod:`.node` (the glue).
"""
from __future__ import annotations

from .config import ClusterConfig, ClusterError, parse_servers
from .node import ClusterNode

__all__ = ["ClusterNode", "ClusterConfig", "ClusterError", "parse_servers"]
