"""steps.oci.bodies: one-shot bodies and regrouping."""

from __future__ import annotations

from steps.oci.bodies import regroup


def test_regroup_cuts_a_stream_into_parts_of_the_given_size() -> None:
    parts = [b"".join(part) for part in regroup(iter([b"abc", b"defg", b"h"]), 3)]
    assert parts == [b"abc", b"def", b"gh"]
