"""Hera WorkflowTemplates for the appliance release: wiring only, no business logic.

- :mod:`pipelines.common`: the shared defaults (step image, credentials, retry,
  security context, deadlines, pod GC, the channel mutex, the exit report).
- :mod:`pipelines.release`: ``alga-appliance-release``, generated from
  :func:`steps.release.release_steps` (the list ``alga-release publish`` runs).
- :mod:`pipelines.promote`: ``alga-appliance-promote``.

``make workflows`` renders them with ``hera generate yaml`` into ``workflows-generated/``
(committed; ``make check-workflows`` fails when the committed files are stale). This
package is not part of the ``alga-release`` distribution: only the repository uses it.
"""
