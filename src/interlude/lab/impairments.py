"""Fault injection for *every* node of a running lab, whatever adapter drives it (issue 3).

In a lab, an ``snmp`` or ``netconf`` node is a network namespace like a ``lab`` node: its links are veths the
lab can cut, delay (relay), drop (nftables) or shape (tbf), even though the node's own adapter speaks SNMP or
NETCONF and has no :class:`~interlude.adapters.base.ImpairmentControl`. :class:`LabImpairmentControl` is that
capability for one node of the lab, done by the lab itself (:func:`interlude.lab.builder.apply_impairment`,
exactly what the ``lab`` adapter and ``interlude lab impair NODE:IF`` do).

The hook: :func:`impairment_control_for` is what :class:`interlude.app.runtime.Runtime` asks (through an
optional import by module name, so the service layer never imports lab code) for a node whose adapter lacks
``ImpairmentControl``. It answers None unless a lab of the topology is recorded *up* and has that node, so
``/interlude/v1/faults`` behaves exactly as before on emulated topologies and real gear (the
:class:`~interlude.errors.CapabilityError` naming the node). It reads the lab state at every call: a lab
brought up (or down) after ``interlude serve`` started is seen at the next fault.

Where the lab state lives: ``context.resources["lab-state-dir"]`` when set, else
``<context.state_dir>/labs/<topology>`` when a lab is recorded there, else the default of
:mod:`interlude.lab.state` (the same rule as the ``lab`` adapter).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from interlude.adapters.base import AdapterContext
from interlude.errors import DeviceConnectionError, LabError, NotFoundError
from interlude.lab.state import STATE_FILE, LabState, default_state_dir, load_lab_state, read_state, state_lock
from interlude.topology.model import Impairment


def lab_state_dir(context: AdapterContext) -> Path:
    """The state folder of the lab of ``context.topology`` (see the module docstring)."""
    explicit = context.resources.get("lab-state-dir")
    if isinstance(explicit, str | Path):
        return Path(explicit)
    candidate = context.state_dir / "labs" / context.topology.name
    if (candidate / STATE_FILE).exists():
        return candidate
    return default_state_dir(context.topology)


class LabImpairmentControl:
    """:class:`~interlude.adapters.base.ImpairmentControl` for one node of a running lab, any kind."""

    def __init__(self, node: str, state_dir: Path) -> None:
        self.node = node
        self.state_dir = state_dir

    async def set_impairment(self, interface: str, impairment: Impairment) -> None:
        """Replace the impairment of the link attached to ``node:interface`` (down cuts the far end)."""
        from interlude.lab.builder import apply_impairment

        def work() -> None:
            with state_lock(self.state_dir):
                try:
                    state = load_lab_state_at(self.state_dir)
                    wire = state.wire_of(self.node, interface)
                except NotFoundError as exc:
                    raise DeviceConnectionError(str(exc), node=self.node) from exc
                if state.status != "up":
                    raise DeviceConnectionError(f"the lab {state.name!r} is {state.status}, not up", node=self.node)
                near = wire.a if (wire.a.node, wire.a.ifname) == (self.node, interface) else wire.b
                apply_impairment(state, wire, impairment, near=near)
                state.save()

        await asyncio.to_thread(work)


def load_lab_state_at(state_dir: Path) -> LabState:
    """The lab recorded in ``state_dir`` (:class:`NotFoundError` when there is none)."""
    state = read_state(state_dir)
    if state is None:
        raise NotFoundError(f"no lab is recorded in {state_dir} any more (was it taken down?)")
    return state


def impairment_control_for(node: str, context: AdapterContext) -> LabImpairmentControl | None:
    """The runtime's hook: a lab-level controller for ``node`` when a lab of the topology is up with it, else None.

    Never raises for a missing or unreadable lab (None keeps the fault API's usual capability error).
    """
    folder = lab_state_dir(context)
    try:
        state = load_lab_state(context.topology, folder)
    except (NotFoundError, LabError):  # no lab (or an unreadable one): the node simply has no impairments
        return None
    if state.status != "up" or node not in state.nodes:
        return None
    return LabImpairmentControl(node, folder)
