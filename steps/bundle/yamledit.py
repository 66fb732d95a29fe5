"""YAML files of the overlay: parse with file:line errors, edit, and write back minimally.

The overlay's rewrite (:mod:`steps.bundle_flux`) is a pure function over *parsed
documents*: it says which documents change and how, as a few :data:`Edit` operations
(set a scalar, delete a key, replace a key by another) plus whole documents to append.
This module applies them twice:

* to the parsed documents (:func:`apply_edits`): the truth of what the file must hold;
* to the file's text (:func:`render_file`), by splicing only the edited spans, located
  with the composed nodes' marks, so comments, quoting, key order and blank lines survive
  and the diff against the source is a line or two.

The spliced text is then parsed again and must equal the edited documents exactly; if it
does not (an anchor, a flow-style mapping, a block scalar, a key on a ``- `` line: any
layout the splicer does not handle), the file is re-serialised with a YAML dump
(``sort_keys=False``; number and bool look-alikes quoted) instead: key and document order
are kept, comments are lost. Either way the result parses to exactly the edited documents. A file
with no edit keeps its bytes.

Pure: no file system, no network. PyYAML only (safe loader and dumper).
"""

from __future__ import annotations

import copy
import functools
import itertools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from steps import yamlload
from steps.errors import BadInput

PathKey = str | int
KeyPath = tuple[PathKey, ...]

YAML_SUFFIXES = (".yaml", ".yml")
_PLAIN_SAFE = re.compile(r"[A-Za-z0-9_./@+-][A-Za-z0-9_./:@+=,~-]*\Z")
_TRAILER = re.compile(r"[ \t]*(#[^\n]*)?\r?\n?\Z")


def is_yaml(path: str) -> bool:
    return path.lower().endswith(YAML_SUFFIXES)


@dataclass(frozen=True)
class YamlFile:
    """One YAML file: its text, parsed documents and composed nodes (same order)."""

    path: str
    text: str
    docs: tuple[Any, ...]
    nodes: tuple[yaml.Node, ...]

    def line_of(self, index: int) -> int:
        """1-based line where document ``index`` starts."""
        return int(self.nodes[index].start_mark.line) + 1


# -- edits ------------------------------------------------------------------


@dataclass(frozen=True)
class SetScalar:
    """Set ``path`` (a mapping key) to the string ``value``; the key is added at the end
    of its mapping when absent (the mapping itself must exist)."""

    path: KeyPath
    value: str


@dataclass(frozen=True)
class DeleteKey:
    """Remove the key ``path`` from its mapping (no-op when absent)."""

    path: KeyPath


@dataclass(frozen=True)
class ReplaceKey:
    """Replace the key ``path`` by ``new_key: value`` at the same position; when ``path``
    is absent, ``new_key: value`` is added at the end of its mapping (which must exist)."""

    path: KeyPath
    new_key: str
    value: object


Edit = SetScalar | DeleteKey | ReplaceKey


# -- parsing ----------------------------------------------------------------


#: Files up to this size are parsed once per process: a whole publish reads the overlay in
#: its preflight, its bundle step and its manifest step.
_CACHED_FILE = 256 * 1024


def parse_yaml(path: str, data: bytes) -> YamlFile:
    """Parse every document of ``data``; :class:`BadInput` names the file, line and column.

    The result is shared between callers that parse the same bytes under the same path
    (its documents must not be modified: :func:`apply_edits` works on a copy)."""
    if len(data) <= _CACHED_FILE:
        return _parse_cached(path, data)
    return _parse(path, data)


@functools.lru_cache(maxsize=512)
def _parse_cached(path: str, data: bytes) -> YamlFile:
    return _parse(path, data)


def _parse(path: str, data: bytes) -> YamlFile:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(
            f"{path}: not UTF-8 text (invalid byte at offset {exc.start})",
            hint="save the file as UTF-8; Flux and kustomize read YAML as UTF-8",
        ) from None
    try:
        composed = yamlload.compose_all(text, path)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        detail = exc.problem or "syntax error"
        if exc.context:
            detail = f"{detail} ({exc.context})"
        raise BadInput(
            f"{where}: invalid YAML: {detail}",
            hint="fix the YAML at that line; a bundle whose YAML does not parse breaks "
            "every appliance that pulls it",
        ) from None
    except yaml.YAMLError as exc:
        raise BadInput(
            f"{path}: invalid YAML: {exc}", hint="fix the YAML syntax of this file"
        ) from None
    return YamlFile(
        path, text, tuple(doc for _, doc in composed), tuple(node for node, _ in composed)
    )


def get_path(doc: object, path: KeyPath) -> object:
    """The value at ``path`` in nested mappings/sequences, or None."""
    cur: object = doc
    for key in path:
        if isinstance(key, str) and isinstance(cur, dict):
            cur = cur.get(key)
        elif isinstance(key, int) and isinstance(cur, list) and 0 <= key < len(cur):
            cur = cur[key]
        else:
            return None
    return cur


# -- edits on parsed documents (the truth) ------------------------------------


