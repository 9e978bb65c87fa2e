"""Just enough of Go's encoding/json to reproduce the bytes moby hashes into legacy layer IDs.

Docker <= 24 names each layer directory of a save by a "v1 ID": the sha256 of
``json.Marshal`` of a `V1Image` struct (moby ``image/v1.CreateID``).  Go writes
struct fields in declaration order, skips ``omitempty`` zero values, writes nil
slices and maps as ``null``, sorts map keys, escapes ``<``, ``>``, ``&``,
U+2028 and U+2029, and matches JSON keys to fields case-insensitively when
decoding.  The struct shapes below are moby 24's (`image.V1Image`,
`container.Config`, `container.HealthConfig`); fields of other types than
declared are decoded as their zero value instead of failing.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping, Sequence

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
            "<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def string(s: str) -> str:
    """A JSON string as Go 1.20 writes it."""
    out = []
    for ch in s:
        esc = _ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
        elif ch < " ":
            out.append("\\u%04x" % ord(ch))
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def obj(pairs: Sequence[tuple[str, str]]) -> str:
    """A JSON object from already-encoded values, in the given order."""
    return "{" + ",".join(f"{string(k)}:{v}" for k, v in pairs) + "}"


def marshal_map(value: Mapping[str, str]) -> str:
    """A Go map of already-encoded values: keys sorted."""
    return obj(sorted(value.items()))


# ---- decoding helpers: JSON value -> Go value (None stands for nil / zero) ----

def _str(v: Any) -> str:
    return v if isinstance(v, str) else ""


def _bool(v: Any) -> bool:
    return v if isinstance(v, bool) else False


def _int(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


def _str_list(v: Any) -> list[str] | None:
    return [x for x in v if isinstance(x, str)] if isinstance(v, list) else None


def _str_slice(v: Any) -> list[str] | None:
    """strslice.StrSlice also accepts a single string."""
    return [v] if isinstance(v, str) else _str_list(v)


def _set(v: Any) -> list[str] | None:
    return sorted(v) if isinstance(v, dict) else None


def _str_map(v: Any) -> dict[str, str] | None:
    return {k: x for k, x in v.items() if isinstance(x, str)} if isinstance(v, dict) else None


# ---- encoding helpers: Go value -> JSON text ----

def _enc_list(v: list[str] | None) -> str:
    return "null" if v is None else "[" + ",".join(string(x) for x in v) + "]"


def _enc_set(v: list[str] | None) -> str:
    return "null" if v is None else obj([(k, "{}") for k in v])


def _enc_map(v: dict[str, str] | None) -> str:
    return "null" if v is None else marshal_map({k: string(x) for k, x in v.items()})


def _enc_bool(v: bool) -> str:
    return "true" if v else "false"


def _empty(v: Any) -> bool:
    """Go's omitempty test for values (false, 0, "", nil or empty slices and maps)."""
    return v is None or v is False or (not isinstance(v, bool) and v == 0) or v == "" or v == [] or v == {}


def _nil(v: Any) -> bool:
    """omitempty for pointers: only nil is empty (a pointer to 0 is written)."""
    return v is None


Omit = Callable[[Any], bool] | None
Field = tuple[str, Callable[[Any], Any], Callable[[Any], str], Omit]  # name, decode, encode, omitempty test

_HEALTH: list[Field] = [
    ("Test", _str_list, _enc_list, _empty),
    ("Interval", _int, str, _empty),
    ("Timeout", _int, str, _empty),
    ("StartPeriod", _int, str, _empty),
    ("Retries", _int, str, _empty),
]


def _health(v: Any) -> str | None:
    return struct(_HEALTH, v) if isinstance(v, dict) else None


def _opt_int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


CONFIG: list[Field] = [
    ("Hostname", _str, string, None),
    ("Domainname", _str, string, None),
    ("User", _str, string, None),
    ("AttachStdin", _bool, _enc_bool, None),
    ("AttachStdout", _bool, _enc_bool, None),
    ("AttachStderr", _bool, _enc_bool, None),
    ("ExposedPorts", _set, _enc_set, _empty),
    ("Tty", _bool, _enc_bool, None),
    ("OpenStdin", _bool, _enc_bool, None),
    ("StdinOnce", _bool, _enc_bool, None),
    ("Env", _str_list, _enc_list, None),
    ("Cmd", _str_slice, _enc_list, None),
    ("Healthcheck", _health, lambda v: "null" if v is None else v, _nil),
    ("ArgsEscaped", _bool, _enc_bool, _empty),
    ("Image", _str, string, None),
    ("Volumes", _set, _enc_set, None),
    ("WorkingDir", _str, string, None),
    ("Entrypoint", _str_slice, _enc_list, None),
    ("NetworkDisabled", _bool, _enc_bool, _empty),
    ("MacAddress", _str, string, _empty),
    ("OnBuild", _str_list, _enc_list, None),
    ("Labels", _str_map, _enc_map, None),
    ("StopSignal", _str, string, _empty),
    ("StopTimeout", _opt_int, lambda v: "null" if v is None else str(v), _nil),
    ("Shell", _str_slice, _enc_list, _empty),
]


def container_config(v: Any) -> str:
    """`container.Config` decoded from `v` (a dict, or nothing: the zero value) and marshalled."""
    return struct(CONFIG, v if isinstance(v, dict) else {})


def struct(fields: list[Field], data: Mapping[str, Any]) -> str:
    """Decode `data` into a Go struct of `fields` (keys matched case-insensitively, last wins) and marshal it."""
    values: dict[str, Any] = {}
    for key, raw in data.items():
        name = next((f[0] for f in fields if f[0] == key), None) or next(
            (f[0] for f in fields if f[0].lower() == key.lower()), None)
        if name is not None:
            values[name] = raw
    pairs = []
    for name, decode, encode, omit in fields:
        decoded = decode(values.get(name))
        if omit is not None and omit(decoded):
            continue
        pairs.append((name, encode(decoded)))
    return obj(pairs)


_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$")
ZERO_TIME = "0001-01-01T00:00:00Z"


def time_value(v: Any) -> str:
    """A time.Time decoded from an RFC 3339 string and re-marshalled (RFC 3339 with trimmed nanoseconds)."""
    m = _TIME.match(v) if isinstance(v, str) else None
    if not m:
        return string(ZERO_TIME)
    base, frac, zone = m.groups()
    frac = (frac or "")[:9].rstrip("0")
    zone = "Z" if zone in ("Z", "+00:00", "-00:00") else zone
    return string(base + (f".{frac}" if frac else "") + zone)
