"""The two line-based YAML setters the appliance edits profile values with, ported
exactly so the publisher can refuse values they would break (pure):

- :func:`set_yaml_path`, setup-engine's (``ee/appliance/host-service/setup-engine.mjs``):
  fails when a key path is absent;
- :func:`set_yaml_value_updater`, the in-cluster updater's (in
  ``ee/appliance/flux/base/platform/appliance-status.yaml``): only a line ending in ``:``
  opens a parent key.
"""

from __future__ import annotations

import json
import re

from steps.errors import BadInput


class YamlPathNotFound(BadInput):
    """The line-based setter found no line for the key path (the appliance would fail)."""

    def __init__(self, path: str) -> None:
        super().__init__(
            f"key path {path} not found by the line-based setter",
            hint="the path must be written as block-style 'key:' lines, one level of "
            "indentation per key, with no blank or less-indented comment line inside the block",
        )
        self.path = path


# -- the appliance's YAML setter -------------------------------------------------

# The appliance (ee/appliance/host-service/setup-engine.mjs, setYamlScalar) walks
# the text line by line: a line's indentation pops every open key at the same or
# a deeper indentation -- *any* line, including blank and comment lines -- and a
# line '<indent><key>:' opens a key. The first line whose open keys are the
# path's parents and whose key is its last element is replaced by
# '<indent><key>: <JSON string>' (a trailing comment is dropped). No such line:
# it throws, and the install fails. Reproduced here exactly, including JS's
# notion of whitespace, so the publisher fails where the appliance would.
_JS_SPACE = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_KEY_LINE = re.compile(rf"^([{_JS_SPACE}]*)([A-Za-z0-9_-]+):(?:[{_JS_SPACE}]|$)")
_INDENT = re.compile(rf"^[{_JS_SPACE}]*")
_PATH_PART = re.compile(r"^[A-Za-z0-9_-]+$")


def set_yaml_path(text: str, path: str, value: str) -> str:
    """Set the scalar at dotted ``path`` the way the appliance does; raise if absent.

    ``value`` is a plain string; it is written as a JSON double-quoted scalar,
    like the appliance's ``yamlString``. Only block-style mappings are walked: a
    flow mapping (``image: {tag: x}``), a quoted key, or a blank line or a
    less-indented comment inside the block hides the path, and then this raises
    :class:`YamlPathNotFound`, because the appliance would fail the same way.
    Line endings become ``\\n``.
    """
    target = path.split(".")
    if not all(_PATH_PART.match(part) for part in target):
        raise BadInput(f"invalid key path {path!r}: expected dotted keys like setup.image.tag")
    parents, leaf = target[:-1], target[-1]
    output: list[str] = []
    stack: list[tuple[int, str]] = []
    replaced = False
    for line in re.split(r"\r?\n", text):
        indent_match = _INDENT.match(line)
        indent = len(indent_match.group(0)) if indent_match else 0
        while stack and stack[-1][0] >= indent:
            stack.pop()
        match = _KEY_LINE.match(line)
        if match:
            key = match.group(2)
            if not replaced and key == leaf and [k for _, k in stack] == parents:
                output.append(f"{line[:indent]}{key}: {_yaml_string(value)}")
                replaced = True
                stack.append((indent, key))
                continue
            stack.append((indent, key))
        output.append(line)
    if not replaced:
        raise YamlPathNotFound(path)
    return "\n".join(output)


def _yaml_string(value: str) -> str:
    # JSON.stringify(String(value)): a JSON string is a valid YAML double-quoted scalar.
    return json.dumps(value, ensure_ascii=False)


# -- the in-cluster updater's YAML setter ------------------------------------------

# An upgrade on a running appliance is done by the update Job that the status service
# (ee/appliance/flux/base/platform/appliance-status.yaml, setYamlValue) starts: it edits
# the release's profile values with a second, different line setter. A line is first
# stripped of leading JS whitespace; its indentation pops every open key at the same or
# a deeper indentation. Only a line that *ends* with ':' (and does not start with '- ')
# opens a key -- the whole rest of the line, so 'image:  # note' or 'image: ' (trailing
# space) opens nothing and hides every key under it. Every other line whose open keys
# are the path's parents and that starts with '<last key>:' is replaced by
# '<indent><last key>: <JSON string>' -- every such line, not only the first; a line
# 'tag:' with nothing after it opens a key instead and is never replaced. No line
# replaced: it throws, and the upgrade fails. The port is the consume library's
# (``set_yaml_value``, the same in its JavaScript twin), so the publisher and the
# appliance-side library judge a release by one implementation.


def set_yaml_value_updater(text: str, path: str, value: str) -> str:
    """Set the scalar at dotted ``path`` the way the in-cluster updater does; raise
    :class:`YamlPathNotFound` where it would throw. ``value`` is written as a JSON string
    (the updater's ``yamlString``). Line endings become ``\\n``."""
    from consume import release_consume

    target = path.split(".")
    if not all(_PATH_PART.match(part) for part in target):
        raise BadInput(f"invalid key path {path!r}: expected dotted keys like image.tag")
    try:
        return release_consume.set_yaml_value(text, target, _yaml_string(value))
    except ValueError:
        raise YamlPathNotFound(path) from None
