"""`lookalike tune`: a small head learned on the catalogue's stored vectors from its own labels,
served as the vector space ``tuned`` through the engines' projections (no image re-embedded)."""
