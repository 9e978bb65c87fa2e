"""The options of a suite run, declared once.

The pytest plugin (`harness.pytest_plugin`) adds them to pytest's parser, the
commands that run the suites (`run`, `baseline`) to theirs, and `run` hands what
it was given on to pytest with `Option.argv`: one name, one help text, one
default everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping


@dataclass(frozen=True)
class Option:
    """One option: its flag and the keywords of argparse's ``add_argument`` (pytest's ``addoption`` takes the same)."""

    flag: str
    settings: Mapping[str, Any]

    def add_to(self, parser: Any) -> None:
        """Add to an argparse parser or a pytest option group."""
        add = getattr(parser, "addoption", None) or parser.add_argument
        add(self.flag, **self.settings)

    def argv(self, value: Any) -> list[str]:
        """The arguments that give pytest `value` for this option (nothing for an unset one)."""
        if self.settings.get("action") == "append":
            return [arg for v in value for arg in (self.flag, str(v))]
        if self.settings.get("action") == "store_true":
            return [self.flag] if value else []
        return [] if value is None else [self.flag, str(value)]


ENGINE = Option("--engine", {"action": "append", "default": [], "metavar": "SPEC",
                             "help": "engine to test: unix:///sock, tcp://host:port, ssh://user@host, a Docker context "
                                     "name, or LABEL=SPEC (repeatable; default: the local farm)"})
ENGINES_FILE = Option("--engines-file", {"metavar": "TOML", "help": "inventory of engines (TOML)"})
FARM_ENGINE = Option("--farm-engine", {"action": "append", "default": [], "metavar": "ID",
                                       "help": "only these farm engines (default: all six)"})
IMAGE = Option("--image", {"action": "append", "default": [], "metavar": "NAME",
                           "help": "only these images, corpus or the user's (repeatable; default: all)"})
IMAGE_ARCHIVE = Option("--image-archive", {"action": "append", "default": [], "metavar": "[NAME=]PATH",
                                           "help": "measure this image archive too (docker or OCI, single- or "
                                                   "multi-platform; repeatable); never modified"})
IMAGE_REF = Option("--image-ref", {"action": "append", "default": [], "metavar": "[NAME=]REF",
                                   "help": "measure this registry image too, fetched once with your docker "
                                           "credentials (repeatable)"})
REPEAT = Option("--repeat", {"type": int, "default": 3, "help": "how many times to repeat saves (default 3)"})
REPORT_DIR = Option("--report-dir", {"type": Path, "help": "write report.json here"})
RUN_ID = Option("--run-id", {"help": "the run's id in report.json (default: a new one)"})
PROGRESS_LINES = Option("--progress-lines", {"action": "store_true",
                                             "help": "one line per finished suite test on stderr, in place of "
                                                     "pytest's dots"})
KEEP_SAVES = Option("--keep-saves", {"action": "store_true",
                                     "help": "keep what each test saved (under pytest's basetemp, its retention "
                                             "policy); default: removed when the test ends"})
