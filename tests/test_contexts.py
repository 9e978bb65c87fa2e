"""Docker contexts read from real docker-CLI config dirs and context stores written in tmp_path."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.engines.contexts import (
    current_context_name,
    docker_config_dir,
    env_tls,
    list_contexts,
    resolve_context,
)
from harness.engines.spec import TLSMaterial
from harness.errors import UsageError

KEY_SECRET = "PRIVATE-KEY-BODY-MUST-NOT-LEAK"


def write_context(config: Path, name: str, host: str | None = None, *, skip: bool = False,
                  description: str | None = None, tls: dict[str, str] | None = None) -> Path:
    """Write a context the way `docker context create` lays it out; return its TLS endpoint dir."""
    cid = hashlib.sha256(name.encode()).hexdigest()
    meta = config / "contexts" / "meta" / cid
    meta.mkdir(parents=True)
    endpoint: dict[str, object] = {"SkipTLSVerify": skip}
    if host is not None:
        endpoint["Host"] = host
    doc = {"Name": name, "Metadata": {"Description": description} if description else {},
           "Endpoints": {"docker": endpoint}}
    (meta / "meta.json").write_text(json.dumps(doc, separators=(",", ":")))
    tls_dir = config / "contexts" / "tls" / cid / "docker"
    if tls is not None:
        tls_dir.mkdir(parents=True, mode=0o700)
        for file, text in tls.items():
            (tls_dir / file).write_text(text)
    return tls_dir


PEMS = {"ca.pem": "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n",
        "cert.pem": "-----BEGIN CERTIFICATE-----\nCLIENT\n-----END CERTIFICATE-----\n",
        "key.pem": f"-----BEGIN PRIVATE KEY-----\n{KEY_SECRET}\n-----END PRIVATE KEY-----\n"}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return tmp_path / "docker-config"


@pytest.fixture
def env(config: Path, tmp_path: Path) -> dict[str, str]:
    return {"DOCKER_CONFIG": str(config), "HOME": str(tmp_path / "home")}


# --- the store --------------------------------------------------------------------------------

def test_context_ids_are_the_sha256_docker_uses(config: Path) -> None:
    write_context(config, "a1", "unix:///tmp/x.sock")
    [ctx] = list_contexts(config)
    # `docker context inspect a1` printed this MetadataPath for a CLI-created context
    assert ctx.meta_path.name == "f55ff16f66f43360266b95db6f8fec01d76031054306ae4a4b380598f6cfd114"
    assert ctx.tls_path == config / "contexts" / "tls" / ctx.meta_path.name


def test_list_contexts_in_docker_context_ls_order(config: Path) -> None:
    for name in ("node10", "node2", "Alpha", "beta"):
        write_context(config, name, "unix:///run/docker.sock", description=f"{name} box")
    assert [c.name for c in list_contexts(config)] == ["Alpha", "beta", "node2", "node10"]
    assert list_contexts(config)[0].description == "Alpha box"


def test_list_contexts_of_a_config_without_store(config: Path) -> None:
    config.mkdir()
    (config / "config.json").write_text("{}")
    assert list_contexts(config) == []
    assert list_contexts(config / "missing") == []


def test_list_contexts_walks_the_meta_tree_like_the_cli(config: Path) -> None:
    write_context(config, "top", "unix:///a.sock")
    (config / "contexts" / "meta" / "stray-dir").mkdir()
    nested = config / "contexts" / "meta" / "stray-dir" / "inner"
    nested.mkdir()
    (nested / "meta.json").write_text('{"Name": "nested", "Endpoints": {"docker": {"Host": "unix:///b.sock"}}}')
    assert [c.name for c in list_contexts(config)] == ["nested", "top"]


def test_context_fields(config: Path) -> None:
    write_context(config, "prod", "tcp://prod.example:2376", description="production", tls=PEMS)
    write_context(config, "lab", "tcp://lab.example:2376", skip=True)
    write_context(config, "nohost")
    prod, lab, nohost = sorted(list_contexts(config), key=lambda c: ["prod", "lab", "nohost"].index(c.name))
    assert (prod.host, prod.description, prod.skip_tls_verify) == ("tcp://prod.example:2376", "production", False)
    assert prod.tls_files == ("ca.pem", "cert.pem", "key.pem")
    assert (lab.skip_tls_verify, lab.tls_files) == (True, None)
    assert nohost.host is None


def test_json_keys_match_case_insensitively_like_go(config: Path, env: dict[str, str]) -> None:
    meta = config / "contexts" / "meta" / hashlib.sha256(b"lower").hexdigest()
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text('{"name": "lower", "endpoints": {"docker": {"host": "unix:///l.sock"}}}')
    assert resolve_context("lower", env).endpoint == "unix:///l.sock"


# --- resolving a context to an EngineSpec ------------------------------------------------------

def test_resolve_unix_and_ssh_contexts(config: Path, env: dict[str, str]) -> None:
    write_context(config, "sock", "unix:///run/user/1000/docker.sock", skip=True)
    write_context(config, "box", "ssh://me@box.example:2222")
    sock = resolve_context("sock", env)
    assert (sock.endpoint, sock.label, sock.tls) == ("unix:///run/user/1000/docker.sock", "sock", None)
    box = resolve_context("box", env)
    assert (box.endpoint, box.label, box.tls) == ("ssh://me@box.example:2222", "box", None)


def test_resolve_tcp_context_with_full_tls(config: Path, env: dict[str, str]) -> None:
    tls_dir = write_context(config, "prod", "tcp://prod.example:2376", tls=PEMS)
    spec = resolve_context("prod", env)
    assert spec.endpoint == "tcp://prod.example:2376"
    assert spec.tls == TLSMaterial(str(tls_dir / "ca.pem"), str(tls_dir / "cert.pem"), str(tls_dir / "key.pem"),
                                   verify=True)
    assert KEY_SECRET not in repr(spec)


@pytest.mark.parametrize("files, skip, expected", [
    ({"ca.pem": "x"}, False, ("ca.pem", None, None, True)),
    ({"cert.pem": "x"}, False, (None, None, None, True)),       # a cert without its key is unused, as in the CLI
    ({}, False, (None, None, None, True)),                      # an empty tls dir still means TLS
    (None, True, (None, None, None, False)),                    # SkipTLSVerify alone means TLS, unverified
    ({"ca.pem": "x", "cert.pem": "x", "key.pem": "x"}, True, ("ca.pem", "cert.pem", "key.pem", False)),
])
def test_tcp_context_tls_rules(config: Path, env: dict[str, str], files: dict[str, str] | None, skip: bool,
                               expected: tuple[str | None, str | None, str | None, bool]) -> None:
    tls_dir = write_context(config, "c1", "tcp://h.example:2376", skip=skip, tls=files)
    tls = resolve_context("c1", env).tls
    assert tls is not None
    got = (tls.ca_cert, tls.client_cert, tls.client_key)
    assert got == tuple(str(tls_dir / f) if f else None for f in expected[:3])
    assert tls.verify is expected[3]


def test_tcp_context_without_tls_data_is_plain_like_the_cli(config: Path, env: dict[str, str]) -> None:
    write_context(config, "plain", "tcp://h.example:2376")
    write_context(config, "noport", "tcp://h.example")
    assert resolve_context("plain", env).tls is None
    assert resolve_context("noport", env).endpoint == "tcp://h.example:2375"


def test_unknown_context_lists_known_names(config: Path, env: dict[str, str]) -> None:
    write_context(config, "alpha", "unix:///a.sock")
    write_context(config, "beta", "unix:///b.sock")
    with pytest.raises(UsageError, match=r"unknown docker context 'gamma' .*\(known: default, alpha, beta\)"):
        resolve_context("gamma", env)


@pytest.mark.parametrize("content, match", [
    ("{not json", "cannot read docker context metadata"),
    ('{"Name": 3, "Endpoints": {}}', "not docker context metadata"),
    ('{"Name": "broken", "Endpoints": {"docker": {"Host": "unix:///x", "SkipTLSVerify": "yes"}}}',
     "not docker context metadata"),
])
def test_broken_metadata_is_a_usage_error_naming_the_file(config: Path, env: dict[str, str], content: str,
                                                          match: str) -> None:
    meta = config / "contexts" / "meta" / hashlib.sha256(b"broken").hexdigest()
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(content)
    with pytest.raises(UsageError, match=match) as err:
        resolve_context("broken", env)
    assert str(meta / "meta.json") in str(err.value)
    with pytest.raises(UsageError):
        list_contexts(config)


@pytest.mark.parametrize("host, match", [
    (None, "has no docker host"),
    ("npipe:////./pipe/docker_engine", "Windows named pipes are not supported"),
    ("ssh://me:hunter2@box", "passwords in endpoint URLs"),
])
def test_unusable_context_hosts(config: Path, env: dict[str, str], host: str | None, match: str) -> None:
    write_context(config, "odd", host)
    with pytest.raises(UsageError, match=match) as err:
        resolve_context("odd", env)
    assert "'odd'" in str(err.value)
    assert "hunter2" not in str(err.value)


# --- the current context and the default context -----------------------------------------------

def write_config_json(config: Path, doc: object) -> None:
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.json").write_text(json.dumps(doc))


def test_current_context_from_config_json(config: Path, env: dict[str, str]) -> None:
    write_context(config, "remote", "ssh://me@box")
    write_config_json(config, {"auths": {}, "currentContext": "remote"})
    assert current_context_name(env) == "remote"
    assert resolve_context(None, env).endpoint == "ssh://me@box"


def test_docker_context_env_overrides_config_json(config: Path, env: dict[str, str]) -> None:
    write_context(config, "remote", "ssh://me@box")
    write_context(config, "other", "unix:///other.sock")
    write_config_json(config, {"currentContext": "remote"})
    env["DOCKER_CONTEXT"] = "other"
    assert current_context_name(env) == "other"
    assert resolve_context(None, env).label == "other"


def test_docker_host_env_selects_the_default_context(config: Path, env: dict[str, str]) -> None:
    write_config_json(config, {"currentContext": "remote"})
    env |= {"DOCKER_CONTEXT": "remote", "DOCKER_HOST": "unix:///custom.sock"}
    assert current_context_name(env) == "default"
    spec = resolve_context(None, env)
    assert (spec.endpoint, spec.label) == ("unix:///custom.sock", "default")


@pytest.mark.parametrize("doc", [None, "", {"auths": {}}, {"currentContext": ""}])
def test_no_current_context_means_default(config: Path, env: dict[str, str], doc: object) -> None:
    if doc == "":
        config.mkdir()
        (config / "config.json").write_text("")
    elif doc is not None:
        write_config_json(config, doc)
    assert current_context_name(env) == "default"
    assert resolve_context(None, env).endpoint == "unix:///var/run/docker.sock"


def test_broken_config_json_is_a_usage_error(config: Path, env: dict[str, str]) -> None:
    config.mkdir()
    (config / "config.json").write_text("{oops")
    with pytest.raises(UsageError, match="config.json: cannot read the docker CLI config"):
        current_context_name(env)


def test_config_dir_from_docker_config_else_home(tmp_path: Path) -> None:
    assert docker_config_dir({"DOCKER_CONFIG": "/etc/dc", "HOME": "/home/u"}) == Path("/etc/dc")
    assert docker_config_dir({"HOME": "/home/u"}) == Path("/home/u/.docker")
    home = tmp_path / "home"
    write_context(home / ".docker", "viahome", "unix:///h.sock")
    assert resolve_context("viahome", {"HOME": str(home)}).endpoint == "unix:///h.sock"


@pytest.mark.parametrize("docker_host, endpoint", [
    ("tcp://build.example:2375", "tcp://build.example:2375"),
    ("build.example:1234", "tcp://build.example:1234"),    # the CLI's shorthand
    ("tcp://build.example", "tcp://build.example:2375"),
    ("ssh://me@build.example", "ssh://me@build.example"),
])
def test_default_context_from_docker_host(env: dict[str, str], docker_host: str, endpoint: str) -> None:
    spec = resolve_context("default", env | {"DOCKER_HOST": docker_host})
    assert (spec.endpoint, spec.tls) == (endpoint, None)


def test_default_context_tls_from_env(tmp_path: Path, env: dict[str, str]) -> None:
    certs = tmp_path / "certs"
    certs.mkdir()
    for file, text in PEMS.items():
        (certs / file).write_text(text)
    spec = resolve_context("default", env | {"DOCKER_HOST": "tcp://build.example:2376",
                                             "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(certs)})
    assert spec.tls == TLSMaterial(str(certs / "ca.pem"), str(certs / "cert.pem"), str(certs / "key.pem"))
    assert KEY_SECRET not in repr(spec)


def test_default_context_with_tls_env_and_no_host_is_localhost_2376(config: Path, env: dict[str, str]) -> None:
    config.mkdir()
    (config / "ca.pem").write_text(PEMS["ca.pem"])  # DOCKER_CERT_PATH defaults to the config dir
    spec = resolve_context("default", env | {"DOCKER_TLS_VERIFY": "1"})
    assert spec.endpoint == "tcp://localhost:2376"
    assert spec.tls == TLSMaterial(ca_cert=str(config / "ca.pem"))


def test_env_tls_never_turns_verification_off(tmp_path: Path) -> None:
    assert env_tls({}) is None
    for key in ("DOCKER_TLS", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY"):
        tls = env_tls({key: str(tmp_path), "HOME": str(tmp_path)})
        assert tls == TLSMaterial(verify=True)  # no files there: the system CAs


def test_env_tls_uses_a_client_cert_only_with_its_key(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text(PEMS["cert.pem"])
    assert env_tls({"DOCKER_CERT_PATH": str(tmp_path)}) == TLSMaterial()


def test_bad_docker_host_names_the_variable(env: dict[str, str]) -> None:
    with pytest.raises(UsageError, match=r"^DOCKER_HOST: npipe:"):
        resolve_context("default", env | {"DOCKER_HOST": "npipe:////./pipe/docker_engine"})
    with pytest.raises(UsageError) as err:
        resolve_context("default", env | {"DOCKER_HOST": "tcp://admin:s3cret@h:2376"})
    assert "s3cret" not in str(err.value)


# --- against the real docker CLI ----------------------------------------------------------------

DOCKER = shutil.which("docker")
OPENSSL = shutil.which("openssl")


@dataclass
class DockerCLI:
    """The real docker CLI on a private config dir; context commands never touch a daemon."""

    env: dict[str, str]

    def __call__(self, *args: str, **extra_env: str) -> str:
        done = subprocess.run([DOCKER or "docker", *args], env=self.env | extra_env,
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout


@pytest.fixture
def docker_cli(tmp_path: Path) -> DockerCLI:
    if DOCKER is None:
        pytest.skip("docker CLI not on PATH")
    return DockerCLI({"DOCKER_CONFIG": str(tmp_path / "cli-config"), "HOME": str(tmp_path),
                      "PATH": os.environ["PATH"]})


def make_cert(where: Path) -> tuple[Path, Path, Path]:
    """A real self-signed certificate and key: `docker context create` parses what it is given."""
    key, cert = where / "key.pem", where / "cert.pem"
    subprocess.run([OPENSSL or "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=harness-test"],
                   check=True, capture_output=True, timeout=30)
    return cert, cert, key


def test_contexts_created_by_the_docker_cli_resolve_like_docker_context_inspect(docker_cli: DockerCLI,
                                                                                tmp_path: Path) -> None:
    docker_cli("context", "create", "sock", "--docker", "host=unix:///tmp/x.sock")
    docker_cli("context", "create", "node2", "--description", "lab box",
               "--docker", "host=tcp://lab.example:2376,skip-tls-verify=true")
    docker_cli("context", "create", "node10", "--docker", "host=ssh://me@box.example:2222")
    if OPENSSL:
        ca, cert, key = make_cert(tmp_path)
        docker_cli("context", "create", "prod", "--docker", f"host=tcp://prod.example:2376,ca={ca},cert={cert},key={key}")
        docker_cli("context", "create", "ca-only", "--docker", f"host=tcp://ca.example:2376,ca={ca}")
    env = docker_cli.env

    cli_order = [n for n in docker_cli("context", "ls", "--format", "{{.Name}}").split() if n != "default"]
    ours = list_contexts(env["DOCKER_CONFIG"])
    assert [c.name for c in ours] == cli_order

    inspected = json.loads(docker_cli("context", "inspect", *cli_order))
    for ctx, doc in zip(ours, inspected, strict=True):
        ep = doc["Endpoints"]["docker"]
        assert ctx.name == doc["Name"]
        assert ctx.host == ep["Host"]
        assert ctx.skip_tls_verify is ep["SkipTLSVerify"]
        assert ctx.description == doc["Metadata"].get("Description", "")
        assert str(ctx.meta_path) == doc["Storage"]["MetadataPath"]
        assert str(ctx.tls_path) == doc["Storage"]["TLSPath"]
        assert list(ctx.tls_files or ()) == doc["TLSMaterial"].get("docker", [])
        spec = resolve_context(ctx.name, env)
        assert (spec.endpoint, spec.label) == (ep["Host"], ctx.name)
        material = doc["TLSMaterial"].get("docker")
        if spec.endpoint.startswith("tcp://") and (material is not None or ep["SkipTLSVerify"]):
            assert spec.tls is not None and spec.tls.verify is not ep["SkipTLSVerify"]
            assert (spec.tls.ca_cert is not None) == ("ca.pem" in (material or []))
            assert (spec.tls.client_key is not None) == ({"cert.pem", "key.pem"} <= set(material or []))
        else:
            assert spec.tls is None
    if OPENSSL:
        prod = resolve_context("prod", env)
        assert prod.tls is not None and prod.tls.client_key is not None
        assert Path(prod.tls.client_key).read_bytes() == key.read_bytes()
        assert Path(prod.tls.ca_cert or "").read_bytes() == ca.read_bytes()


def test_current_context_agrees_with_docker_context_show(docker_cli: DockerCLI) -> None:
    env = docker_cli.env
    docker_cli("context", "create", "one", "--docker", "host=unix:///tmp/one.sock")
    docker_cli("context", "create", "two", "--docker", "host=unix:///tmp/two.sock")
    assert current_context_name(env) == docker_cli("context", "show").strip() == "default"
    docker_cli("context", "use", "one")
    assert current_context_name(env) == docker_cli("context", "show").strip() == "one"
    assert current_context_name(env | {"DOCKER_CONTEXT": "two"}) == \
        docker_cli("context", "show", DOCKER_CONTEXT="two").strip() == "two"
    with_host = {"DOCKER_CONTEXT": "two", "DOCKER_HOST": "tcp://build.example:2375"}
    assert current_context_name(env | with_host) == docker_cli("context", "show", **with_host).strip() == "default"
    [default] = json.loads(docker_cli("context", "inspect", "default", **with_host))
    assert resolve_context(None, env | with_host).endpoint == default["Endpoints"]["docker"]["Host"]
