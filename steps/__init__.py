"""Alga PSA appliance release engineering: the publish side.

Every pipeline step is a subcommand of the ``alga-release`` console script
(:mod:`steps.cli`). The modules here are a library: pure functions on
in-memory data at the core, with the OCI registry (:mod:`steps.oci`), the
file system and the environment touched only by thin adapters.
"""

__version__ = "0.1.0"
