"""The ``alga-release`` command line, the project's only boundary: options (each declared
once, with its environment default), exit codes, human and JSON output, and one module per
command group. Domain modules never import it. (The command declarations share argparse's
shape, which `duplicates` lists: see the note in :mod:`steps` on why it stays.)"""

from steps.cli.app import main, run

__all__ = ["main", "run"]
