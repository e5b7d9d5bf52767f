"""Load a service's settings once, or explain in one line which variable is wrong.

A bad value (`OCR_MODEL_WORKERS=banana`) must end the process with a line an operator can act on
and a non-zero exit, not a pydantic traceback: `load_settings` turns every validation error into
`<VARIABLE>: <problem>` without echoing the value (it may be a secret).
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsError

S = TypeVar("S", bound=BaseSettings)

#: Exit status of a process whose settings are invalid (a usage error, as sysexits' EX_USAGE-ish 2).
EXIT_BAD_SETTINGS = 2


class SettingsLoadError(Exception):
    """Settings could not be read; the message is one line naming each variable at fault."""


def _variable(cls: type[BaseSettings], location: tuple[int | str, ...]) -> str:
    prefix = str(cls.model_config.get("env_prefix", ""))
    field = str(location[0]) if location else ""
    return f"{prefix}{field}".upper() if field else f"{prefix}*"


def describe(cls: type[BaseSettings], err: ValidationError) -> str:
    """`VAR: problem; VAR: problem` for every error of `err`."""
    parts = []
    for error in err.errors(include_url=False, include_input=False):
        parts.append(f"{_variable(cls, tuple(error['loc']))}: {error['msg']}")
    return "; ".join(parts)


def load_settings(cls: type[S]) -> S:
    """`cls()` read from the environment; SettingsLoadError with a one-line reason otherwise."""
    try:
        return cls()
    except ValidationError as err:
        raise SettingsLoadError(f"invalid setting {describe(cls, err)}") from None
    except SettingsError as err:
        # pydantic-settings' own parse errors ("error parsing value for field "x" from source
        # ...") name the field but not the variable.
        raise SettingsLoadError(f"invalid setting: {err}".replace("\n", " ")) from None
