"""The render-time image pins: the step image and the docker:dind image, by digest.

``make workflows STEP_IMAGE=<repo>@sha256:<hex> DIND_IMAGE=<repo>@sha256:<hex>`` runs
``python -m pipelines.pins`` first, which checks each value given and records it in
:data:`PINS_FILE` (``pipelines/pins.json``, committed next to the YAML it produced), then
renders. Each render, ``make check-workflows`` and the tests read that file, so the committed
YAML is always reproducible from the repository alone; an input left out keeps the value
already recorded (``STEP_IMAGE=`` with an empty value clears it).

What an unpinned image becomes in the YAML:

- **step image** (every pod): the ``step-image`` parameter gets **no default**, so Argo
  refuses a submission that does not pass ``-p step-image=<repo>@sha256:...`` with
  ``spec.arguments.step-image.value is required``, before any pod exists. A default that
  names an image which does not exist would instead leave the first pod in ``ImagePullBackOff``
  (no task can print a message from an image that cannot be pulled).
- **dind image** (control-plane build mode only): the parameter defaults to
  :data:`PLACEHOLDER_DIGEST`, and the checkout task refuses build mode with exit 2 and a
  message while it is still that (pin and copy mode never pull it).

What this module does not do: look anything up in a registry. ``make step-image`` prints the
digest of the image it pushed; pass that.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

PINS_FILE = Path(__file__).resolve().with_name("pins.json")
PLACEHOLDER_DIGEST = "sha256:" + "0" * 64
STEP_KEY = "step-image"
DIND_KEY = "dind-image"

_PINNED = re.compile(
    r"(?P<repository>[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+)"
    r"@(?P<digest>sha256:[0-9a-f]{64})"
)


class PinError(ValueError):
    """An image reference that is not ``<registry>/<repository>@sha256:<64 hex>``."""


def check_pinned(name: str, value: str) -> str:
    """``value`` if it is a registry/repository pinned by a real (not all-zero) sha256 digest."""
    match = _PINNED.fullmatch(value)
    if match is None:
        raise PinError(
            f"{name}={value!r}: expected <registry>/<repository>@sha256:<64 lowercase hex> "
            "(a digest, not a tag: `make step-image` prints the step image's)"
        )
    if match["digest"] == PLACEHOLDER_DIGEST:
        raise PinError(f"{name}={value!r}: the all-zero digest is the unpublished placeholder")
    return value


@dataclass(frozen=True)
class Pins:
    """The recorded pins; ``None`` = not published yet."""

    step_image: str | None = None
    dind_image: str | None = None

    def as_json(self) -> str:
        data = {STEP_KEY: self.step_image, DIND_KEY: self.dind_image}
        return json.dumps(data, indent=2) + "\n"


def load(path: Path = PINS_FILE) -> Pins:
    """The pins recorded in ``path`` (a missing file pins nothing); each is re-checked."""
    if not path.exists():
        return Pins()
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or set(data) - {STEP_KEY, DIND_KEY}:
        raise PinError(f"{path}: expected an object with only {STEP_KEY!r} and {DIND_KEY!r}")
    values: dict[str, str | None] = {}
    for key in (STEP_KEY, DIND_KEY):
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            raise PinError(f"{path}: {key} must be a string or null")
        values[key] = check_pinned(key, value) if value else None
    return Pins(step_image=values[STEP_KEY], dind_image=values[DIND_KEY])


def update(pins: Pins, *, step_image: str | None, dind_image: str | None) -> Pins:
    """``pins`` with each given value (``""`` clears it; ``None`` keeps the recorded one)."""

    def pick(name: str, given: str | None, recorded: str | None) -> str | None:
        if given is None:
            return recorded
        return check_pinned(name, given) if given else None

    return Pins(
        step_image=pick("STEP_IMAGE", step_image, pins.step_image),
        dind_image=pick("DIND_IMAGE", dind_image, pins.dind_image),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.pins", description="record the images `make workflows` pins"
    )
    parser.add_argument("--step-image", help="<repo>@sha256:<hex>; empty to clear")
    parser.add_argument("--dind-image", help="<repo>@sha256:<hex>; empty to clear")
    parser.add_argument("--file", type=Path, default=PINS_FILE, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        pins = update(load(args.file), step_image=args.step_image, dind_image=args.dind_image)
    except PinError as exc:
        print(f"pins: {exc}", file=sys.stderr)
        return 2
    text = pins.as_json()
    if not args.file.exists() or args.file.read_text(encoding="utf-8") != text:
        args.file.write_text(text, encoding="utf-8")
    for key, value in ((STEP_KEY, pins.step_image), (DIND_KEY, pins.dind_image)):
        print(f"pins: {key} = {value or 'not pinned'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
