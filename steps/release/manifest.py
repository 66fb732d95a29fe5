"""The release manifest (``alga.appliance.release/v1``): build, validate, serialise.

The release artifact is one OCI image manifest whose **config blob is this
JSON** (the appliance reads ``config.digest`` and ``JSON.parse``-s that blob;
an index, or an empty config with the JSON in a layer, breaks it). The same
bytes are also its one layer, titled ``release.json``, so generic OCI tools
can pull the manifest as a file.

Functions, all pure (no network, no clock, no file I/O except reading the
schema shipped in ``steps/data``)::

    build_manifest(...)          inputs -> manifest dict (carries support fields forward)
    validate_manifest(m)         JSON Schema + consumer contract; BadInput listing every problem
    manifest_problems(m)         the same checks, returned as a list instead of raised
    schema_problems(m)           the JSON Schema's part alone
    manifest_bytes(m)            canonical JSON bytes (the config blob)
    parse_manifest(data)         bytes -> dict (a JSON object, no duplicate keys) or BadInput
    release_oci_manifest(cfg)    the OCI image manifest bytes around a config blob
    release_annotations(m)       deterministic OCI annotations taken from a manifest
    set_yaml_path(text, p, v)    the appliance's line-based YAML setter, reproduced

Invariants:

- The same inputs always give the same manifest and the same bytes; nothing
  here reads the clock or the environment. ``provenance.created`` is an input.
- :func:`validate_manifest` reports every problem it finds, each prefixed with
  the field it concerns (``images.temporalWorker: ...``,
  ``profileValues["alga-core.single-node.yaml"]: ...``), sorted by field.
- The schema file is ``schemas/release-manifest.v1.schema.json``;
  ``steps/data/`` holds a byte-identical copy for the installed package (a unit
  test compares them). Rules that relate two fields live in code here and are
  named in the schema's description.

What this module does not do: push or fetch anything (the publish step does,
with :mod:`steps.oci`), check that referenced tags and digests exist in a
registry, or decide channel moves and downgrades (:mod:`steps.channels`).

Error tree (all :class:`~steps.errors.BadInput`, exit 2)::

    BadInput
     +-- ManifestInvalid      the manifest breaks the schema or the consumer contract
     +-- YamlPathNotFound     set_yaml_path: the key path is absent (the appliance would fail)
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from steps.config import KNOWN_CHARTS
from steps.errors import BadInput
from steps.oci import mediatypes as mt
from steps.oci.reference import Digest
from steps.release import profiles
from steps.release.setters import (
    _JS_SPACE,
    YamlPathNotFound,
    set_yaml_path,
    set_yaml_value_updater,
)

MANIFEST_SCHEMA = "alga.appliance.release/v1"
SCHEMA_FILE = "release-manifest.v1.schema.json"
CHANNELS: tuple[str, ...] = ("nightly", "stable")

#: The layer that carries the manifest JSON a second time, as a plain file.
RELEASE_LAYER_MEDIA_TYPE = "application/json"
RELEASE_LAYER_TITLE = "release.json"

Manifest = dict[str, Any]


class ManifestInvalid(BadInput):
    """The manifest breaks the schema or the consumer contract.

    ``problems`` lists every problem found, each starting with the field it
    concerns; the message shows them all.
    """

    def __init__(self, problems: Iterable[str], *, hint: str | None = None) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        count = len(self.problems)
        super().__init__(
            f"the release manifest is invalid ({count} problem{'s' if count != 1 else ''}):\n  - "
            + "\n  - ".join(self.problems),
            hint=hint,
        )


# -- build ----------------------------------------------------------------------


def build_manifest(
    *,
    version: str,
    channel: str,
    values_profile: str,
    images: Mapping[str, str],
    control_plane: str,
    config: Mapping[str, Any],
    charts: Mapping[str, Any],
    profile_values: Mapping[str, str],
    provenance: Mapping[str, Any],
    support_agent: str | None = None,
    support_receipt_keys: Mapping[str, str] | None = None,
    current: Mapping[str, Any] | None = None,
    image_digests: Mapping[str, str] | None = None,
) -> Manifest:
    """Assemble a release manifest from the results of the earlier steps (pure).

    - ``config``: the bundle step's result ``{"repository", "tag", "digest"}``;
      ``tag`` and ``version`` default to ``version`` when absent.
    - ``charts``: charts.json's ``{"charts": {name: {"version", "digest", ...}}}``
      or its inner mapping. Each chart's ``version`` goes to ``charts``; when any
      chart has a ``digest``, the digests go to ``chartDigests``.
    - ``provenance``: ``created`` (RFC 3339 UTC, from the source revision's
      commit time), optional ``source``, ``revision``, ``run``; keys whose value
      is None are left out.
    - ``support_agent`` / ``support_receipt_keys``: an explicit value wins; None
      carries the value forward from ``current`` (the channel's current release
      manifest); ``""`` / ``{}`` explicitly removes it. Absent in both: absent.
    - ``image_digests``: the images step's ``imageDigests`` (each app image's tag
      resolved to ``sha256:...``); recorded as ``imageDigests`` when given and non-empty,
      beside the bare tags in ``images``.

    Does not validate: call :func:`validate_manifest` on the result. Raises
    :class:`BadInput` only when an input lacks a field needed to assemble it
    (a chart without a version, a bundle result without repository or digest).
    Inputs are copied, never aliased or changed.
    """
    manifest: Manifest = {
        "schema": MANIFEST_SCHEMA,
        "version": version,
        "channel": channel,
        "valuesProfile": values_profile,
        "images": {name: tag for name, tag in sorted(images.items())},
        "controlPlane": control_plane,
        "config": _config_entry(config, version),
        "profileValues": {key: text for key, text in sorted(profile_values.items())},
        "provenance": {k: copy.deepcopy(v) for k, v in sorted(provenance.items()) if v is not None},
    }
    if image_digests:
        manifest["imageDigests"] = {k: str(v) for k, v in sorted(image_digests.items())}
    versions, digests = _chart_entries(charts)
    manifest["charts"] = versions
    if digests:
        manifest["chartDigests"] = digests

    agent = _carried(support_agent, current, "supportAgent")
    if agent not in (None, "", {}):
        manifest["supportAgent"] = agent
    keys = _carried(support_receipt_keys, current, "supportReceiptKeys")
    if keys not in (None, "", {}):
        manifest["supportReceiptKeys"] = keys
    return manifest


def _config_entry(config: Mapping[str, Any], version: str) -> dict[str, Any]:
    missing = [key for key in ("repository", "digest") if not config.get(key)]
    if missing:
        raise BadInput(
            f"the config bundle result lacks {' and '.join(missing)}",
            hint="pass the result of 'alga-release bundle publish' "
            '({"repository", "tag", "digest"})',
        )
    return {
        "repository": config["repository"],
        "tag": config.get("tag") or version,
        "version": config.get("version") or version,
        "digest": str(config["digest"]),
    }


def _chart_entries(charts: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    inner = charts.get("charts")
    if isinstance(inner, Mapping):
        charts = inner  # the whole charts.json document (no chart is named "charts")
    order = [n for n in KNOWN_CHARTS if n in charts] + sorted(set(charts) - set(KNOWN_CHARTS))
    versions: dict[str, Any] = {}
    digests: dict[str, Any] = {}
    for name in order:
        entry = charts[name]
        if isinstance(entry, str):
            versions[name] = entry
            continue
        if not isinstance(entry, Mapping) or not entry.get("version"):
            raise BadInput(
                f"chart {name}: no version in the charts result",
                hint="pass the output of 'alga-release charts publish' "
                '({"charts": {"<name>": {"version", "digest", ...}}})',
            )
        versions[name] = entry["version"]
        if entry.get("digest"):
            digests[name] = str(entry["digest"])
    return versions, digests


def _carried(explicit: Any, current: Mapping[str, Any] | None, key: str) -> Any:
    if explicit is not None:
        return copy.deepcopy(dict(explicit) if isinstance(explicit, Mapping) else explicit)
    if current is not None and key in current:
        return copy.deepcopy(current[key])
    return None


# -- bytes ----------------------------------------------------------------------


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    """Canonical JSON: sorted keys, no spaces, UTF-8 (not ASCII-escaped), no NaN.

    The same manifest always gives the same bytes, hence the same config digest
    and the same release digest; a re-run with unchanged inputs changes nothing.
    """
    return _canonical(manifest)


def _canonical(value: object) -> bytes:
    try:
        text = json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise BadInput(f"the release manifest cannot be written as JSON: {exc}") from None
    return text.encode("utf-8")


def parse_manifest(data: bytes) -> Manifest:
    """Parse a manifest's bytes: a JSON object in UTF-8, or :class:`BadInput`.

    Stricter than ``JSON.parse`` where that is ambiguous: duplicate keys (which
    one wins depends on the parser), NaN and Infinity are refused.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(
            f"the release manifest is not UTF-8: {exc.reason} at byte {exc.start}"
        ) from None
    try:
        value = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise BadInput(
            f"the release manifest is not valid JSON: {exc.msg} (line {exc.lineno}, "
            f"column {exc.colno})"
        ) from None
    except ValueError as exc:
        raise BadInput(f"the release manifest is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BadInput(f"the release manifest must be a JSON object, found {_json_type(value)}")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


# -- OCI manifest ----------------------------------------------------------------


def release_oci_manifest(config: bytes, *, annotations: Mapping[str, str] | None = None) -> bytes:
    """The release's OCI image manifest around ``config`` (the manifest JSON bytes).

    ``config`` is both the config blob (media type
    ``application/vnd.alga.appliance.release.config.v1+json``, what the
    appliance reads) and the one layer (``application/json``, titled
    ``release.json``). ``artifactType`` is ``application/vnd.alga.appliance.release.v1``.
    Canonical JSON bytes; ``annotations`` (when given and non-empty) go to the
    manifest's top level.
    """
    descriptor = {"digest": str(Digest.of(config)), "size": len(config)}
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "artifactType": mt.RELEASE_ARTIFACT,
        "config": {"mediaType": mt.RELEASE_CONFIG, **descriptor},
        "layers": [
            {
                "mediaType": RELEASE_LAYER_MEDIA_TYPE,
                **descriptor,
                "annotations": {mt.ANNOTATION_TITLE: RELEASE_LAYER_TITLE},
            }
        ],
    }
    if annotations:
        manifest["annotations"] = dict(annotations)
    return _canonical(manifest)


