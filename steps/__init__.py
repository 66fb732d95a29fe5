"""Alga PSA appliance release engineering: the publish side.

Every pipeline step is a subcommand of the ``alga-release`` console script
(:mod:`steps.cli`). The modules here are a library: pure functions on
in-memory data at the core, with the OCI registry (:mod:`steps.oci`), the
file system and the environment touched only by thin adapters.

What ``duplicates`` still lists inside ``steps/``, and why it stays (each pair was read;
where the logic was the same it now lives once: the folder walk in :mod:`steps.fstree`,
digest fields in ``Digest.parse_for``, JSON objects in ``archive.json_object``, upload
commits and manifest reads in the client, a copy's result keys, ``buildinfo``'s git calls):

- **Command declarations** (``cli/*.py``): ``options.command(...)``, a few
  ``add_argument``, ``options.leaf``, ``set_defaults(handler=..., human=...)``. The shape is
  argparse's; what differs is each command's own help text. Options used by more than one
  command are declared once in ``cli/options.py``; the rest belong to their command.
- **Keyword calls into one API**: ``move_channel(...)`` from publish, promote and rollback,
  ``rules.plan_move(...)`` and their signatures; ``subprocess.run``, ``api.build`` and
  ``yaml.dump_all`` with their keyword lists; ``RegistryClient`` calls with their keywords.
  Spelling each argument out is the point (no positional mix-ups on a channel move).
- **Declarations of data**: frozen dataclasses with their fields (``Descriptor``,
  ``Reference``, ``KubeObject``, ``PublishParams``, ``WrittenKeyPair``...), ``to_json``
  dicts of their fields, constant tables (Flux apiVersions, image repositories), import
  lists and ``oci/__init__``'s re-exports of its errors.
- **A protocol and its one implementation** (``controlplane/engine.py``): ``Engine.build``
  declares the signature the Docker-API adapter then implements.
- **Two reads of one report** (``signing/gates.py``): ``signature_report`` (show) and
  ``require_signed`` (refuse) take the same parameters; the second calls the first.
- **File errors worded for their input** (``bundle/publish.py`` reading ``--charts``,
  ``cli/context.py`` writing ``--out``): the same ``try/except OSError`` shape, each naming
  its own flag and fix.
"""

__version__ = "0.1.0"

from steps import yamlprime as _yamlprime  # before any module imports yaml

_yamlprime.prime()
