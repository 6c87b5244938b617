"""Data shipped inside the package: the default topology, device profiles and JSON Schemas.

This folder is the only copy of that data (``[tool.setuptools.package-data]`` ships it in the wheel);
:mod:`interlude.data.search` finds a file here or in the folders a user adds in front of it.
"""