def release_annotations(manifest: Mapping[str, Any]) -> dict[str, str]:
    """OCI annotations for the release manifest, all taken from ``manifest`` (no clock).

    ``created`` from ``provenance.created``, ``version``, and ``source`` /
    ``revision`` when the provenance has them.
    """
    provenance = manifest.get("provenance")
    provenance = provenance if isinstance(provenance, Mapping) else {}
    candidates = {
        mt.ANNOTATION_CREATED: provenance.get("created"),
        mt.ANNOTATION_VERSION: manifest.get("version"),
        mt.ANNOTATION_SOURCE: provenance.get("source"),
        mt.ANNOTATION_REVISION: provenance.get("revision"),
    }
    return {key: value for key, value in candidates.items() if isinstance(value, str) and value}


# -- validate --------------------------------------------------------------------


def validate_manifest(
    manifest: Mapping[str, Any], *, helm_releases: Mapping[str, str] | None = None
) -> None:
    """Raise :class:`ManifestInvalid` (a :class:`BadInput`) listing every problem.

    Checks the JSON Schema (draft 2020-12, with format checking) and the
    consumer contract the schema cannot express:

    - ``profileValues`` has exactly the six keys ``<name>.<valuesProfile>.yaml``;
    - each of those texts is a YAML mapping, and for every key path the
      appliance edits (:data:`steps.profiles.REQUIRED_PATHS`) its line-based
      setter (:func:`set_yaml_path`) finds the path and the edited text still
      parses with the new value at that path;
    - ``config.tag`` and ``config.version`` equal ``version``;
    - with ``helm_releases`` (HelmRelease name -> chart, e.g.
      :data:`steps.profiles.HELM_RELEASE_CHARTS`), the charts the overlay
      installs are exactly the keys of ``charts``.
    """
    problems = manifest_problems(manifest, helm_releases=helm_releases)
    if problems:
        raise ManifestInvalid(
            problems,
            hint="each line names the field and what is wrong; the rules are in "
            "schemas/release-manifest.v1.schema.json (and its description for the rules "
            "checked in code)",
        )


