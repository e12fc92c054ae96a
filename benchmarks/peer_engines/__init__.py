"""One peer engine per module, each behind :class:`base.Peer`; ``benchmarks/peers.py`` drives
them."""
