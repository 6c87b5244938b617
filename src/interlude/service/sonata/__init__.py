"""Selling Internet Access over LSO Sonata: catalog, addresses, POQ, quotes, product orders, product inventory."""
