"""W3C trace context (``traceparent``) syntax, shared by the executor's access log, which
logs only a valid one, and ``execrelay call --traceparent``, which refuses a malformed one
(docs/operations.md §Trace context)."""
from __future__ import annotations

import re

#: version 00 traceparent: version-traceid-parentid-flags, lowercase hex, ids not all zero
TRACEPARENT = re.compile(r"00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}")


def is_traceparent(value: object) -> bool:
    """True for a well-formed version-00 ``traceparent`` string."""
    return type(value) is str and TRACEPARENT.fullmatch(value) is not None
