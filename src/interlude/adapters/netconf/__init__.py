"""The ``netconf`` adapter (entry point ``netconf``, extra ``netconf``): ncclient over SSH, driven by profiles.

* :mod:`.adapter` - :class:`NetconfAdapter` (InterfaceControl, CounterSource, EventSource);
* :mod:`.session` - one ncclient session in its own worker thread; every library error mapped here;
* :mod:`.settings` - the node settings and secret resolution;
* :mod:`.profile` - device profiles: package data under ``interlude/data/netconf/`` (see docs/netconf.md).
"""
