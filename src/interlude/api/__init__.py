"""The REST layer: one module per API family (``BASE`` and ``routes()``), mounted by :mod:`interlude.app.web`.

Handlers parse the request, call one use case of the runtime and render its answer; they never reach the
adapters or the store, so every rule lives in :mod:`interlude.service` where the runner and the CLI share it.
"""
