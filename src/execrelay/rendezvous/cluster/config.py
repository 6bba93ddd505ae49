"""Settings of one rendezvous node in a cluster (docs/rendezvous.md §Several nodes).

The defaults follow the design of that section: 1 s node heartbeats, 3 misses before a node is
taken for dead, a node cut off from NATS for 10 s fences itself, a 5 s NATS ping, a 0.25 s
reconnect wait plus jitter, 32-frame queues per socket for frames that crossed NATS.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

MiB = 1024 * 1024

#: A node id is one NATS subject token and one KV key token.
NODE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class ClusterError(RuntimeError):
    """The node cannot join the cluster (bad option, NATS unreachable, KV not available)."""


def parse_servers(text: str) -> list[str]:
    """``nats://h:p[,nats://h2:p2...]`` -> the list; every entry needs a scheme, host and port."""
    servers = [s.strip() for s in text.split(",") if s.strip()]
    if not servers:
        raise ClusterError("--nats needs at least one nats://HOST:PORT")
    for server in servers:
        try:
            parts = urlsplit(server)
            port = parts.port
        except ValueError:
            raise ClusterError(f"--nats: bad server URL {server!r}") from None
        if parts.scheme not in ("nats", "tls") or not parts.hostname or port is None:
            raise ClusterError(f"--nats: want nats://HOST:PORT or tls://HOST:PORT, got {server!r}")
    return servers


@dataclass
class ClusterConfig:
    servers: list[str]
    node_id: str
    #: Node heartbeat period on ``rdv.node.<id>``; ``heartbeat_misses`` missed ones mean dead.
    heartbeat: float = 1.0
    heartbeat_misses: int = 3
    #: A node that cannot reach NATS this long closes its executor sockets (they re-home).
    fence_after: float = 10.0
    #: Frames from NATS waiting for one local socket that does not take writes (then: drop the
    #: oldest of a reliable stream, Reset a legacy one).
    queue_frames: int = 32
    #: NATS client: ping period and unanswered pings before the connection is dropped.
    ping_interval: float = 5.0
    max_outstanding_pings: int = 2
    #: Wait between reconnect attempts, plus a random share of ``reconnect_jitter``.
    reconnect_wait: float = 0.25
    reconnect_jitter: float = 0.25
    #: Per-subscription pending limits of the NATS client (its defaults: 512k msgs / 128 MiB).
    pending_msgs: int = 8192
    pending_bytes: int = 64 * MiB
    #: Client-side buffer for publishes (also what is buffered while reconnecting).
    publish_buffer: int = 32 * MiB
    #: How long a Resume request waits for the owner's answer.
    request_timeout: float = 2.0
    connect_timeout: float = 5.0
    bucket: str = "rdv_owner"

    def __post_init__(self) -> None:
        if not NODE_ID.fullmatch(self.node_id):
            raise ClusterError(f"--node-id must be 1-64 of A-Z a-z 0-9 _ -, got {self.node_id!r}")
