from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from interlude.adapters.emulated.adapter import shared_network
from interlude.app.runtime import Runtime, RuntimeOptions
from interlude.cli.main import main
from interlude.emulator.scenario import load_scenario, run_scenario, scenario_problems
from interlude.errors import ConfigError
from interlude.topology.loader import bundled_topology_path, load_topology

SCENARIOS = Path(__file__).resolve().parents[3] / "emulator" / "scenarios"


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_scenarios_are_valid(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.steps
    assert scenario_problems(scenario, load_topology(bundled_topology_path())) == []


def test_scenario_errors_name_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsteps:\n  - {at: 1, clear: nothing}\n")
    with pytest.raises(ConfigError, match="clears 'nothing'"):
        load_scenario(bad)
    bad.write_text("name: x\nsteps:\n  - {at: -1, inject: {type: linkDown, node: pe1, interface: up1}}\n")
    with pytest.raises(ConfigError, match=r"steps\.0\.at"):
        load_scenario(bad)


async def test_scenario_plays_cut_and_repair(tmp_path: Path) -> None:
    runtime = Runtime(
        load_topology(bundled_topology_path()), tmp_path / "s.db", options=RuntimeOptions(run_notifier=False)
    )
    await runtime.start()
    try:
        net = shared_network(runtime.context)
        seen: list[tuple[float, bool]] = []
        clock = [0.0]

        async def fake_sleep(seconds: float) -> None:
            clock[0] += seconds
            link = net.link_of("pe1", "up1")
            assert link is not None
            seen.append((clock[0], link.cut))

        await run_scenario(load_scenario(SCENARIOS / "uplink-trouble.yaml"), runtime.faults, sleep=fake_sleep)
        # before t=10 not cut; before t=20 cut; the delay fault is left running until the scenario ends.
        assert seen == [(10.0, False), (20.0, True)]
        link = net.link_of("pe1", "up1")
        assert link is not None and not link.cut
        assert await runtime.faults.list() == []  # cleared at the end of the scenario
    finally:
        await runtime.stop()


def test_cli_help_and_serve_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["emulate", "--help"])
    assert result.exit_code == 0 and "--scenario" in result.output
    topo = tmp_path / "t.yaml"
    topo.write_text("name: t\nnodes:\n  n1: {kind: warpdrive, interfaces: {e1: {}}}\n")
    result = runner.invoke(main, ["serve", "--topology", str(topo), "--db", str(tmp_path / "x.db")])
    assert result.exit_code == 1
    assert "warpdrive" in result.output and "is not one of" in result.output


def test_a_scenario_naming_unknown_ports_stops_emulate_before_serving(tmp_path: Path) -> None:
    scen = tmp_path / "typo.yaml"
    scen.write_text(
        "name: typo\nsteps:\n"
        "  - {at: 0, name: a, inject: {type: linkDown, node: pe9, interface: up1}}\n"
        "  - {at: 1, inject: {type: delay, node: pe1, interface: up7, delayMs: 5}}\n"
    )
    result = CliRunner().invoke(
        main, ["emulate", "--scenario", str(scen), "--port", "0", "--db", str(tmp_path / "x.db"), "--no-device-agents"]
    )
    assert result.exit_code == 1, result.output
    assert "unknown node 'pe9'" in result.output and "no interface 'up7'" in result.output  # every problem
    assert not (tmp_path / "x.db").exists()  # nothing was served


async def test_every_step_and_the_end_are_reported(tmp_path: Path) -> None:
    runtime = Runtime(
        load_topology(bundled_topology_path()), tmp_path / "s.db", options=RuntimeOptions(run_notifier=False)
    )
    await runtime.start()
    try:
        lines: list[str] = []

        async def no_sleep(seconds: float) -> None:
            return None

        scenario = load_scenario(SCENARIOS / "uplink-trouble.yaml")
        await run_scenario(scenario, runtime.faults, report=lines.append, sleep=no_sleep)
        fired = [line for line in lines if line.startswith("t=")]
        assert len(fired) == len(scenario.steps)
        assert lines[-1] == "scenario uplink-trouble ended; cleared slow"  # the delay was still on
    finally:
        await runtime.stop()
