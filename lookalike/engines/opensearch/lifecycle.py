"""Blue/green on OpenSearch: build a new products index while the alias serves the old one,
then move the alias in one ``_aliases`` call (atomic for readers), and drop the old index.
"""

from __future__ import annotations

from lookalike.engines.opensearch.adapter import OpenSearchEngine
from lookalike.engines.opensearch.errors import translated
from lookalike.engines.opensearch.mapping import (
    alias_swap_actions,
    new_index_name,
    products_index_body,
)


def serving_indexes(engine: OpenSearchEngine) -> list[str]:
    """Concrete indexes the products alias points at now (empty before the first index)."""
    with translated("alias lookup"):
        if not engine.client.indices.exists_alias(name=engine.alias):
            return []
        return sorted(engine.client.indices.get_alias(name=engine.alias))


def create_green(
    engine: OpenSearchEngine, dims: dict[str, int], models: dict[str, str], suffix: str = ""
) -> OpenSearchEngine:
    """Create the next products index (not behind the alias) and an engine writing to it."""
    name = f"{engine.alias}-{suffix}" if suffix else new_index_name(engine.alias)
    with translated("index creation"):
        engine.client.indices.create(index=name, body=products_index_body(dims, models))
    return OpenSearchEngine(client=engine.client, prefix=engine.prefix, target=name)


def switch_alias(engine: OpenSearchEngine, green: str, drop_old: bool = True) -> list[str]:
    """Point the alias at ``green`` atomically; returns (and optionally deletes) the old ones."""
    old = [i for i in serving_indexes(engine) if i != green]
    with translated("refresh"):
        engine.client.indices.refresh(index=green)
    with translated("alias swap"):
        engine.client.indices.update_aliases(body=alias_swap_actions(engine.alias, old, green))
    if drop_old and old:
        with translated("index deletion"):
            engine.client.indices.delete(index=",".join(old))
    engine.forget_mapping()
    return old
