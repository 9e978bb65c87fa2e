"""How a suite test's ending becomes its outcome: a verdict (fail), a check that does not apply (skipped),
an engine's refusal in its words (fail), or what the harness could not measure (error)."""

from __future__ import annotations

from typing import NoReturn

import pytest

from harness.errors import EngineError, EngineUnavailable
from harness.pytest_plugin import _engine_failure


def _ending(exc: BaseException) -> pytest.CallInfo[None]:
    def call() -> NoReturn:
        raise exc
    return pytest.CallInfo.from_call(call, when="call", reraise=())


def test_verdicts_refusals_and_skips_are_not_errors() -> None:
    assert _engine_failure(_ending(AssertionError("saves differ"))) is None
    assert _engine_failure(_ending(EngineError("docker-28: API error 500: no suitable export target"))) is None
    assert _engine_failure(pytest.CallInfo.from_call(lambda: pytest.skip("a single-platform image"), when="call",
                                                     reraise=())) is None


def test_what_could_not_be_measured_is_an_error_in_one_line() -> None:
    assert _engine_failure(_ending(EngineUnavailable("docker-28: connection lost"))) == \
        "EngineUnavailable: docker-28: connection lost"
    assert _engine_failure(_ending(KeyError("platform"))) == "KeyError: 'platform'"
