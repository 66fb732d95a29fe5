"""The one YAML loader: safe, bounded, and as fast as libyaml allows.

Every YAML text this project reads from its inputs (Chart.yaml, a chart's values
files, the overlay's files and profile values, the release config, kustomize's
output) goes through :func:`load`, :func:`load_all` or :func:`compose_all`. Each
refuses, with :class:`~steps.errors.UnsafeYaml` (exit 2) naming the file, the line
and the limit, a text that is

* larger than :attr:`YamlLimits.max_bytes` (checked before parsing starts);
* nested deeper than :attr:`YamlLimits.max_depth` collections;
* using more than :attr:`YamlLimits.max_aliases` aliases, or aliases that would
  expand to more than :attr:`YamlLimits.max_alias_nodes` nodes (an "alias bomb":
  892 bytes that expand to hundreds of MB when the value is written out as JSON
  or handed to kustomize or helm, which refuse it only after minutes, if at all);
* holding an alias to a collection that contains it (a cycle: no JSON, no Go
  reader, accepts it).

The budgets are per file (all its documents together), so splitting a bomb over
many documents does not help. They are checked while the nodes are composed, so a
refused text costs at most the parse up to the offending node, never its
expansion; and nothing here runs a subprocess.

Scanning and parsing are libyaml's (PyYAML's ``CParser``) when PyYAML was built
with it, else PyYAML's pure-Python reader, scanner and parser; composition is this
module's own (iterative, so depth never exhausts the Python stack) and the values
are built by PyYAML's ``SafeConstructor`` (YAML 1.1 safe tags, as ``yaml.safe_load``).
Both paths apply exactly the same checks and give the same values and marks (line,
column and character index); :data:`WITH_LIBYAML` says which one runs.

Syntax errors are raised as PyYAML's ``yaml.YAMLError`` (callers word them for their
file); only limit breaches are :class:`~steps.errors.UnsafeYaml`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import SafeConstructor
from yaml.events import (
    AliasEvent,
    CollectionStartEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from steps.errors import UnsafeYaml

MiB = 1024 * 1024

#: PyYAML's syntax error, for callers that import YAML only through this module.
YAMLError = yaml.YAMLError


@dataclass(frozen=True)
class YamlLimits:
    """Bounds on one YAML file. The defaults fit every real chart, values file and
    overlay by a wide margin; a legitimate file that hits one is almost certainly
    generated wrong."""

    #: Size of the text in bytes (UTF-8). helm refuses any chart file over 5 MiB.
    max_bytes: int = 8 * MiB
    #: Collections nested inside each other (a Kubernetes object rarely passes 20).
    max_depth: int = 100
    #: Alias occurrences (``*name``, including ``<<: *name`` merges) in the file.
    max_aliases: int = 1000
    #: Nodes the aliases stand for once expanded (each alias counts its target's size).
    max_alias_nodes: int = 100_000


DEFAULT_LIMITS = YamlLimits()
#: kustomize's output: one large, generated, alias-free stream.
BUILD_OUTPUT_LIMITS = YamlLimits(max_bytes=256 * MiB)

WITH_LIBYAML: bool = bool(getattr(yaml, "__with_libyaml__", False))


class _PureLoader(
    yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, SafeConstructor, Resolver
):
    def __init__(self, stream: str | bytes) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)


_LoaderFactory = Callable[[str | bytes], Any]


def _c_loader_factory() -> _LoaderFactory | None:
    if not WITH_LIBYAML:
        return None
    from yaml._yaml import CParser

    class _CLoader(CParser, SafeConstructor, Resolver):
        def __init__(self, stream: str | bytes) -> None:
            CParser.__init__(self, stream)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

    return _CLoader


_C_LOADER = _c_loader_factory()


def _new_loader(data: str | bytes, *, pure: bool) -> Any:
    factory: _LoaderFactory = _PureLoader if pure or _C_LOADER is None else _C_LOADER
    return factory(data)


def _size(data: str | bytes) -> int:
    return len(data) if isinstance(data, bytes) else len(data.encode("utf-8", "surrogatepass"))


def _mib(n: int) -> str:
    return f"{n / MiB:.1f} MiB" if n >= MiB else f"{n} bytes"


class _Budget:
    """What one file has spent of its limits (shared by its documents)."""

    def __init__(self, source: str, limits: YamlLimits) -> None:
        self.source = source
        self.limits = limits
        self.aliases = 0
        self.alias_nodes = 0

    def refuse(self, mark: Any, what: str, limit: str) -> UnsafeYaml:
        line = int(mark.line) + 1 if mark is not None else None
        where = f"{self.source}:{line}" if line else self.source
        return UnsafeYaml(
            f"{where}: {what} (limit: {limit}); refused before anything was built or pushed",
            source=self.source,
            line=line,
            limit=limit,
            hint="write the values out instead of using anchors and aliases, and keep the "
            "file small and shallow; helm, kustomize and Flux choke on such YAML too",
        )


def _compose_document(loader: Any, budget: _Budget) -> Node:
    """One document's node graph from the event stream, iteratively, with the limits."""
    limits = budget.limits
    loader.get_event()  # DocumentStartEvent
    anchors: dict[str, Node] = {}
    sizes: dict[int, int] = {}  # id(anchored node) -> expanded size, once it is complete
    anchored: set[int] = set()
    # Open collections: (node, pending mapping key or None, size so far)
    stack: list[list[Any]] = []
    root: Node | None = None

    def attach(node: Node, size: int) -> Node | None:
        """Add a complete node to its parent; returns it when it is the document root."""
        if not stack:
            return node
        frame = stack[-1]
        parent = frame[0]
        if isinstance(parent, SequenceNode):
            parent.value.append(node)
        elif frame[1] is None:
            frame[1] = node
            frame[3] = size
            return None
        else:
            parent.value.append((frame[1], node))
            frame[1] = None
            size += frame[3]
        frame[2] += size
        return None

    while root is None:
        event: Any = loader.get_event()
        start: Any = event.start_mark  # libyaml's Mark or PyYAML's: the same fields
        end: Any = event.end_mark
        if isinstance(event, AliasEvent):
            target = anchors.get(str(event.anchor))
            if target is None:
                raise ComposerError(None, None, f"found undefined alias {event.anchor!r}", start)
            target_size = sizes.get(id(target))
            if target_size is None:
                raise budget.refuse(
                    start,
                    f"alias *{event.anchor} refers to a collection that contains it (a cycle)",
                    "no recursive aliases",
                )
            budget.aliases += 1
            budget.alias_nodes += target_size
            if budget.aliases > limits.max_aliases:
                raise budget.refuse(
                    start,
                    f"more than {limits.max_aliases} aliases",
                    f"{limits.max_aliases} aliases per file",
                )
            if budget.alias_nodes > limits.max_alias_nodes:
                raise budget.refuse(
                    start,
                    f"aliases expand to more than {limits.max_alias_nodes} nodes "
                    f"(*{event.anchor} alone stands for {target_size})",
                    f"{limits.max_alias_nodes} expanded alias nodes per file",
                )
            root = attach(target, target_size)
            continue
        anchor = getattr(event, "anchor", None)
        if anchor is not None and anchor in anchors:
            raise ComposerError(
                f"found duplicate anchor {anchor!r}; first occurrence",
                anchors[anchor].start_mark,
                "second occurrence",
                start,
            )
        if isinstance(event, ScalarEvent):
            tag = event.tag
            if tag is None or tag == "!":
                tag = loader.resolve(ScalarNode, event.value, event.implicit)
            node: Node = ScalarNode(tag, event.value, start, end, style=event.style)
            if anchor is not None:
                anchors[anchor] = node
                sizes[id(node)] = 1
            root = attach(node, 1)
        elif isinstance(event, CollectionStartEvent):
            if len(stack) >= limits.max_depth:
                raise budget.refuse(
                    start,
                    f"collections nested more than {limits.max_depth} deep",
                    f"depth {limits.max_depth}",
                )
            tag = event.tag
            if tag is None or tag == "!":
                kind = SequenceNode if isinstance(event, SequenceStartEvent) else MappingNode
                tag = loader.resolve(kind, None, event.implicit)
            if isinstance(event, SequenceStartEvent):
                node = SequenceNode(tag, [], start, None, flow_style=event.flow_style)
            else:
                assert isinstance(event, MappingStartEvent)
                node = MappingNode(tag, [], start, None, flow_style=event.flow_style)
            if anchor is not None:
                anchors[anchor] = node
                anchored.add(id(node))
            stack.append([node, None, 1, 0])
        elif isinstance(event, (SequenceEndEvent, MappingEndEvent)):
            node, _, size, _ = stack.pop()
            node.end_mark = end
            if id(node) in anchored:
                sizes[id(node)] = size
            root = attach(node, size)
        else:  # pragma: no cover - the parser emits no other event inside a document
            raise ComposerError(None, None, f"unexpected {type(event).__name__}", start)
    closing = loader.get_event()
    assert isinstance(closing, DocumentEndEvent)
    return root


