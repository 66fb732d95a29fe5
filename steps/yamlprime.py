"""PyYAML's import, made 7-8 ms cheaper (run by :mod:`steps` before anything imports yaml).

PyYAML's pure-Python reader compiles, when yaml is imported, a character class of every
printable code point (:data:`PYYAML_NON_PRINTABLE`, half of the whole import), though
with libyaml (:mod:`steps.yamlload` uses it) that reader never runs. The class's
complement (:data:`NON_PRINTABLE`) is the same set of code points and compiles in under
1 ms: :func:`prime` puts it in the re module's cache under PyYAML's pattern, so PyYAML's
``re.compile`` finds it there. A Python whose cache is kept otherwise, or a PyYAML with
another pattern, simply compiles its own; ``tests/unit/test_yamlload.py`` checks that the
two match the same code points (all 1,114,112) and that the installed PyYAML uses ours.
"""

from __future__ import annotations

import re
import sys

PYYAML_NON_PRINTABLE = "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
NON_PRINTABLE = "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]"


def prime() -> None:
    """Seed the cache, unless yaml is already imported (then it is too late to matter)."""
    cache = getattr(re, "_cache", None)
    if "yaml" not in sys.modules and isinstance(cache, dict):
        cache.setdefault((str, PYYAML_NON_PRINTABLE, 0), re.compile(NON_PRINTABLE))
