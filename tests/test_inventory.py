"""`--engine` options, inventory files and their combination, on real files in tmp_path."""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.engines.inventory import load_inventory, parse_engine_option, select_engines
from harness.engines.spec import EngineSpec, TLSMaterial
from harness.errors import UsageError

KEY_SECRET = "PRIVATE-KEY-BODY-MUST-NOT-LEAK"
PEMS = {"ca.pem": "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n",
        "cert.pem": "-----BEGIN CERTIFICATE-----\nCLIENT\n-----END CERTIFICATE-----\n",
        "key.pem": f"-----BEGIN PRIVATE KEY-----\n{KEY_SECRET}\n-----END PRIVATE KEY-----\n"}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A docker CLI config dir with two contexts, as `docker context create` writes them."""
    config = tmp_path / "docker-config"
    for name, host in (("desktop-linux", "unix:///home/u/.docker/desktop/docker.sock"),
                       ("build", "ssh://ci@build.example")):
        meta = config / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest()
        meta.mkdir(parents=True)
        (meta / "meta.json").write_text(json.dumps(
            {"Name": name, "Metadata": {}, "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": False}}}))
    return config


@pytest.fixture
def env(config: Path, tmp_path: Path) -> dict[str, str]:
    return {"DOCKER_CONFIG": str(config), "HOME": str(tmp_path / "home")}


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    d = tmp_path / "certs"
    d.mkdir()
    for file, text in PEMS.items():
        (d / file).write_text(text)
    return d


@pytest.fixture
def sock(tmp_path: Path) -> Iterator[Path]:
    """A real listening unix socket."""
    path = tmp_path / "engine.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    yield path
    s.close()


# --- --engine ------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, endpoint", [
    ("unix:///run/docker.sock", "unix:///run/docker.sock"),
    ("unix:///run//docker.sock", "unix:///run/docker.sock"),
    ("tcp://build.example:2375", "tcp://build.example:2375"),
    ("tcp://build.example", "tcp://build.example:2375"),
    ("TCP://Build.Example:2375/", "tcp://build.example:2375"),
    ("tcp://[::1]:2375", "tcp://[::1]:2375"),
    ("ssh://build.example", "ssh://build.example"),
    ("ssh://ci@build.example:2222", "ssh://ci@build.example:2222"),
])
def test_plain_endpoints(env: dict[str, str], value: str, endpoint: str) -> None:
    spec = parse_engine_option(value, env=env)
    assert spec == EngineSpec(endpoint)


def test_label_prefix(env: dict[str, str]) -> None:
    spec = parse_engine_option("prod=tcp://build.example:2375", env=env)
    assert (spec.label, spec.endpoint) == ("prod", "tcp://build.example:2375")
    assert parse_engine_option("a.b+c_1=unix:///x.sock", env=env).label == "a.b+c_1"


def test_bare_socket_path(sock: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_engine_option(str(sock), env=env) == EngineSpec(f"unix://{sock}")
    monkeypatch.chdir(sock.parent)
    assert parse_engine_option("lab=engine.sock", env=env) == EngineSpec(f"unix://{sock}", label="lab")


def test_port_2376_means_verified_tls(env: dict[str, str]) -> None:
    assert parse_engine_option("tcp://build.example:2376", env=env).tls == TLSMaterial(verify=True)


def test_tls_from_docker_env(env: dict[str, str], certs: Path) -> None:
    env |= {"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(certs)}
    spec = parse_engine_option("tcp://build.example", env=env)
    assert spec.endpoint == "tcp://build.example:2376"
    assert spec.tls == TLSMaterial(str(certs / "ca.pem"), str(certs / "cert.pem"), str(certs / "key.pem"))
    assert parse_engine_option("unix:///run/docker.sock", env=env).tls is None
    assert KEY_SECRET not in repr(spec)


def test_inline_tls_query(env: dict[str, str], certs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(certs.parent)
    spec = parse_engine_option("prod=tcp://build.example:2376?ca=certs/ca.pem&cert=certs/cert.pem&key=certs/key.pem",
                               env=env)
    assert spec == EngineSpec("tcp://build.example:2376", label="prod",
                              tls=TLSMaterial(str(certs / "ca.pem"), str(certs / "cert.pem"), str(certs / "key.pem")))


def test_inline_tls_replaces_env_files_but_keeps_verification(env: dict[str, str], certs: Path,
                                                              tmp_path: Path) -> None:
    env |= {"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(tmp_path / "elsewhere")}
    spec = parse_engine_option(f"tcp://h.example:2376?ca={certs}/ca.pem", env=env)
    assert spec.tls == TLSMaterial(ca_cert=str(certs / "ca.pem"), verify=True)


@pytest.mark.parametrize("query, tls", [
    ("verify=false", TLSMaterial(verify=False)),
    ("verify=0", TLSMaterial(verify=False)),
    ("tls=true", TLSMaterial(verify=True)),
    ("tls=false", None),
])
def test_inline_verify_and_tls_switches(env: dict[str, str], query: str, tls: TLSMaterial | None) -> None:
    assert parse_engine_option(f"tcp://h.example:2376?{query}", env=env).tls == tls


def test_verify_false_on_another_port_turns_tls_on(env: dict[str, str]) -> None:
    spec = parse_engine_option("tcp://h.example:443?verify=false", env=env)
    assert (spec.endpoint, spec.tls) == ("tcp://h.example:443", TLSMaterial(verify=False))


def test_contexts_by_name(env: dict[str, str]) -> None:
    assert parse_engine_option("desktop-linux", env=env) == \
        EngineSpec("unix:///home/u/.docker/desktop/docker.sock", label="desktop-linux")
    assert parse_engine_option("context:build", env=env) == EngineSpec("ssh://ci@build.example", label="build")
    assert parse_engine_option("ci=context:build", env=env).label == "ci"
    assert parse_engine_option("ci=build", env=env).label == "ci"
    default = parse_engine_option("default", env=env | {"DOCKER_HOST": "tcp://dh.example:2375"})
    assert default == EngineSpec("tcp://dh.example:2375", label="default")


@pytest.mark.parametrize("value, match", [
    ("npipe:////./pipe/docker_engine", "Windows named pipes are not supported"),
    ("fd://3", "unsupported endpoint"),
    ("https://build.example:2376", "unsupported endpoint"),
    ("unix://relative/docker.sock", "absolute path"),
    ("unix:///x.sock?ca=ca.pem", "only tcp:// endpoints take"),
    ("ssh://ci@build.example/path", "unexpected path"),
    ("ssh://ci@build.example:22?x=1", "only tcp:// endpoints take"),
    ("tcp://build.example:notaport", "malformed endpoint"),
    ("tcp://:2375", "no host"),
    ("tcp://ci@build.example:2375", "take no user name"),
    ("tcp://build.example:2376/v1.41", "unexpected path"),
    ("tcp://h.example:2376#frag", "unexpected"),
    ("tcp://h.example:2376?cafile=x", "unknown or repeated setting 'cafile'"),
    ("tcp://h.example:2376?verify=no&verify=yes", "unknown or repeated setting 'verify'"),
    ("tcp://h.example:2376?verify=maybe", "is not true or false"),
    ("tcp://h.example:2376?noequals", "malformed"),
    ("tcp://h.example:2376?ca=/nonexistent/ca.pem", "TLS ca file not found: /nonexistent/ca.pem"),
    ("tcp://h.example:2376?cert=/x/cert.pem", "give both or neither"),
    ("tcp://h.example:2376?tls=false&verify=true", "TLS is turned off but TLS settings are given"),
    ("/no/such/socket", "no unix socket there"),
    ("unknown-context", r"unknown docker context 'unknown-context' .*\(known: default, build, desktop-linux\)"),
    ("context:", "not an endpoint URL"),
    ("-bad", "not an endpoint URL"),
    ("", "not an endpoint URL"),
    ("=tcp://h.example", "expected LABEL=TARGET"),
    ("my label=tcp://h.example", "expected LABEL=TARGET"),
    ("prod=", "expected LABEL=TARGET"),
])
def test_bad_engine_options(env: dict[str, str], value: str, match: str) -> None:
    with pytest.raises(UsageError, match=match) as err:
        parse_engine_option(value, env=env)
    assert "\n" not in str(err.value)


def test_a_regular_file_is_no_socket(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match="no unix socket there"):
        parse_engine_option(str(tmp_path / "file"), env=env)


# --- secrets ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [
    "tcp://admin:hunter2@build.example:2376",
    "ssh://ci:hunter2@build.example",
    "prod=https://admin:hunter2@build.example",
    "ssh://ci:hunter2/with/slashes@build.example",
    "ci:hunter2@build.example",
    "unix://u:hunter2@/run/docker.sock",
])
def test_passwords_never_appear_in_errors(env: dict[str, str], value: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_engine_option(value, env=env)
    assert "hunter2" not in str(err.value)
    assert "***" in str(err.value)


def test_password_in_an_inventory_endpoint_is_refused_and_hidden(tmp_path: Path, env: dict[str, str]) -> None:
    inv = tmp_path / "engines.toml"
    inv.write_text('[engines.prod]\nendpoint = "ssh://ci:hunter2@build.example"\n')
    with pytest.raises(UsageError, match="passwords in endpoint URLs are not supported") as err:
        load_inventory(inv, env=env)
    assert "hunter2" not in str(err.value)


def test_key_contents_are_never_read_into_specs(env: dict[str, str], certs: Path) -> None:
    spec = parse_engine_option(f"tcp://h.example:2376?ca={certs}/ca.pem&cert={certs}/cert.pem&key={certs}/key.pem",
                               env=env)
    assert spec.tls is not None and spec.tls.client_key == str(certs / "key.pem")
    assert KEY_SECRET not in repr(spec)


# --- inventory files -------------------------------------------------------------------------------

INVENTORY = """\
[engines.prod-a]
endpoint = "tcp://build-1.example:2376"
tls_ca = "certs/ca.pem"      # relative to the inventory file
tls_cert = "certs/cert.pem"
tls_key = "certs/key.pem"
tls_verify = true            # default true

