"""Topology files: the typed model (:mod:`.model`) and the validating loader (:mod:`.loader`)."""
