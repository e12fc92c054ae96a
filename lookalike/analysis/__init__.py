"""Merchandiser tools over the engine contract: clusters, a visual map, attribute gap filling.

Pure functions: they read products and visual vectors through :class:`~lookalike.engines.Engine`
and write back only through ``Engine.upsert`` (see :mod:`lookalike.analysis.writeback`).
"""
