"""The ``snmp`` southbound adapter (entry point ``snmp``, extra ``snmp``): pysnmp 7 asyncio over IF-MIB.

Modules: :mod:`.adapter` (the contract: interfaces, counters, events; node settings documented there),
:mod:`.session` (the only pysnmp command-generator code; error mapping), :mod:`.fastv2c` (a small BER codec
for SNMPv2c GET/GETBULK, 10x faster than pyasn1), :mod:`.traps` (the shared notification receiver),
:mod:`.profile` (OID maps as data, ``interlude/data/snmp/*.yaml``), :mod:`.engine` (a pysnmp engine on a bound
UDP socket). docs/snmp.md is the user guide.
"""