def manifest_problems(
    manifest: Mapping[str, Any], *, helm_releases: Mapping[str, str] | None = None
) -> list[str]:
    """Every problem :func:`validate_manifest` would report (empty when valid), sorted."""
    problems = dict.fromkeys(schema_problems(manifest))  # ordered and de-duplicated
    if isinstance(manifest, Mapping):
        for problem in _contract_problems(manifest, helm_releases):
            problems[problem] = None
    return sorted(problems, key=_sort_key)


def schema_problems(manifest: object) -> list[str]:
    """The JSON Schema's verdict alone (no cross-field or profile-values checks), sorted.

    Patterns follow ECMA-262 (``$`` is the very end), as in the schema's other users.

    What the consume library accepts (its ``schema_problems``: the schema as stdlib code,
    as appliances run it) is accepted without importing jsonschema (35 ms in each step
    that validates); the two give the same verdict on every example and hundreds of
    mutations (tests/unit/consume/test_consume_schema.py). Anything else is judged and
    described by jsonschema; what it accepts and the consume library refuses is
    refused with the latter's problems: an appliance would refuse it.
    """
    from consume import release_consume

    refused = release_consume.schema_problems(manifest)
    if not refused:
        return []
    problems: dict[str, None] = {}
    for error in _validator().iter_errors(manifest):
        for problem in _describe(error):
            problems[problem] = None
    if not problems:
        for problem in refused:
            problems[f"{_pointer_field(problem)} (the appliance's rules)"] = None
    return sorted(problems, key=_sort_key)


