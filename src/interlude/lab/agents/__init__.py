"""Agents a lab runs inside node namespaces (snmpd, sshd + netconfd, the OAM responder).

Each agent module exposes a ``start_*`` function returning an :class:`~interlude.lab.agents.base.AgentProcess`;
the lab supervisor records it in the lab's state folder and stops it by PID.
"""
