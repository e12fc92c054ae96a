"""Ingest: catalogue records become documents in the engine, in-process or through Celery."""
