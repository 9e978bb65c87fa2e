"""A thin adapter over the Docker SDK's low-level API: save, load, inspect, tag, push, pull.

Every engine (Docker of any version or store, Podman's compat API, remote hosts)
is driven through this one class.  Reading what an engine saved always goes
through the archive readers; this module only moves bytes and dicts.
`docker.errors` and connection failures are translated here, once, into the
harness's own exceptions.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections import defaultdict
from contextlib import contextmanager, nullcontext
from functools import cached_property
from pathlib import Path
from typing import IO, Any, Iterator
from urllib.parse import urlencode, urlsplit

import docker
import docker.auth
import docker.errors
import requests.exceptions
from docker.constants import MINIMUM_DOCKER_API_VERSION
from docker.tls import TLSConfig
from docker.utils.json_stream import json_stream

from harness.engines.body import BodyCut, BodyError, body_pieces
from harness.engines.identity import Identity, identify
from harness.engines.received import Earlier, Received
from harness.engines.spec import EngineSpec
from harness.engines.upload import post_file
from harness.errors import EngineError, EngineUnavailable, ImageNotFound

DEFAULT_TIMEOUT = 600
LIST_TRIES = 30


@contextmanager
def translated(engine: str | None, ref: str | None = None) -> Iterator[None]:
    """Turn SDK and transport errors into harness errors, naming the engine."""
    try:
        yield
    except docker.errors.APIError as e:
        if isinstance(e, docker.errors.NotFound) and ref is not None:  # ImageNotFound is a NotFound
            raise ImageNotFound(ref, engine=engine, detail=str(e.explanation or "")[:300] or None) from e
        raise EngineError(f"API error {e.status_code}: {e.explanation or e}", engine=engine) from e
    except BodyCut as e:
        raise EngineUnavailable(f"connection lost: {e}", engine=engine, hint="is the engine running?") from e
    except BodyError as e:
        raise EngineError(f"unreadable response: {e}", engine=engine) from e
    except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError,
            ConnectionError, FileNotFoundError) as e:
        raise EngineUnavailable(f"connection lost: {type(e).__name__}", engine=engine,
                                hint="is the engine running?") from e
    except (requests.exceptions.Timeout, TimeoutError) as e:
        raise EngineUnavailable("timed out", engine=engine) from e
    except docker.errors.DockerException as e:
        raise EngineUnavailable(str(e).splitlines()[0][:300], engine=engine) from e


class _APIClient(docker.APIClient):
    """The SDK's client, asking the engine for its API version at the first request that needs it
    (as ``version="auto"`` does when made): making an adapter never touches the engine, so only
    what is asked of an engine can fail, inside the caller's `translated`."""

    _known: str | None = None

    @property
    def _version(self) -> str:
        if self._known is None:
            self._known = self._retrieve_server_version()
        return self._known

    @_version.setter
    def _version(self, value: str | None) -> None:
        self._known = value


def api_client(spec: EngineSpec, timeout: int = DEFAULT_TIMEOUT) -> docker.APIClient:
    """Low-level SDK client for a spec (TLS verified by default, ssh through the ssh binary)."""
    tls: TLSConfig | bool = False
    if spec.tls is not None:
        client_cert = (spec.tls.client_cert, spec.tls.client_key) if spec.tls.client_cert and spec.tls.client_key else None
        tls = TLSConfig(client_cert=client_cert, ca_cert=spec.tls.ca_cert,
                        verify=spec.tls.ca_cert if (spec.tls.verify and spec.tls.ca_cert) else spec.tls.verify)
    base_url = spec.endpoint.replace("tcp://", "https://", 1) if tls and spec.endpoint.startswith("tcp://") else spec.endpoint
    with translated(spec.label or spec.redacted_endpoint):
        client = _APIClient(base_url=base_url, tls=tls, timeout=timeout, version=MINIMUM_DOCKER_API_VERSION,
                            use_ssh_client=spec.endpoint.startswith("ssh://"))
    if spec.tls is not None and spec.tls.ca_cert:
        # requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE replace the engine's own CA: never for an engine
        client.trust_env = False
    client._version = None  # asked for on first use
    return client


