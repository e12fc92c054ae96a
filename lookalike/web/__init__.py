"""The merchandisers' web page: static HTML, one vanilla JS module and CSS (no build step).

The files are package data; :mod:`lookalike.api.routes.web` serves them.
"""
