"""Helm charts: ``.helmignore`` rules (:mod:`.ignore`), the chart as helm reads it
(:mod:`.chart`), deterministic packaging and the
content-derived version policy (:mod:`.package`), and pushing them as Helm OCI artifacts
with immutable tags (:mod:`.publish`)."""
