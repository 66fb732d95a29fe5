"""Helm charts: ``.helmignore`` rules (:mod:`.ignore`), deterministic packaging and the
content-derived version policy (:mod:`.package`), and pushing them as Helm OCI artifacts
with immutable tags (:mod:`.publish`)."""