def apply_edits(doc: object, edits: Sequence[Edit]) -> object:
    """A deep copy of ``doc`` with ``edits`` applied in order. Key order is kept;
    :class:`ReplaceKey` puts the new key where the old one was."""
    out = copy.deepcopy(doc)
    for edit in edits:
        parent = get_path(out, edit.path[:-1])
        key = edit.path[-1]
        if not isinstance(parent, dict) or not isinstance(key, str):
            raise ValueError(f"no mapping at {edit.path[:-1]!r}")
        if isinstance(edit, SetScalar):
            parent[key] = edit.value
        elif isinstance(edit, DeleteKey):
            parent.pop(key, None)
        else:
            items = [
                (edit.new_key, copy.deepcopy(edit.value)) if k == key else (k, v)
                for k, v in parent.items()
                if k != edit.new_key or k == key  # a key replaced by itself stays
            ]
            if key not in parent:
                items.append((edit.new_key, copy.deepcopy(edit.value)))
            parent.clear()
            parent.update(items)
    return out


# -- rendering --------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    data: bytes
    #: "unchanged", "patched" (only the edited spans changed) or "reserialised"
    #: (written by the YAML dumper: same documents, comments lost)
    how: str


def render_file(
    file: YamlFile,
    edits: Mapping[int, Sequence[Edit]],
    appended: Sequence[object] = (),
) -> Rendered:
    """The file's new bytes: ``edits`` per document index, then ``appended`` documents."""
    if not any(edits.values()) and not appended:
        return Rendered(file.text.encode("utf-8"), "unchanged")
    expected = [apply_edits(doc, edits.get(i, ())) for i, doc in enumerate(file.docs)]
    expected += [copy.deepcopy(d) for d in appended]
    patched = _patch_text(file, edits, appended)
    if patched is not None and _parses_to(patched, expected):
        return Rendered(patched.encode("utf-8"), "patched")
    text = yaml.dump_all(
        expected,
        Dumper=_Yaml12SafeDumper,
        sort_keys=False,
        default_flow_style=False,
        explicit_start=True,
        allow_unicode=True,
        width=1_000_000,
    )
    return Rendered(text.encode("utf-8"), "reserialised")


def dump_document(doc: object) -> str:
    """One document as block YAML, keys in their order, starting with ``---``."""
    return "---\n" + yaml.dump(
        doc,
        Dumper=_Yaml12SafeDumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=1_000_000,
    )


def _parses_to(text: str, expected: list[object]) -> bool:
    try:
        return yamlload.load_all(text, "the edited file") == expected
    except yaml.YAMLError:
        return False


@dataclass(frozen=True)
class _Splice:
    start: int
    end: int
    text: str


def _patch_text(
    file: YamlFile, edits: Mapping[int, Sequence[Edit]], appended: Sequence[object]
) -> str | None:
    text = file.text
    splices: list[_Splice] = []
    for index, doc_edits in edits.items():
        if not 0 <= index < len(file.nodes):
            return None
        for edit in doc_edits:
            splice = _splice_for(text, file.nodes[index], edit)
            if splice is None:
                return None
            splices.append(splice)
    # Apply from the end; for equal starts the deletion first, then the insertion.
    splices.sort(key=lambda s: (s.start, s.end), reverse=True)
    for later, earlier in itertools.pairwise(splices):
        if earlier.end > later.start:
            return None  # overlapping edits: let the re-serialiser handle it
    for s in splices:
        text = text[: s.start] + s.text + text[s.end :]
    if appended:
        if text and not text.endswith("\n"):
            text += "\n"
        text += "".join(dump_document(doc) for doc in appended)
    return text


def _find(
    node: yaml.Node, path: KeyPath
) -> tuple[yaml.MappingNode, yaml.Node | None, yaml.Node | None] | None:
    """(mapping holding the last key, its key node, its value node); key/value None if
    the key is absent. None when the path does not lead through block collections."""
    cur = node
    for i, key in enumerate(path):
        last = i == len(path) - 1
        if isinstance(key, str):
            if not isinstance(cur, yaml.MappingNode):
                return None
            found = None
            for k, v in cur.value:
                if isinstance(k, yaml.ScalarNode) and k.value == key:
                    found = (k, v)
            if last:
                return (cur, found[0], found[1]) if found else (cur, None, None)
            if found is None:
                return None
            cur = found[1]
        else:
            if not isinstance(cur, yaml.SequenceNode) or not 0 <= key < len(cur.value):
                return None
            if last:
                return None
            cur = cur.value[key]
    return None


def _last_end(node: yaml.Node) -> int:
    """Index just after the last character of ``node``'s own text (not the next token)."""
    if isinstance(node, yaml.ScalarNode) or getattr(node, "flow_style", False):
        return int(node.end_mark.index)
    children = node.value
    if not children:
        return int(node.end_mark.index)
    last = children[-1]
    return _last_end(last[1] if isinstance(last, tuple) else last)


def _line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1


def _line_end(text: str, index: int) -> int:
    """Index after the newline ending the line that holds ``index - 1``."""
    if index > 0 and text[index - 1] == "\n":
        return index
    nl = text.find("\n", index)
    return len(text) if nl < 0 else nl + 1