[engines.laptop]
context = "desktop-linux"

[engines.local]
endpoint = "unix:///run/docker.sock"

[engines.lab]
endpoint = "tcp://lab.example:2376"
tls_ca = "certs/ca.pem"
tls_verify = false

[engines.plain]
endpoint = "tcp://plain.example:2375"
"""


def test_inventory_file(tmp_path: Path, certs: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    inv = tmp_path / "engines.toml"
    inv.write_text(INVENTORY)
    monkeypatch.chdir("/")  # relative TLS paths follow the file, not the working directory
    assert load_inventory(str(inv.relative_to("/")), env=env) == [
        EngineSpec("tcp://build-1.example:2376", label="prod-a",
                   tls=TLSMaterial(str(certs / "ca.pem"), str(certs / "cert.pem"), str(certs / "key.pem"))),
        EngineSpec("unix:///home/u/.docker/desktop/docker.sock", label="laptop"),
        EngineSpec("unix:///run/docker.sock", label="local"),
        EngineSpec("tcp://lab.example:2376", label="lab", tls=TLSMaterial(str(certs / "ca.pem"), verify=False)),
        EngineSpec("tcp://plain.example:2375", label="plain"),
    ]


def test_inventory_ignores_docker_tls_env(tmp_path: Path, certs: Path, env: dict[str, str]) -> None:
    inv = tmp_path / "engines.toml"
    inv.write_text('[engines.plain]\nendpoint = "tcp://plain.example:2375"\n'
                   '[engines.secure]\nendpoint = "tcp://secure.example:2376"\n')
    env |= {"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(certs)}
    plain, secure = load_inventory(inv, env=env)
    assert (plain.tls, secure.tls) == (None, TLSMaterial())


def test_inventory_tls_false_on_the_tls_port(tmp_path: Path, env: dict[str, str]) -> None:
    inv = tmp_path / "engines.toml"
    inv.write_text('[engines.x]\nendpoint = "tcp://x.example:2376"\ntls = false\n')
    assert load_inventory(inv, env=env) == [EngineSpec("tcp://x.example:2376", label="x")]


@pytest.mark.parametrize("text, match", [
    ('[engines.prod\nendpoint = "x"', "not valid TOML"),
    ('[engines.prod]\nendpoint = "unix:///x.sock"\nhost = "y"\n', "engines.prod: unknown key 'host'"),
    ('[engines.prod]\ntls_verify = true\n', "engines.prod: give exactly one of endpoint or context"),
    ('[engines.prod]\nendpoint = "unix:///x.sock"\ncontext = "build"\n', "engines.prod: give exactly one"),
    ('[engines.prod]\ncontext = "build"\ntls_ca = "certs/ca.pem"\n', "engines.prod: tls_ca does not apply to a context"),
    ('[engines.prod]\ncontext = "nope"\n', r"engines.prod: unknown docker context 'nope' .*known: default, build"),
    ('[engines.prod]\nendpoint = 2376\n', "engines.prod: endpoint must be a string"),
    ('[engines.prod]\nendpoint = "tcp://h.example:2376"\ntls_verify = "no"\n', "tls_verify must be true or false"),
    ('[engines.prod]\nendpoint = "tcp://h.example:2376"\ntls_ca = "certs/missing.pem"\n',
     r"engines.prod: tcp://h.example:2376: TLS ca file not found: .*certs/missing.pem"),
    ('[engines.prod]\nendpoint = "tcp://h.example:2376"\ntls_cert = "certs/cert.pem"\n', "give both or neither"),
    ('[engines.prod]\nendpoint = "tcp://h.example:2376?ca=x"\n', "endpoint takes no \\?query"),
    ('[engines.prod]\nendpoint = "unix:///x.sock"\ntls_verify = true\n', "TLS settings apply to tcp:// endpoints only"),
    ('[engines.prod]\nendpoint = "npipe:////./pipe/docker_engine"\n', "engines.prod: .*Windows named pipes"),
    ('[engines]\nprod = "tcp://h.example:2375"\n', "engines.prod: expected a table"),
    ('[engine.prod]\nendpoint = "unix:///x.sock"\n', "unknown top-level key 'engine'"),
    ('', "no engines"),
    ('[engines]\n', "no engines"),
])
def test_bad_inventories(tmp_path: Path, certs: Path, env: dict[str, str], text: str, match: str) -> None:
    inv = tmp_path / "engines.toml"
    inv.write_text(text)
    with pytest.raises(UsageError, match=match) as err:
        load_inventory(inv, env=env)
    assert str(err.value).startswith(f"{inv}: ")
    assert "\n" not in str(err.value)


def test_unreadable_inventories(tmp_path: Path, env: dict[str, str]) -> None:
    with pytest.raises(UsageError, match="cannot read the inventory: No such file"):
        load_inventory(tmp_path / "missing.toml", env=env)
    (tmp_path / "binary.toml").write_bytes(b"\xff\xfe\x00junk")
    with pytest.raises(UsageError, match="not valid TOML"):
        load_inventory(tmp_path / "binary.toml", env=env)


# --- combining both sources --------------------------------------------------------------------------

def test_nothing_given_means_the_farm(env: dict[str, str]) -> None:
    assert select_engines([], None, env) == []


def test_options_then_file_deduplicated_by_endpoint(tmp_path: Path, certs: Path, env: dict[str, str]) -> None:
    inv = tmp_path / "engines.toml"
    inv.write_text(INVENTORY)
    specs = select_engines(["mine=unix:///run/docker.sock", "build", "tcp://plain.example"], inv, env)
    assert [(s.label, s.endpoint) for s in specs] == [
        ("mine", "unix:///run/docker.sock"),
        ("build", "ssh://ci@build.example"),
        (None, "tcp://plain.example:2375"),
        ("prod-a", "tcp://build-1.example:2376"),
        ("laptop", "unix:///home/u/.docker/desktop/docker.sock"),
        ("lab", "tcp://lab.example:2376"),
    ]


def test_one_label_for_two_engines_is_an_error(tmp_path: Path, env: dict[str, str]) -> None:
    inv = tmp_path / "engines.toml"
    inv.write_text('[engines.laptop]\nendpoint = "unix:///other.sock"\n')
    with pytest.raises(UsageError, match="engine label 'laptop' names both unix:///a.sock and unix:///other.sock"):
        select_engines(["laptop=unix:///a.sock"], inv, env)


def test_select_engines_reads_os_environ_by_default(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    assert select_engines(["build"], None) == [EngineSpec("ssh://ci@build.example", label="build")]
