"""The Flux config bundle: the overlay's YAML edited by line (:mod:`.yamledit`), the Flux
rules that pin every HelmRelease to a pushed chart (:mod:`.flux`) and the checks on what
kustomize builds from the result (:mod:`.checks`), the artifact as
``flux push artifact`` makes it (:mod:`.artifact`), the kustomize validation
(:mod:`.kustomize`) and the publish step (:mod:`.publish`)."""
