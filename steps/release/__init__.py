"""The release: values profiles (:mod:`.profiles`), the release manifest as a value with
its schema and consumer-contract checks (:mod:`.manifest`), the app and control-plane images
(:mod:`.images`), the step plan, preflight and manifest push (:mod:`.plan`), resolving and
verifying as an appliance does (:mod:`.verify`) and comparing releases (:mod:`.diff`)."""
