"""A real registry (distribution 2.8 from Debian's docker-registry) for push/pull scenarios.

No image can be pulled from a public registry here, so the registry's image is
built locally from the packaged binary and the shared libraries it links
(`ldd`), imported into a farm engine, and run with testcontainers on host
networking at 127.0.0.1:<port>.  Every engine of the farm can push to it and pull
from it: Docker treats 127.0.0.0/8 as plain HTTP, podman is told so by the farm's
registries.conf.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# the one place the harness uses testcontainers: no reaper container (Ryuk), we remove what we start
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

from testcontainers.core.container import DockerContainer  # noqa: E402
from testcontainers.core.wait_strategies import WaitStrategy  # noqa: E402

from harness.engines.adapter import Engine  # noqa: E402
from harness.engines.packages import DebianSource, DebPackage  # noqa: E402
from harness.engines.spec import EngineSpec  # noqa: E402
from harness.errors import EngineError, ProvisionError  # noqa: E402

REGISTRY_SOURCE = DebianSource("docker-registry", (DebPackage("docker-registry", "bookworm"),))
IMAGE_REPO = "imgharness/registry"
ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json"])
CONFIG = b"""version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:5000
"""


class LoopbackHTTPWait(WaitStrategy):
    """Ready when GET http://127.0.0.1:<port><path> answers 200 (host networking: no port mapping to ask)."""

    def __init__(self, port: int, path: str = "/v2/") -> None:
        super().__init__()
        self.url = f"http://127.0.0.1:{port}{path}"
        self.with_startup_timeout(60).with_poll_interval(0.2)

    def wait_until_ready(self, container: object) -> None:
        def check() -> bool:
            try:
                with urllib.request.urlopen(self.url, timeout=2) as resp:
                    return bool(resp.status == 200)
            except (urllib.error.URLError, ConnectionError, OSError):
                return False

        if not self._poll(check):
            raise TimeoutError(f"registry did not answer at {self.url}")


def _rootfs_tar(binary: Path) -> bytes:
    """A minimal root filesystem: the registry binary, its loader and libraries, and a config."""
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True).stdout
    libs = {Path(p) for line in out.splitlines() for p in line.split() if p.startswith("/")}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        dirs: set[str] = set()

        def add_dir(name: str) -> None:
            if name in dirs:
                return
            dirs.add(name)
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tf.addfile(info)

        for d in ("etc", "etc/docker", "etc/docker/registry", "tmp", "var", "var/lib", "var/lib/registry", "usr", "usr/bin"):
            add_dir(d)
        tf.add(binary, "usr/bin/docker-registry")
        for lib in sorted(libs):
            parts = lib.parent.parts[1:]
            for i in range(1, len(parts) + 1):
                add_dir("/".join(parts[:i]))
            tf.add(lib.resolve(), str(lib)[1:])
        info = tarfile.TarInfo("etc/docker/registry/config.yml")
        info.size, info.mode = len(CONFIG), 0o644
        tf.addfile(info, io.BytesIO(CONFIG))
    return buf.getvalue()


def ensure_image(engine: Engine, cache: Path, repo: str = IMAGE_REPO) -> str:
    """Import the registry image into `engine` as `repo`:2.8 unless it is there; returns its reference."""
    ref = f"{repo}:2.8"
    try:
        engine.inspect(ref)
        return ref
    except EngineError:
        pass
    prefix = REGISTRY_SOURCE.provision(cache)
    binary = prefix / "usr/bin/docker-registry"
    if not binary.exists():
        raise ProvisionError(f"{binary} missing after unpacking docker-registry")
    changes = ['ENTRYPOINT ["/usr/bin/docker-registry"]', 'CMD ["serve", "/etc/docker/registry/config.yml"]']
    image_id = engine.import_image(_rootfs_tar(binary), repo, "2.8", changes)
    engine.tag(image_id, repo, "2.8")  # podman's compat import ignores the tag it is given
    return ref


@dataclass
class Registry:
    """A running registry: `host` is what image references start with (127.0.0.1:PORT)."""

    port: int
    engine_endpoint: str
    container_id: str

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def served_digest(self, repo: str, tag: str) -> str:
        """The digest the registry serves for repo:tag: what a client pulling by tag resolves to."""
        req = urllib.request.Request(f"{self.url}/v2/{repo}/manifests/{tag}", headers={"Accept": ACCEPT},
                                     method="HEAD")
        with urllib.request.urlopen(req, timeout=10) as resp:
            return str(resp.headers["Docker-Content-Digest"])

    def manifest(self, repo: str, reference: str) -> dict[str, Any]:
        """The manifest (or index) the registry serves, parsed."""
        req = urllib.request.Request(f"{self.url}/v2/{repo}/manifests/{reference}", headers={"Accept": ACCEPT})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return dict(json.load(resp))

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/v2/", timeout=2) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False


def _client_kw(engine: Engine, certs: Path) -> dict[str, Any]:
    """What testcontainers' client needs to reach the engine as the adapter does: over ssh through the ssh binary
    (the user's ssh config and known hosts: paramiko refuses hosts it does not know), over TLS with the spec's
    files, which docker-py's environment takes only as ``DOCKER_CERT_PATH/{ca,cert,key}.pem``; the adapter's API
    version, so that making the client asks the engine nothing."""
    spec = engine.spec
    env = {"DOCKER_HOST": spec.endpoint}
    if spec.tls is not None:
        where = certs / hashlib.sha256(repr(spec.tls).encode()).hexdigest()[:16]
        where.mkdir(parents=True, exist_ok=True)
        for name, path in (("ca.pem", spec.tls.ca_cert), ("cert.pem", spec.tls.client_cert),
                           ("key.pem", spec.tls.client_key)):
            link = where / name
            if path and not link.exists():
                link.symlink_to(os.path.abspath(path))
        env.update(DOCKER_CERT_PATH=str(where), DOCKER_TLS_VERIFY="1" if spec.tls.verify else "")
    return {"environment": env, "use_ssh_client": spec.endpoint.startswith("ssh://"), "version": engine.api.api_version}


def start_registry(engine: Engine, port: int, cache: Path, label: str,
                   image_repo: str = IMAGE_REPO) -> tuple[Registry, DockerContainer]:
    """Run the registry on `engine` with host networking at 127.0.0.1:`port`."""
    image = ensure_image(engine, cache, image_repo)
    container = DockerContainer(image, docker_client_kw=_client_kw(engine, cache / "registry-tls"))
    if engine.spec.tls is not None and engine.spec.tls.ca_cert:
        # the engine's own CA, never REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE in its place (as `api_client` does)
        container.get_docker_client().client.api.trust_env = False
    container = (
        container.with_env("REGISTRY_HTTP_ADDR", f"127.0.0.1:{port}")
        .with_kwargs(network_mode="host", labels={"imgharness.run": label})
        .waiting_for(LoopbackHTTPWait(port))
    )
    try:
        container.start()
    except (TimeoutError, RuntimeError) as e:
        raise EngineError(f"registry did not start on port {port}: {e}", engine=engine.id) from e
    wrapped = container.get_wrapped_container()
    return Registry(port, engine.spec.endpoint, wrapped.id), container


def stop_registry(registry: Registry) -> None:
    """Remove the registry container (by the id we created), wherever we are."""
    engine = Engine(EngineSpec(registry.engine_endpoint), timeout=30)
    try:
        engine.remove_container(registry.container_id)
    except EngineError:
        pass  # already gone, or its engine is
    finally:
        engine.close()
    deadline = time.monotonic() + 10
    while registry.ready() and time.monotonic() < deadline:
        time.sleep(0.2)