def _pointer_field(problem: str) -> str:
    """A consume-library problem (``/images/algaCore: must ...``, ``(root): ...``) with
    its JSON pointer written as this module's fields (``images.algaCore: must ...``)."""
    pointer, _, rest = problem.partition(": ")
    if not pointer.startswith("/"):
        return f"{_field([])}: {rest}"
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/")]
    return f"{_field(parts)}: {rest}"


def _sort_key(problem: str) -> tuple[str, str]:
    field, _, rest = problem.partition(": ")
    return field, rest


# - JSON Schema -


def load_schema() -> dict[str, Any]:
    """The v1 JSON Schema shipped with the package (``steps/data``); a fresh copy."""
    return copy.deepcopy(_schema())


@functools.cache
def _schema() -> dict[str, Any]:
    # A real file beside the modules (as steps.buildinfo reads build-commit): no importlib.resources
    text = (Path(__file__).parent.parent / "data" / SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    # JSON Schema patterns are ECMA-262 regexes, whose '$' (no m flag) matches
    # only at the very end; Python's also matches before a final '\n', which
    # would let "1.4.0\n" pass. Every pattern in our schema ends in a bare '$'.
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    # ECMA-262's \s is not Python's (it takes U+FEFF and not U+001C..U+001F, U+0085):
    # spell it out, as the consume library does, so both agree on every string.
    pattern = pattern.replace(r"[^\s]", rf"[^{_JS_SPACE}]").replace(r"\S", rf"[^{_JS_SPACE}]")
    pattern = pattern.replace(r"\s", rf"[{_JS_SPACE}]")
    return re.compile(pattern)


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    if validator.is_type(instance, "string") and not _compiled(pattern).search(instance):
        from jsonschema import ValidationError  # type: ignore[import-untyped]

        yield ValidationError(f"{instance!r} does not match {pattern!r}")


_RFC3339 = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})\Z"
)


def _is_date_time(value: object) -> bool:
    # jsonschema checks "date-time" only when rfc3339-validator is installed;
    # check it ourselves so validation never depends on an optional package.
    if not isinstance(value, str):
        return True
    if not _RFC3339.match(value):
        return False
    try:
        datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


