"""The consume library, packaged so the publisher can import it.

``release_consume.py`` is the deliverable: one stdlib-only file that the
control plane vendors as is. This ``__init__`` only makes it importable as
``consume.release_consume`` from the installed ``alga-release`` package, which
uses it to verify every publish exactly as an appliance resolves it.
"""
