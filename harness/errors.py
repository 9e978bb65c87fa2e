"""The harness's own exceptions, caught once at the CLI edge.

    HarnessError                 exit 2 unless a subclass says otherwise
    ├── UsageError               bad arguments or configuration
    │   └── CannotCarry          the reference writer cannot hold part of an archive: refused, not dropped
    ├── EngineError              an engine could not do what was asked
    │   ├── EngineUnavailable    unreachable, not started, or gone mid-call
    │   ├── EngineMismatch       the engine reports another version or storage than asked
    │   └── ImageNotFound
    ├── ProvisionError           packages could not be fetched or unpacked
    ├── NotMeasured              exit 3: a run ended without measuring what was asked
    ├── ReportNotWritten         exit 6: a report could not be written where asked (kept elsewhere)
    └── ArchiveError             an archive cannot be read as an image
        ├── MalformedArchive     not a tar, truncated, hostile paths, bad JSON ...
        └── DigestMismatch       bytes do not match the digest that names them

Each carries the fields a user needs to act (engine id, reference, digest) and a
one-line `hint`; `str(err)` is the single line the CLI prints.
"""

from __future__ import annotations


class HarnessError(Exception):
    """Base of every error the harness raises on purpose."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(HarnessError):
    """The user asked for something that cannot be done as asked."""


class CannotCarry(UsageError):
    """The canonical form cannot hold something the archive has (a blob it lacks, a media type it does not
    know, an index in the legacy layout): writing it without would be a smaller archive, so it is refused."""


class ProvisionError(HarnessError):
    """Engine packages could not be fetched or unpacked."""


class NotMeasured(HarnessError):
    """A suite run ended before it measured what was asked (see `harness.report.exit_status`)."""

    exit_code = 3


class ReportNotWritten(HarnessError):
    """A report could not be written where asked; the message says where it was kept instead."""

    exit_code = 6


class EngineError(HarnessError):
    """An engine failed at an operation."""

    def __init__(self, message: str, *, engine: str | None = None, hint: str | None = None) -> None:
        super().__init__(f"{engine}: {message}" if engine else message, hint=hint)
        self.engine = engine


class EngineUnavailable(EngineError):
    """The engine cannot be reached (not running, socket gone, connection dropped)."""


class EngineMismatch(EngineError):
    """The engine came up as something other than what was asked for."""


class ImageNotFound(EngineError):
    """The engine has no image by that reference."""

    def __init__(self, ref: str, *, engine: str | None = None, detail: str | None = None) -> None:
        super().__init__(f"no such image: {ref}" + (f" ({detail})" if detail else ""), engine=engine)
        self.ref = ref


class ArchiveError(HarnessError):
    """An archive cannot be read as an image archive."""

    def __init__(self, message: str, *, path: str | None = None, hint: str | None = None) -> None:
        super().__init__(f"{path}: {message}" if path else message, hint=hint)
        self.path = path


class MalformedArchive(ArchiveError):
    """Structurally broken or hostile input."""


class DigestMismatch(ArchiveError):
    """Content does not hash to the digest that names it, where reading cannot go on."""

    def __init__(self, what: str, expected: str, actual: str, *, path: str | None = None) -> None:
        super().__init__(f"{what}: expected {expected}, content hashes to {actual}", path=path)
        self.expected = expected
        self.actual = actual
