"""TLS contexts for the relay: one place that decides how certificates are checked.

Clients (the remote executor's registry request and websocket, the harness client) verify the
server's certificate and host name against the system trust store, or against ``ca_file``
when one is given (a private CA); there is no switch that turns verification off.  The
rendezvous serves TLS from a certificate chain and key file.  See docs/rendezvous.md
§Security model.
"""
from __future__ import annotations

import ssl


def client_context(ca_file: str | None = None) -> ssl.SSLContext:
    """A verifying client context: system CAs, or only ``ca_file`` when given."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A server context serving ``cert_file`` (the chain, leaf first) with ``key_file``."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


def for_url(url: str, ca_file: str | None = None) -> ssl.SSLContext | None:
    """The client context for ``url``: None for ``ws://``/``http://`` (no TLS)."""
    if url.startswith(("wss://", "https://")):
        return client_context(ca_file)
    return None
