"""The LSO Sonata APIs the partner serves as a seller, one module per definition file."""
