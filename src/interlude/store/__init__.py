"""Persistence: the store Protocol, its SQLite and PostgreSQL implementations and what those two share.

The interface is :mod:`interlude.store.base`, the implementations :mod:`interlude.store.sqlite` and
:mod:`interlude.store.postgres`, their shared mappers and filters :mod:`interlude.store.rows`.
"""