class Engine:
    """One engine, reached through its spec; `id` is what the engine reports itself to be."""

    def __init__(self, spec: EngineSpec, timeout: int = DEFAULT_TIMEOUT) -> None:
        self.spec = spec
        self.api = api_client(spec, timeout)
        self.busy: defaultdict[str, float] = defaultdict(float)  # seconds waited on the engine moving images

    @contextmanager
    def _busy(self, kind: str) -> Iterator[None]:
        """Time what the engine does for a save, load, push or pull: beside the harness's own work, it says
        where a run's time goes (`bench/suite_cost.py`)."""
        started = time.monotonic()
        try:
            yield
        finally:
            self.busy[kind] += time.monotonic() - started

    @cached_property
    def identity(self) -> Identity:
        with translated(self.spec.label or self.spec.redacted_endpoint):
            return identify(self.api.version(), self.api.info())

    @property
    def id(self) -> str:
        return self.identity.id

    def __repr__(self) -> str:
        return f"Engine({self.id} at {self.spec.redacted_endpoint})"

    def ping(self) -> bool:
        try:
            with translated(self.spec.redacted_endpoint):
                return bool(self.api.ping())
        except EngineError:
            return False

    def info(self) -> dict[str, Any]:
        with translated(self.id):
            return dict(self.api.info())

    def inspect(self, ref: str) -> dict[str, Any]:
        with translated(self.id, ref):
            return dict(self.api.inspect_image(ref))

    def images(self, *, retry: bool = True) -> list[dict[str, Any]]:
        """The engine's tagged images.

        A listing reads every image while other clients may be removing some, and image stores lose
        that race: containerd stores answer 404 "content digest …: not found" (7 of 74 listings on
        docker 28.5.2 while another client loaded and removed images), podman 4.3 answers 500 "image
        not known" (up to 88 of 150).  Listing changes nothing, so a failed one is asked again: 30
        tries leave one listing in 10^7 failing at podman's rate; one that keeps failing is an error.
        With `retry=False` it is asked once, and a failure is the engine's answer (what the
        concurrent-clients check measures)."""
        if not retry:
            with translated(self.id):
                return list(self.api.images(all=False))
        failure: docker.errors.APIError | None = None
        with translated(self.id):
            for attempt in range(1, LIST_TRIES + 1):
                try:
                    return list(self.api.images(all=False))
                except docker.errors.APIError as e:
                    failure = e
                    if attempt < LIST_TRIES:
                        time.sleep(min(0.05 * attempt, 0.5))
        raise EngineError(f"listing images failed {LIST_TRIES} times in a row: {str(failure)[:300]}",
                          engine=self.id) from failure

    def save(self, refs: str | list[str], dest: Path, *, platform: str | None = None,
             earlier: Earlier | None = None) -> str:
        """Stream `docker save` of one or more refs into `dest`, hashing on the way; returns sha256:<hex>.

        With `platform` (``os/arch[/variant]``) the engine is asked to save that platform only, as
        ``docker save --platform`` asks (Docker API 1.48); an engine that does not know the parameter
        ignores it, and what it saved says which it did.  With `earlier` (a save this one may repeat),
        the bytes are compared with it as they arrive (`received`)."""
        names = [refs] if isinstance(refs, str) else list(refs)
        params: dict[str, Any] = {"names": names}
        if platform is not None:
            params["platform"] = _platform_param(platform)
        with self._busy("save"), translated(self.id, ", ".join(names)):
            # on a unix socket, the engine closing the connection after the body lets `body_pieces` read it a MiB
            # per call (over ssh's stdio bridge, asking for that cut saves short)
            direct = self._unix_socket is not None
            resp = self.api._get(self.api._url("/images/get"), params=params, stream=True,
                                 headers={"Connection": "close"} if direct else None)
            self.api._raise_for_status(resp)
            with resp, Received(dest, earlier) as out:
                for piece in body_pieces(resp, direct=direct):
                    out.write(piece)
                return out.close()

    def load(self, archive: Path | IO[bytes], *, platform: str | None = None) -> list[str]:
        """`docker load`; returns what the engine says it loaded (tags or image IDs).  `platform` as for `save`
        (``docker load --platform``)."""
        with self._busy("load"), translated(self.id):
            if isinstance(archive, Path) and self._unix_socket is not None:
                out = self._load_by_sendfile(self._unix_socket, archive, platform)
            elif platform is None:
                if isinstance(archive, Path):
                    with open(archive, "rb") as f:
                        out = self.api.load_image(f)
                else:
                    out = self.api.load_image(archive)
            else:
                with open(archive, "rb") if isinstance(archive, Path) else nullcontext(archive) as f:
                    resp = self.api._post(self.api._url("/images/load"), data=f,
                                          params={"platform": _platform_param(platform)}, stream=True)
                    out = list(self.api._stream_helper(resp, decode=True))
        loaded: list[str] = []
        for msg in out or []:
            if "error" in msg or "errorDetail" in msg:
                raise EngineError(f"load failed: {msg.get('error') or msg.get('errorDetail')}", engine=self.id)
            stream = str(msg.get("stream", ""))
            for prefix in ("Loaded image: ", "Loaded image ID: ", "Loaded image(s): "):
                if stream.startswith(prefix):
                    loaded.extend(s.strip() for s in stream[len(prefix):].split(",") if s.strip())
        return loaded

    @property
    def _unix_socket(self) -> str | None:
        """The engine's unix socket, where saves and loads move their bytes themselves (`body`, `upload`)."""
        endpoint = self.spec.endpoint
        return endpoint[len("unix://"):] if endpoint.startswith("unix://") else None

    def _load_by_sendfile(self, socket_path: str, archive: Path, platform: str | None) -> list[dict[str, Any]]:
        """`load` of a file on a unix socket (`upload`): the messages the engine answers with."""
        params = {"quiet": "0", **({"platform": _platform_param(platform)} if platform is not None else {})}
        target = f"{urlsplit(self.api._url('/images/load')).path}?{urlencode(params)}"
        with open(archive, "rb") as f:
            status, body = post_file(socket_path, target, f, self.api.timeout,
                                     {"User-Agent": self.api.headers.get("User-Agent", "")})
        text = body.decode("utf-8", "replace")
        if status >= 400:  # worded as the SDK's APIError is, through `translated`
            try:
                message = json.loads(text)["message"]
            except (ValueError, KeyError, TypeError):
                message = text.strip()
            raise EngineError(f"API error {status}: {message or status}", engine=self.id)
        return list(json_stream([text]))

    def tag(self, ref: str, repository: str, tag: str) -> None:
        with translated(self.id, ref):
            if not self.api.tag(ref, repository, tag):
                raise EngineError(f"tag {ref} as {repository}:{tag} failed", engine=self.id)

    def import_image(self, rootfs: bytes, repository: str, tag: str, changes: list[str]) -> str:
        """`docker import` of a root filesystem tar, with Dockerfile `changes`; returns the new image's ID
        (64 hex digits, as the engine reports it).  Podman's compat import ignores the tag: tag the ID."""
        with translated(self.id, f"{repository}:{tag}"):
            answer = str(self.api.import_image_from_data(rootfs, repository=repository, tag=tag, changes=changes))
        found = re.search(r"(sha256:)?([0-9a-f]{64})", answer)
        if not found:
            raise EngineError(f"import of {repository}:{tag} gave no image ID: {answer[:200]}", engine=self.id)
        return found.group(2)

    def remove(self, ref: str, *, force: bool = False) -> None:
        """Remove one reference. Callers only remove what they created."""
        with translated(self.id, ref):
            self.api.remove_image(ref, force=force, noprune=False)

    def remove_quietly(self, ref: str) -> bool:
        """`remove`, where a reference already gone (or never made) is no error: for clean-up after a
        failure, which must not hide the failure itself.  Returns whether the engine removed it."""
        try:
            self.remove(ref)
        except EngineError:
            return False
        return True

    def containers(self, label: str | None = None) -> list[dict[str, Any]]:
        """Every container the engine has, running or not; with `label` (``key=value``), those labelled so."""
        with translated(self.id):
            return list(self.api.containers(all=True, filters={"label": label} if label else None))

    def remove_container(self, container_id: str) -> None:
        """Remove a container (running or not) and its anonymous volumes. Callers only remove what they created."""
        with translated(self.spec.label or self.spec.redacted_endpoint):
            self.api.remove_container(container_id, force=True, v=True)

    def push(self, repository: str, tag: str) -> str | None:
        """Push; returns the manifest digest the engine reports, if it does."""
        with self._busy("push"):
            return self._stream_progress(self.api.push(repository, tag=tag, stream=True, decode=True),
                                         f"push {repository}:{tag}")

    def pull(self, repository: str, tag: str) -> str | None:
        """Pull; returns the digest the engine reports, if it does."""
        with self._busy("pull"):
            return self.start_pull(repository, tag).result()

    def start_pull(self, repository: str, tag: str) -> PullInProgress:
        """A pull streamed by a thread of its own, which `PullInProgress.hang_up` cuts off as a client that
        gives up does (Ctrl-C, a CI step's timeout): the connection closes while the engine is mid-layer.
        Credentials go as the SDK's own pull sends them (from the docker config)."""
        with translated(self.id, f"{repository}:{tag}"):
            registry, _ = docker.auth.resolve_repository_name(repository)
            auth = docker.auth.get_config_header(self.api, registry)
            resp = self.api._post(self.api._url("/images/create"), params={"fromImage": repository, "tag": tag},
                                  headers={"X-Registry-Auth": auth} if auth else {}, stream=True, timeout=None)
            self.api._raise_for_status(resp)
        return PullInProgress(self, resp, f"pull {repository}:{tag}")

    def _stream_progress(self, messages: Iterator[dict[str, Any]], what: str) -> str | None:
        digest: str | None = None
        with translated(self.id, what):
            for msg in messages:
                if not isinstance(msg, dict):
                    msg = json.loads(msg)
                if msg.get("error") or msg.get("errorDetail"):
                    detail = msg.get("error") or msg.get("errorDetail", {}).get("message")
                    raise EngineError(f"{what} failed: {detail}", engine=self.id)
                status = str(msg.get("status", "")) + " " + str(msg.get("aux", {}).get("Digest", "") if isinstance(msg.get("aux"), dict) else "")
                for word in status.replace(",", " ").split():
                    if word.startswith("sha256:") and len(word) == 71:
                        digest = word
        return digest

    def close(self) -> None:
        self.api.close()


