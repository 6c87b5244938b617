"""Fault injection for *every* node of a running lab, whatever adapter drives it.

In a lab, an ``snmp`` or ``netconf`` node is a network namespace like a ``lab`` node: its links are veths the
lab can cut, delay (relay), drop (nftables) or shape (tbf), even though the node's own adapter speaks SNMP or
NETCONF and offers no impairment control. :class:`LabImpairmentControl` is that capability for one node of
the lab, done by the lab itself (:func:`interlude.lab.plumbing.apply_impairment`, exactly what the ``lab``
adapter and ``interlude lab impair NODE:IF`` do).

The hook: :func:`impairment_control_for` is what the composition root (:class:`interlude.app.runtime.Runtime`)
asks for a node whose adapter lacks impairment control. It answers None unless a lab of the topology is
recorded *up* and has that node, so ``/interlude/v1/faults`` behaves exactly as before on emulated topologies
and real gear (the :class:`~interlude.errors.CapabilityError` naming the node). It reads the lab state at
every call: a lab brought up (or down) after ``interlude serve`` started is seen at the next fault.

Where the lab state lives: :func:`interlude.lab.state.partner_lab_dir` (the same rule as the ``lab`` adapter).
The lab sits below the adapters, so this module takes plain values (topology, folders), never an adapter
context.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from interlude.errors import DeviceConnectionError, LabError, NotFoundError
from interlude.lab.plumbing import apply_impairment
from interlude.lab.state import LabState, load_lab_state, partner_lab_dir, read_state, state_lock
from interlude.topology.model import Impairment, Topology


class LabImpairmentControl:
    """Impairment control (``set_impairment``) for one node of a running lab, any kind."""

    def __init__(self, node: str, state_dir: Path) -> None:
        self.node = node
        self.state_dir = state_dir

    async def set_impairment(self, interface: str, impairment: Impairment) -> None:
        """Replace the impairment of the link attached to ``node:interface`` (down cuts the far end)."""

        def work() -> None:
            with state_lock(self.state_dir):
                try:
                    state = load_lab_state_at(self.state_dir)
                    wire, near = state.end_of(self.node, interface)
                except NotFoundError as exc:
                    raise DeviceConnectionError(str(exc), node=self.node) from exc
                if state.status != "up":
                    raise DeviceConnectionError(f"the lab {state.name!r} is {state.status}, not up", node=self.node)
                apply_impairment(state, wire, impairment, near=near)
                state.save()

        await asyncio.to_thread(work)


def load_lab_state_at(state_dir: Path) -> LabState:
    """The lab recorded in ``state_dir`` (:class:`NotFoundError` when there is none)."""
    state = read_state(state_dir)
    if state is None:
        raise NotFoundError(f"no lab is recorded in {state_dir} any more (was it taken down?)")
    return state


def impairment_control_for(
    node: str, topology: Topology, partner_state_dir: Path, explicit_dir: Path | None = None
) -> LabImpairmentControl | None:
    """The runtime's hook: a lab-level controller for ``node`` when a lab of the topology is up with it, else None.

    ``partner_state_dir`` and ``explicit_dir`` locate the lab as :func:`~interlude.lab.state.partner_lab_dir`
    does. Never raises for a missing or unreadable lab (None keeps the fault API's usual capability error).
    """
    folder = partner_lab_dir(topology, partner_state_dir, explicit_dir)
    try:
        state = load_lab_state(topology, folder)
    except (NotFoundError, LabError):  # no lab (or an unreadable one): the node simply has no impairments
        return None
    if state.status != "up" or node not in state.nodes:
        return None
    return LabImpairmentControl(node, folder)
