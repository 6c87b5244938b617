"""Domain events of Fault Management continuity checks, for the alarm subsystem (and anyone on the bus).

An FM job of type ``continuityCheck`` publishes, on the in-process event bus (its executions run in
:mod:`interlude.service.oamjobs.fm.run`):

- :class:`ContinuityLost` when the remote MEP stopped answering for 3.5 check intervals (ETH-CC's loss of
  continuity, "LOC"), once per loss;
- :class:`ContinuityRestored` when it answers again, or when monitoring stops while continuity was lost
  (``reason`` says which: ``answered`` or ``monitoringStopped``), so an alarm raised on LOC is always cleared.

The FM service also publishes each as a raw :class:`~interlude.domain.events.SouthboundReceived` with
``EventKind.CCM_LOSS`` / ``CCM_RESTORED`` (``source="oam"``, ``details``: ``meg``, ``mep``, ``remoteMep``,
``faultManagementJob``), which the alarm subsystem turns into one ``lossOfContinuity`` alarm per MEG.

``service_id``/``buyer`` name the monitored service; ``node``/``interface`` the source MEP's port; ``mep`` and
``remote_mep`` the topology MEP names; ``job_id`` the FM job.
"""

from __future__ import annotations

from dataclasses import dataclass

from interlude.domain.events import DomainEvent


@dataclass(frozen=True, slots=True)
class ContinuityEvent(DomainEvent):
    """Common fields of continuity events."""

    job_id: str
    service_id: str
    buyer: str | None
    mep: str
    remote_mep: str
    node: str
    interface: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ContinuityLost(ContinuityEvent):
    """Loss of continuity (LOC) between ``mep`` and ``remote_mep``."""


@dataclass(frozen=True, slots=True)
class ContinuityRestored(ContinuityEvent):
    """Continuity is back (``reason`` ``answered``) or no longer monitored (``monitoringStopped``)."""

    reason: str = "answered"