def _documents(
    data: str | bytes, source: str, limits: YamlLimits, *, pure: bool
) -> list[tuple[Node, Any]]:
    size = _size(data)
    if size > limits.max_bytes:
        budget = _Budget(source, limits)
        raise budget.refuse(None, f"{_mib(size)} of YAML", f"{_mib(limits.max_bytes)} per file")
    loader = _new_loader(data, pure=pure)
    budget = _Budget(source, limits)
    out: list[tuple[Node, Any]] = []
    try:
        loader.get_event()  # StreamStartEvent
        while not loader.check_event(StreamEndEvent):
            assert loader.check_event(DocumentStartEvent)
            node = _compose_document(loader, budget)
            out.append((node, loader.construct_document(node)))
        loader.get_event()
    finally:
        loader.dispose()
    return out


def compose_all(
    data: str | bytes, source: str, *, limits: YamlLimits = DEFAULT_LIMITS, pure: bool = False
) -> list[tuple[Node, Any]]:
    """Every document of ``data`` as ``(node, value)``: the composed node (with marks, for
    editors that splice the text) and the value ``yaml.safe_load`` would build."""
    return _documents(data, source, limits, pure=pure)


def load_all(
    data: str | bytes, source: str, *, limits: YamlLimits = DEFAULT_LIMITS, pure: bool = False
) -> list[Any]:
    """The values of every document, as ``list(yaml.safe_load_all(data))`` gives them."""
    return [value for _, value in _documents(data, source, limits, pure=pure)]


def load(
    data: str | bytes, source: str, *, limits: YamlLimits = DEFAULT_LIMITS, pure: bool = False
) -> Any:
    """The value of the single document in ``data`` (None when there is none), as
    ``yaml.safe_load`` gives it; more than one document is a ``yaml.YAMLError``."""
    docs = _documents(data, source, limits, pure=pure)
    if len(docs) > 1:
        raise ComposerError(
            "expected a single document in the stream",
            docs[0][0].start_mark,
            "but found another document",
            docs[1][0].start_mark,
        )
    return docs[0][1] if docs else None
