"""User-facing errors and exit codes.

Anything a user can get wrong (a scenario file, a policy, a detection file, a wire message, a
packet) raises a subclass of :class:`KizunaError`. The CLI turns it into one clear message on
stderr and an exit code; it never shows a traceback for user input.
"""

from __future__ import annotations

from dataclasses import dataclass, field

EXIT_OK = 0
EXIT_FAILURE = 1  # the job ran but a check it was asked to make failed
EXIT_BAD_INPUT = 2  # the input (file, option, message) is invalid


class KizunaError(Exception):
    """Base for errors the CLI reports without a traceback."""

    exit_code: int = EXIT_FAILURE


@dataclass
class Problem:
    """One thing wrong with an input: where it is, what was found, what was expected.

    ``source`` is the file (or stream) name; ``where`` is a key path (``sensor[2].period_s``),
    a line (``line 14``), a column or a byte offset (``offset 37``).
    """

    source: str
    where: str
    message: str
    got: object = None
    expected: str = ""
    line: int | None = None

    def __str__(self) -> str:
        loc = self.source
        if self.line is not None:
            loc += f":{self.line}"
        text = f"{loc}: {self.where}: {self.message}" if self.where else f"{loc}: {self.message}"
        if self.got is not None:
            text += f" (got {self.got!r}"
            text += f", expected {self.expected})" if self.expected else ")"
        elif self.expected:
            text += f" (expected {self.expected})"
        return text


@dataclass
class InputError(KizunaError):
    """One or more problems with a user-supplied input; exit code 2."""

    problems: list[Problem] = field(default_factory=list)
    exit_code: int = EXIT_BAD_INPUT

    def __post_init__(self) -> None:
        super().__init__(str(self))

    @classmethod
    def single(
        cls,
        source: str,
        where: str,
        message: str,
        got: object = None,
        expected: str = "",
        line: int | None = None,
    ) -> InputError:
        return cls([Problem(source, where, message, got, expected, line)])

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)
