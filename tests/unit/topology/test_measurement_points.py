"""IP measurement points in topology files: the bundled Internet Access services have them, mistakes name their path."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from interlude.errors import TopologyError
from interlude.topology.loader import bundled_topology_path, load_topology, parse_topology


@pytest.fixture
def raw() -> dict[str, Any]:
    data = yaml.safe_load(bundled_topology_path().read_text())
    assert isinstance(data, dict)
    return data


def test_every_bundled_internet_access_has_a_customer_and_an_internet_point() -> None:
    topo = load_topology(bundled_topology_path())
    for service in (s for s in topo.services if s.type == "internetAccess"):
        roles = sorted(topo.measurement_points[p].role for p in service.measurement_points)
        assert roles == ["customer", "internet"], service.id
        ports = {(e.node, e.interface) for e in service.endpoints}
        for name in service.measurement_points:
            point = topo.measurement_points[name]
            assert (point.node, point.interface) in ports and point.port == 862


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda r: r["measurement_points"]["inet-edge"].update(node="nowhere"), "measurement_points.inet-edge"),
        (lambda r: r["measurement_points"]["inet-edge"].update(interface="eth9"), "measurement_points.inet-edge"),
        (lambda r: r["measurement_points"]["inet-edge"].update(address="1.2.3"),
         "measurement_points.inet-edge.address"),
        (lambda r: r["services"][4].update(measurement_points=["ghost"]), "services.4.measurement_points.0"),
        (lambda r: r["services"][0].update(measurement_points=["inet-edge"]), "services.0.measurement_points.0"),
    ],
)
def test_mistakes_name_their_path(raw: dict[str, Any], mutate: Any, path: str) -> None:
    assert raw["services"][4]["type"] == "internetAccess" and raw["services"][0]["type"] == "accessEline"
    mutate(raw)
    with pytest.raises(TopologyError) as err:
        parse_topology(raw)
    assert err.value.path == path
