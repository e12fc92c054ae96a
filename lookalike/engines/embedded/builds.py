"""How a vector space's background work starts: the ANN graph, the delta graph's adds and
the partitions all run through ``start_build``, so a build either raises here (``wait``) or
runs in a daemon thread that the space joins in ``VectorSpace.wait``."""

from __future__ import annotations

import threading
from collections.abc import Callable


def start_build(name: str, work: Callable[[], None], wait: bool) -> threading.Thread | None:
    """Run a build now (``wait``: its errors raise) or in a daemon thread, which is returned:
    the graph and the partitions are built the same way, queries answering exactly meanwhile."""
    if wait:
        work()
        return None
    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    return thread
