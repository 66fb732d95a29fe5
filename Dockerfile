# The alga-release step image: every pod of the Argo release and promote workflows runs it.
#
#   Python 3.11 (slim Debian) + this package, installed from a wheel built in a separate
#   stage; git (the checkout task, and the commit dates charts and bundle are stamped
#   with) and kubectl (`kubectl kustomize` validates the Flux bundle). No compilers, no
#   pip cache, no source tree. Runs as uid/gid 10001; works with a read-only root
#   filesystem (HOME and TMPDIR are /tmp, an emptyDir in the pod).
#
# Build and publish: see README, "Argo workflows and the step image". Pin the base
# images by digest when publishing (--build-arg PYTHON_IMAGE=...@sha256:...).
ARG PYTHON_IMAGE=docker.io/library/python:3.11-slim-bookworm

# -- kubectl: the release binary, checked against its published sha256 -----------------
FROM ${PYTHON_IMAGE} AS kubectl
ARG KUBECTL_VERSION=v1.34.5
ARG TARGETARCH
ADD https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/${TARGETARCH}/kubectl /tmp/kubectl
ADD https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/${TARGETARCH}/kubectl.sha256 /tmp/kubectl.sha256
RUN echo "$(cat /tmp/kubectl.sha256)  /tmp/kubectl" | sha256sum -c - \
    && install -m 0755 /tmp/kubectl /usr/local/bin/kubectl

# -- the wheels: this package and its dependencies ------------------------------------
FROM ${PYTHON_IMAGE} AS wheels
WORKDIR /src
COPY pyproject.toml README.md ./
COPY steps ./steps
COPY consume/__init__.py consume/release_consume.py ./consume/
# The docker extra: `control-plane build` drives a Docker-API engine (the dind sidecar).
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[docker]"

# -- the step image ---------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends git ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 alga \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin alga
COPY --from=kubectl /usr/local/bin/kubectl /usr/local/bin/kubectl
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links /wheels "alga-appliance-release[docker]" \
    && alga-release --version
ENV HOME=/tmp \
    TMPDIR=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /tmp
ENTRYPOINT ["alga-release"]
CMD ["--help"]
