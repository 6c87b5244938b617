"""Southbound adapters: the contract (:mod:`.base`), the registry, and the built-in ``emulated`` adapter."""
