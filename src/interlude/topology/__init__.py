"""Topology files: the typed model (:mod:`.model`) and the validating loader (:mod:`.loader`)."""

from interlude.topology.loader import bundled_topology_path, load_topology, parse_topology
from interlude.topology.model import NodeSpec, Topology

__all__ = ["NodeSpec", "Topology", "bundled_topology_path", "load_topology", "parse_topology"]
