"""Secret values read from the environment or from files, masked when printed."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from hqsync.config.files import MAX_SECRET_FILE_BYTES, FileReadError, read_limited
from hqsync.config.models import FromEnv, FromFile

MASK = "********"


class SecretValue:
    """A secret and where it came from; ``str`` and ``repr`` never show the value."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str) -> None:
        self._value = value
        self.source = source

    def reveal(self) -> str:
        """Return the secret itself, for the code that sends it."""
        return self._value

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return f"SecretValue({MASK}, source={self.source!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretValue):
            return NotImplemented
        return self._value == other._value and self.source == other.source

    def __hash__(self) -> int:
        return hash((self._value, self.source))

    def __copy__(self) -> SecretValue:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> SecretValue:
        return self

    def __reduce__(self) -> tuple[object, ...]:
        # A pickle would carry the value to wherever it is written; refuse it.
        raise TypeError("a SecretValue cannot be pickled")


class SecretSourceError(Exception):
    """A secret source cannot be read; the message never contains a value."""


def resolve_secret(
    source: FromEnv | FromFile, environ: Mapping[str, str], config_dir: Path
) -> SecretValue:
    """Read a secret from its source; raise SecretSourceError if missing or empty."""
    if isinstance(source, FromEnv):
        name = source.from_env
        env_value = environ.get(name)
        if env_value is None:
            raise SecretSourceError(f"environment variable {name} is not set")
        if not env_value.strip():
            raise SecretSourceError(f"environment variable {name} is empty")
        return SecretValue(env_value, f"env:{name}")
    path = Path(source.from_file).expanduser()
    if not path.is_absolute():
        path = config_dir / path
    try:
        data = read_limited(path, MAX_SECRET_FILE_BYTES)
    except FileNotFoundError:
        raise SecretSourceError(f"secret file {path} does not exist") from None
    except FileReadError as exc:
        raise SecretSourceError(f"cannot read secret file {path}: {exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SecretSourceError(
            f"secret file {path} is not UTF-8 text (invalid byte at offset "
            f"{exc.start}); write the secret as UTF-8 text"
        ) from None
    # Files written by editors and `echo` end with a newline that is not part of
    # the secret.
    value = text.rstrip("\r\n")
    if not value.strip():
        raise SecretSourceError(f"secret file {path} is empty")
    return SecretValue(value, f"file:{source.from_file}")
