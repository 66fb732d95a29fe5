"""The control-plane image: source references and image sources (:mod:`.sources`), the
manifest graph (:mod:`.graph`), copying by digest (:mod:`.copy`), ``.dockerignore`` rules
(:mod:`.dockerignore`), the build context (:mod:`.context`), the Docker-API engine
(:mod:`.engine`) and the build (:mod:`.build`)."""
