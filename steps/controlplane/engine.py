"""The container engine: a small :class:`Engine` interface and its Docker-API adapter
(:class:`DockerEngine`, on the Docker SDK), and the parsing of its build and push streams.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, BinaryIO, Protocol

from steps.errors import BadInput, ReleaseError, Transient
from steps.oci.errors import (
    AuthError,
    TransientRegistryError,
)
from steps.oci.reference import Digest

log = logging.getLogger("alga_release.controlplane")

# -- the engine ------------------------------------------------------------------------

Event = dict[str, Any]


class Engine(Protocol):
    """A Docker-API engine: build a context into a tagged image, push a tag.

    Both return the engine's JSON message stream; errors may come as messages.
    """

    def build(
        self,
        context: BinaryIO,
        *,
        dockerfile: str,
        tag: str,
        build_args: Mapping[str, str],
        platform: str | None,
    ) -> Iterable[Event]: ...

    def push(
        self, repository: str, tag: str, auth: Mapping[str, str] | None
    ) -> Iterable[Event]: ...


class DockerEngine:
    """:class:`Engine` over the Docker SDK (``docker.from_env()``: ``DOCKER_HOST``,
    ``DOCKER_TLS_VERIFY``, ``DOCKER_CERT_PATH``). Works with dockerd and with
    ``podman system service``."""

    def __init__(self, api: Any, where: str) -> None:
        self.api = api
        self.where = where

    @classmethod
    def connect(
        cls, wait: float = 30.0, timeout: float = 3600.0, docker_host: str | None = None
    ) -> DockerEngine:
        """Connect, waiting up to ``wait`` seconds for the engine to answer. The Docker SDK
        finds the engine from ``DOCKER_HOST`` itself; ``docker_host`` (the CLI passes that
        variable) only names it in messages."""
        docker = _docker_sdk()
        where = docker_host or "unix:///var/run/docker.sock (DOCKER_HOST unset)"
        deadline = time.monotonic() + max(0.0, wait)
        while True:
            try:
                client = docker.from_env(timeout=int(timeout))
                client.ping()
                log.info("engine at %s: %s", where, client.version().get("Version", "?"))
                return cls(client.api, where)
            except (docker.errors.DockerException, OSError) as exc:
                if time.monotonic() >= deadline:
                    raise EngineUnavailable(
                        f"cannot reach the container engine at {where}: {_short(exc)}",
                        hint="set DOCKER_HOST to a Docker-API engine (in Argo the "
                        "docker-in-docker sidecar, e.g. tcp://localhost:2375); "
                        "--engine-wait waits for it to start",
                    ) from None
                time.sleep(1.0)

    def _guard(self, doing: str, events: Iterable[Event]) -> Iterator[Event]:
        docker = _docker_sdk()
        try:
            yield from events
        except docker.errors.APIError as exc:
            raise EngineError(
                f"{doing}: the engine at {self.where} answered: {_short(exc)}"
            ) from None
        except (docker.errors.DockerException, OSError) as exc:
            raise EngineUnavailable(
                f"{doing}: lost the engine at {self.where}: {_short(exc)}"
            ) from None

    def build(
        self,
        context: BinaryIO,
        *,
        dockerfile: str,
        tag: str,
        build_args: Mapping[str, str],
        platform: str | None,
    ) -> Iterator[Event]:
        def start() -> Iterable[Event]:
            events: Iterable[Event] = self.api.build(
                fileobj=context,
                custom_context=True,
                dockerfile=dockerfile,
                tag=tag,
                buildargs=dict(build_args),
                platform=platform,
                rm=True,
                forcerm=True,
                decode=True,
            )
            return events

        return self._guard(f"building {tag}", _lazy(start))

    def push(self, repository: str, tag: str, auth: Mapping[str, str] | None) -> Iterator[Event]:
        def start() -> Iterable[Event]:
            events: Iterable[Event] = self.api.push(
                repository,
                tag=tag,
                auth_config=dict(auth) if auth else None,
                stream=True,
                decode=True,
            )
            return events

        return self._guard(f"pushing {repository}:{tag}", _lazy(start))


def _docker_sdk() -> Any:
    """The ``docker`` package (an optional dependency: the ``docker`` extra)."""
    try:
        # The Docker SDK ships no type information; everything taken from it is Any.
        import docker  # type: ignore[import-untyped]
    except ImportError:
        raise BadInput(
            "the Docker SDK is not installed",
            hint="pip install 'alga-appliance-release[docker]'",
        ) from None
    return docker


def _lazy(start: Any) -> Iterator[Event]:
    yield from start()


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


_PUSHED_DIGEST = re.compile(r"digest: (sha256:[a-f0-9]{64})")
_TRANSIENT_PUSH = re.compile(
    r"toomanyrequests|too many requests|\b50[234]\b|connection reset|connection refused|"
    r"i/o timeout|timeout|\bEOF\b",
    re.IGNORECASE,
)
_DENIED_PUSH = re.compile(r"denied|unauthori[sz]ed|authentication required|forbidden", re.I)


def _event_error(event: Event) -> str | None:
    if "error" in event or "errorDetail" in event:
        detail = event.get("errorDetail")
        message = event.get("error") or (detail.get("message") if isinstance(detail, dict) else "")
        return str(message or "unknown error").strip()
    return None


def follow_build(events: Iterable[Event], what: str) -> str | None:
    """Log the build output; return the image ID (``aux.ID``) or raise on an error."""
    image_id: str | None = None
    for event in events:
        error = _event_error(event)
        if error is not None:
            raise EngineError(
                f"building {what} failed: {error}",
                hint="see the build output above; fix the Dockerfile or the source",
            )
        stream = event.get("stream")
        if isinstance(stream, str):
            for line in stream.splitlines():
                if line.strip():
                    log.info("build: %s", line.rstrip())
        aux = event.get("aux")
        if isinstance(aux, dict) and isinstance(aux.get("ID"), str):
            image_id = aux["ID"]
    return image_id


def follow_push(events: Iterable[Event], what: str) -> Digest:
    """The manifest digest the engine pushed: ``aux.Digest`` (dockerd) or the
    ``<tag>: digest: sha256:... size: N`` status line (dockerd and podman)."""
    digest: Digest | None = None
    for event in events:
        error = _event_error(event)
        if error is not None:
            if _DENIED_PUSH.search(error):
                raise AuthError(
                    f"pushing {what}: the registry refused the engine's push: {error}",
                    hint="check ALGA_REGISTRY_USERNAME / ALGA_REGISTRY_PASSWORD (or "
                    "--password-file) and that the account may push this repository",
                )
            if _TRANSIENT_PUSH.search(error):
                raise TransientRegistryError(f"pushing {what}: {error}")
            raise EngineError(f"pushing {what} failed: {error}")
        aux = event.get("aux")
        if isinstance(aux, dict) and isinstance(aux.get("Digest"), str):
            digest = Digest.parse(aux["Digest"])
            continue
        status = event.get("status")
        if isinstance(status, str):
            match = _PUSHED_DIGEST.search(status)
            if match and digest is None:
                digest = Digest.parse(match.group(1))
            log.debug("push: %s", status.strip())
    if digest is None:
        raise EngineError(
            f"pushing {what}: the engine reported no digest",
            hint="the push may not have happened; look at the engine's log",
        )
    return digest


class EngineError(ReleaseError):
    """The container engine failed to build or push the image."""


class EngineUnavailable(Transient):
    """The container engine could not be reached (in Argo: the sidecar may not be up yet)."""