def _platform_param(platform: str) -> str:
    """``linux/arm64/v8`` as the API's ``platform`` parameter: a JSON-encoded OCI platform."""
    parts = platform.split("/")
    keys = ("os", "architecture", "variant")
    return json.dumps({k: v for k, v in zip(keys, parts) if v})


class PullInProgress:
    """The progress stream of a pull, read by a thread: `digest` when it succeeded, `error` when it did not."""

    def __init__(self, engine: Engine, response: requests.Response, what: str) -> None:
        self._response = response
        self.error: Exception | None = None
        self.digest: str | None = None

        def read() -> None:
            try:
                self.digest = engine._stream_progress(engine.api._stream_helper(response, decode=True), what)
            except Exception as e:  # raised again by `result`
                self.error = e

        self._thread = threading.Thread(target=read, name="pull-progress", daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """True once the pull's stream has ended (done, failed, or hung up on)."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def result(self) -> str | None:
        """Wait for the pull to end; the digest the engine reports, or the error it ended with."""
        self.wait()
        if self.error is not None:
            raise self.error
        return self.digest

    def hang_up(self) -> None:
        """Shut the connection under the progress stream down, as a client that leaves does; the engine sees
        it close, the reading thread sees the stream end."""
        conn = getattr(self._response.raw, "connection", None) or getattr(self._response.raw, "_connection", None)
        sock = getattr(conn, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed
        if self.wait(10):
            self._response.close()
