"""`same_json` answers exactly what ``not json_changes`` answers, deepdiff or not."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.diff.jsondiff import json_changes, same_json

SCALARS = st.one_of(st.none(), st.booleans(), st.sampled_from([0, 1, -0.0, 0.0, 1.0, 2]), st.sampled_from("abc"))
JSON = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.tuples(inner), st.dictionaries(st.sampled_from("xyz"), inner, max_size=3),
), max_leaves=8)


@settings(max_examples=400, deadline=None)
@given(JSON, JSON)
def test_same_json_is_no_json_changes(a: Any, b: Any) -> None:
    assert same_json(a, b) == (not json_changes(a, b))


def test_a_plain_difference_needs_no_deepdiff() -> None:
    a = {"manifests": [{"digest": "sha256:aa", "size": 1}], "schemaVersion": 2}
    assert not same_json(a, {**a, "manifests": [{"digest": "sha256:bb", "size": 1}]})
    assert same_json(a, {"schemaVersion": 2, "manifests": [{"size": 1, "digest": "sha256:aa"}]})