def _key_span(text: str, key: yaml.Node, value: yaml.Node) -> tuple[int, int] | None:
    """Whole lines holding ``key: value`` in a block mapping (trailing comment included)."""
    start = _line_start(text, key.start_mark.index)
    if text[start : key.start_mark.index].strip(" "):
        return None  # something precedes the key on its line ("- key: v")
    end_value = _last_end(value)
    end = _line_end(text, end_value)
    if not _TRAILER.match(text[end_value:end]):
        return None
    return start, end


def _splice_for(text: str, root: yaml.Node, edit: Edit) -> _Splice | None:
    found = _find(root, edit.path)
    if found is None:
        return None
    mapping, key, value = found
    if mapping.flow_style:
        return None
    if isinstance(edit, SetScalar):
        if value is None:
            return _insert_key(text, mapping, edit)
        if not isinstance(value, yaml.ScalarNode) or value.style in ("|", ">"):
            return None
        if value.style is None and value.value == "":
            return None  # "key:" with nothing: an empty plain scalar has no span to replace
        rendered = render_scalar(edit.value, value.style)
        if rendered is None:
            return None
        return _Splice(value.start_mark.index, value.end_mark.index, rendered)
    if key is None or value is None:
        if isinstance(edit, DeleteKey):
            return _Splice(0, 0, "")
        return _insert_block(text, mapping, edit)
    span = _key_span(text, key, value)
    if span is None:
        return None
    if isinstance(edit, DeleteKey):
        return _Splice(span[0], span[1], "")
    unit = 2
    if isinstance(value, yaml.MappingNode) and value.value and not value.flow_style:
        unit = max(1, value.value[0][0].start_mark.column - key.start_mark.column)
    block = dump_block(edit.new_key, edit.value, indent=key.start_mark.column, unit=unit)
    return _Splice(span[0], span[1], block)


def _insert_key(text: str, mapping: yaml.MappingNode, edit: SetScalar) -> _Splice | None:
    if not mapping.value:
        return None
    column = mapping.value[0][0].start_mark.column
    rendered = render_scalar(edit.value, None)
    key = edit.path[-1]
    if rendered is None or not isinstance(key, str) or not _PLAIN_SAFE.match(key):
        return None
    at = _line_end(text, _last_end(mapping))
    prefix = "" if at == 0 or text[at - 1] == "\n" else "\n"
    return _Splice(at, at, f"{prefix}{' ' * column}{key}: {rendered}\n")


def _insert_block(text: str, mapping: yaml.MappingNode, edit: ReplaceKey) -> _Splice | None:
    """An absent key replaced: ``new_key: value`` added as block lines after the mapping's
    last key, at its keys' indentation."""
    if not mapping.value or not _PLAIN_SAFE.match(edit.new_key):
        return None
    column = mapping.value[0][0].start_mark.column
    at = _line_end(text, _last_end(mapping))
    prefix = "" if at == 0 or text[at - 1] == "\n" else "\n"
    return _Splice(at, at, prefix + dump_block(edit.new_key, edit.value, indent=column))


def dump_block(key: str, value: object, *, indent: int, unit: int = 2) -> str:
    """``key: value`` as block YAML, every line indented by ``indent`` spaces."""
    dumped = yaml.dump(
        {key: value},
        Dumper=_Yaml12SafeDumper,
        sort_keys=False,
        default_flow_style=False,
        indent=max(2, unit),
        allow_unicode=True,
        width=1_000_000,
    )
    return "".join(
        (" " * indent + line) if line.strip() else line for line in dumped.splitlines(keepends=True)
    )


# Plain scalars that YAML 1.2 (kustomize, Flux, Helm: Go's yaml) reads as a number, bool or
# null, even where PyYAML's YAML 1.1 reads a string (1e3, 0o17, +1e3, .5): quote them.
_YAML12_NON_STRING = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|0o[0-7]+|0x[0-9a-fA-F]+|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
    r"|true|True|TRUE|false|False|FALSE|null|Null|NULL|~|yes|Yes|YES|no|No|NO|on|On|ON"
    r"|off|Off|OFF|y|Y|n|N)$"
)


class _Yaml12SafeDumper(yaml.SafeDumper):
    """PyYAML's safe dumper, but strings that YAML 1.2 readers take for numbers, bools or
    null are double-quoted (PyYAML's YAML 1.1 resolver leaves 1e3 or 0o17 plain)."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = '"' if _YAML12_NON_STRING.match(value) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Yaml12SafeDumper.add_representer(str, _represent_str)


def render_scalar(value: str, style: str | None) -> str | None:
    """``value`` as a YAML scalar, in the original quoting style when it had one."""
    if "\n" in value:
        return None
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    if style == '"':
        return json.dumps(value, ensure_ascii=False)
    if _PLAIN_SAFE.match(value) and not value.endswith(":") and not _YAML12_NON_STRING.match(value):
        try:
            if yamlload.load(value, "a scalar") == value:
                return value
        except yaml.YAMLError:
            pass
    return json.dumps(value, ensure_ascii=False)