@functools.cache
def _validator() -> Any:
    # Imported here, not with the module: jsonschema (with referencing and attrs) costs
    # about 30 ms to import, which the steps that only read profile values or build the
    # manifest's bytes (the bundle step, a release's preflight) need not pay. jsonschema
    # ships no type information (no py.typed), and types-jsonschema is not among the test
    # extras; its API is used in a few typed wrappers here.
    from jsonschema import (  # untyped, as above (mypy reports it once per module)
        Draft202012Validator,
        FormatChecker,
        validators,
    )

    schema = _schema()
    checker = FormatChecker()
    checker.checks("date-time")(_is_date_time)
    cls = validators.extend(Draft202012Validator, {"pattern": _ecma_pattern})
    return cls(schema, format_checker=checker)


_IDENT = re.compile(r"^[A-Za-z0-9_-]+$")


def _field(path: Iterable[Any]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENT.match(str(part)):
            out += f".{part}" if out else str(part)
        else:
            out += f"[{json.dumps(str(part), ensure_ascii=False)}]"
    return out or "(manifest)"


def _short(value: Any, limit: int = 160) -> str:
    if value is _ABSENT:
        return "absent"
    text = repr(value)
    if len(text) <= limit:
        return text
    size = f" ({len(value)} characters)" if isinstance(value, str) else ""
    return f"{text[:limit]}...{size}"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _describe(error: Any) -> list[str]:
    """One schema error -> problem lines naming the field, readable without the schema."""
    path = list(error.absolute_path)
    field = _field(path)
    kind = error.validator
    value = error.validator_value
    instance = error.instance
    schema = error.schema if isinstance(error.schema, dict) else {}
    title = schema.get("title")

    if "propertyNames" in error.relative_schema_path:
        what = title or "key"
        return [f"{field}: key {instance!r} is not a valid {what}"]
    if kind == "required":
        return [
            f"{_field([*path, name])}: required field is missing"
            for name in value
            if isinstance(instance, dict) and name not in instance
        ]
    if kind == "additionalProperties" and value is False and isinstance(instance, dict):
        allowed = sorted(schema.get("properties", {}))
        where = "the manifest" if not path else field
        return [
            f"{_field([*path, name])}: unknown field (v1 is strict; {where} allows only "
            f"{', '.join(allowed)})"
            for name in sorted(set(instance) - set(allowed))
        ]
    if kind in ("pattern", "format"):
        what = title or (f"{value} value" if kind == "format" else "value")
        message = f"{field}: {_short(instance)} is not a valid {what}"
        if isinstance(instance, str) and "://" in instance:
            message += "; drop the scheme (the appliance adds oci:// itself where needed)"
        return [message]
    if kind == "const":
        return [f"{field}: must be {value!r}, found {_short(instance)}"]
    if kind == "enum":
        return [f"{field}: must be one of {', '.join(map(repr, value))}, found {_short(instance)}"]
    if kind == "type":
        return [f"{field}: must be {_article(value)}, found {_json_type(instance)}"]
    if kind in ("minProperties", "maxProperties"):
        bound = "at least {} required" if kind == "minProperties" else "at most {} allowed"
        return [f"{field}: has {len(instance)} entries, {bound.format(value)}"]
    if kind in ("minLength", "maxLength"):
        bound = "at least {} required" if kind == "minLength" else "at most {} allowed"
        return [f"{field}: is {len(instance)} characters long, {bound.format(value)}"]
    return [f"{field}: {error.message}"]


def _article(json_type: Any) -> str:
    if isinstance(json_type, str):
        return f"an {json_type}" if json_type[:1] in "aeiou" else f"a {json_type}"
    return " or ".join(_article(t) for t in json_type)


# - consumer contract -

#: Marks the value the contract check writes; JSON-quoted, so any text is safe.
_SENTINEL = "alga-release-contract-check"


def _contract_problems(
    manifest: Mapping[str, Any], helm_releases: Mapping[str, str] | None
) -> Iterator[str]:
    version = manifest.get("version")
    config = manifest.get("config")
    if _valid_version(version) and isinstance(config, Mapping):
        for key in ("tag", "version"):
            found = config.get(key)
            if isinstance(found, str) and found != version:
                yield (
                    f"config.{key}: {found!r} differs from version {version!r} (the bundle is "
                    "published under the release version; the appliance defaults config.tag "
                    "to version)"
                )

    profile = manifest.get("valuesProfile")
    values = manifest.get("profileValues")
    profile_ok = isinstance(profile, str) and profiles.PROFILE_PATTERN.match(profile)
    if profile_ok and isinstance(values, Mapping):
        yield from _profile_values_problems(values, str(profile))

    if helm_releases is not None:
        charts = manifest.get("charts")
        yield from _helm_release_problems(
            helm_releases, charts if isinstance(charts, Mapping) else {}
        )


def profile_values_problems(values: Mapping[str, Any], profile: str) -> list[str]:
    """The consumer-contract problems of one profile's values alone (no manifest needed):
    what a publish checks before it pushes anything."""
    return sorted(set(_profile_values_problems(values, profile)))


def _valid_version(version: object) -> bool:
    # An invalid version is reported by the schema; comparing with it would only add noise.
    pattern = _schema()["$defs"]["releaseVersion"]["pattern"]
    return isinstance(version, str) and bool(_compiled(pattern).search(version))


def _profile_values_problems(values: Mapping[str, Any], profile: str) -> Iterator[str]:
    expected = profiles.expected_keys(profile)
    others = {_split_values_key(key)[1] for key in values}
    other = next(iter(others)) if len(others) == 1 else None
    if other and other != profile and set(values) == set(profiles.expected_keys(other)):
        yield (
            f"profileValues: the six keys are for profile {other!r} but valuesProfile is "
            f"{profile!r}; the appliance reads <name>.{profile}.yaml"
        )
        return
    for key in expected:
        if key not in values:
            yield (
                f"{_field(['profileValues', key])}: missing (valuesProfile is {profile!r}; the "
                f"appliance reads <name>.{profile}.yaml for all six releases)"
            )
    for key in sorted(set(values) - set(expected)):
        name, other = _split_values_key(key)
        if name in profiles.VALUES_NAMES and other is not None:
            reason = f"it is for profile {other!r} but valuesProfile is {profile!r}"
        else:
            reason = f"the keys are <name>.{profile}.yaml for {', '.join(profiles.VALUES_NAMES)}"
        yield f"{_field(['profileValues', key])}: unexpected key ({reason})"
    for name in profiles.VALUES_NAMES:
        key = profiles.values_key(name, profile)
        text = values.get(key)
        if isinstance(text, str):
            yield from _checked_values_text(name, key, profile, text)


@functools.lru_cache(maxsize=64)
def _checked_values_text(name: str, key: str, profile: str, text: str) -> tuple[str, ...]:
    """:func:`_values_text_problems`, once per text: a publish checks the same six values
    files in its preflight, its precheck's manifest and its own (each check parses the
    text and every edit of it: about 10 ms a profile)."""
    return tuple(_values_text_problems(name, key, profile, text))


def _split_values_key(key: str) -> tuple[str, str | None]:
    for name in profiles.VALUES_NAMES:
        prefix = f"{name}."
        if key.startswith(prefix) and key.endswith(".yaml") and len(key) > len(prefix) + 5:
            return name, key[len(prefix) : -len(".yaml")]
    return key, None


def _values_text_problems(name: str, key: str, profile: str, text: str) -> Iterator[str]:
    where = f"{_field(['profileValues', key])} (profiles/{profile}/values/{key})"
    from steps import yamlload  # here: a step that only reads manifests loads no YAML

    try:
        data = yamlload.load(text, f"profiles/{profile}/values/{key}")
    except yamlload.YAMLError as exc:
        yield f"{where}: not valid YAML: {_yaml_error(exc)}"
        return
    if not isinstance(data, dict):
        yield f"{where}: must be a YAML mapping of values, found {_yaml_type(data)}"
        return
    failed: set[str] = set()
    for path in profiles.REQUIRED_PATHS[name]:
        # Each edit keeps the line's key and indentation, so paths that can be set
        # one at a time can also be set one after the other, as the appliance does.
        problem = _setter_problem(text, path, _SENTINEL, data)
        if problem:
            failed.add(path)
            yield f"{where}: {problem}"
    for path in profiles.UPDATER_PATHS[name]:
        # The updater's setter sees the same text on every upgrade of a running appliance;
        # a path the install-time setter already misses is reported once, above.
        problem = (
            None if path in failed else _setter_problem(text, path, _SENTINEL, data, updater=True)
        )
        if problem:
            yield f"{where}: {problem}"


def _setter_problem(
    text: str, path: str, value: str, parsed: dict[str, Any], *, updater: bool = False
) -> str | None:
    setter = set_yaml_value_updater if updater else set_yaml_path
    try:
        edited = setter(text, path, value)
    except YamlPathNotFound:
        if _lookup(parsed, path) is _ABSENT:
            return (
                f"key path {path} is missing; the appliance sets it with a line-based setter "
                "that fails when the path is absent"
            )
        if updater:
            return (
                f"key path {path} exists but the in-cluster updater's line setter cannot "
                "find it, so every upgrade of a running appliance would fail: each parent "
                "key must be a line that ends with ':' (no comment or space after it, not "
                "'- key:'), and the key itself must hold a value on its own line"
            )
        return (
            f"key path {path} exists but the appliance's line-based setter cannot find it: "
            "write it as block-style 'key:' lines (no flow mapping, no quoted key, no blank "
            "line or less-indented comment inside the enclosing block)"
        )
    who = "the in-cluster updater" if updater else "the appliance"
    from steps import yamlload

    try:
        result = yamlload.load(edited, f"{path} set the way {who} does")
    except yamlload.YAMLError as exc:
        return (
            f"setting {path} the way {who} does gives invalid YAML ({_yaml_error(exc)}); "
            f"{path} must hold a scalar on its own line"
        )
    if not isinstance(result, dict) or _lookup(result, path) != value:
        return (
            f"setting {path} the way {who} does changes another line (the value at "
            f"{path} stays {_short(_lookup(parsed, path))}); is the key duplicated, or inside a "
            "block scalar?"
        )
    if updater and result != _with_value(parsed, path, value):
        # The updater rewrites every matching line, not only the first.
        return (
            f"setting {path} the way {who} does also changes other values (it rewrites "
            f"every line '{path.rsplit('.', 1)[-1]}:' under the same parent keys); is the key "
            "repeated, e.g. inside a block scalar?"
        )
    return None


def _with_value(parsed: dict[str, Any], path: str, value: str) -> dict[str, Any]:
    out = copy.deepcopy(parsed)
    cur: Any = out
    *parents, leaf = path.split(".")
    for part in parents:
        cur = cur[part]
    cur[leaf] = value
    return out


_ABSENT: Any = object()


def _lookup(data: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(data, dict) or part not in data:
            return _ABSENT
        data = data[part]
    return data


def _yaml_error(exc: Exception) -> str:  # a yaml.YAMLError
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is not None:
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    return str(problem)


def _yaml_type(value: Any) -> str:
    if value is None:
        return "an empty document"
    if isinstance(value, list):
        return "a list"
    return f"a scalar ({_short(value)})"


def _helm_release_problems(
    helm_releases: Mapping[str, str], charts: Mapping[str, Any]
) -> Iterator[str]:
    by_chart: dict[str, list[str]] = {}
    for release, chart in sorted(helm_releases.items()):
        by_chart.setdefault(chart, []).append(release)
    for chart in sorted(set(by_chart) - set(charts)):
        releases = ", ".join(by_chart[chart])
        yield (
            f"{_field(['charts', chart])}: missing; the overlay's HelmRelease {releases} "
            "installs it"
        )
    for chart in sorted(set(charts) - set(by_chart)):
        yield f"{_field(['charts', chart])}: no HelmRelease in the overlay installs this chart"
