"""The one exception tree of taskqueue-kit.

Every error the kit raises on purpose derives from :class:`TaskQueueKitError`, so one
``except TaskQueueKitError`` catches them all, and each also derives from the builtin it
resembles, so ``except ValueError`` or ``except TypeError`` written for plain Python still
works. Where the kit wraps an error from pydantic, Celery or kombu it chains it
(``raise ... from exc``) so the original stays visible::

    TaskQueueKitError
    ├── ConfigurationError      (also a ValueError)   a bad setting or option value; names it
    │   ├── OptionError         (also a TypeError)    an unknown option, or two that clash
    │   └── MissingExtra        (also an ImportError) an optional dependency not installed
    ├── UnknownQueueError       (also a LookupError)  a task routed to an undeclared queue
    ├── InvalidTaskId           (also a ValueError)   empty, too long or odd characters
    ├── TaskNotFound            (also a LookupError)  an id that was never sent
    ├── ResultDecodeError                              a stored record that is not the kit's JSON
    └── DeliveryLimitExceeded   (also a RuntimeError) a task whose worker died at each delivery

The same bad input raises the same error whichever entry point sees it: ``max_retries=-1``
is a :class:`ConfigurationError` from ``RetryPolicy(...)``, ``RetryPolicy.model_validate``
and ``retrying_task(...)`` alike, and a misspelt name is an :class:`OptionError` from
``TaskQueueSettings``, ``RetryPolicy`` and ``retrying_task``.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterator
from contextlib import contextmanager

from pydantic import ValidationError

__all__ = [
    "ConfigurationError",
    "DeliveryLimitExceeded",
    "InvalidTaskId",
    "MissingExtra",
    "OptionError",
    "ResultDecodeError",
    "TaskNotFound",
    "TaskQueueKitError",
    "UnknownQueueError",
    "validation_errors_as_configuration_errors",
]


class TaskQueueKitError(Exception):
    """Root of every error taskqueue-kit raises on purpose."""


class ConfigurationError(TaskQueueKitError, ValueError):
    """A value that cannot work, for a setting, a retry policy or a task option.

    Attributes:
        field: Name of the setting or option at fault, or ``None`` when several are.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    @classmethod
    def from_validation_error(
        cls, exc: ValidationError, *, subject: str = "settings", known: Collection[str] = ()
    ) -> ConfigurationError:
        """Summarise pydantic's error, naming the first field at fault.

        An input pydantic forbids as extra (a name the model has no field for) makes an
        :class:`OptionError`, with a suggestion drawn from ``known``. A kit error raised
        inside pydantic's validation (a validator, a custom ``__init__``) comes back as it is.

        Args:
            exc: pydantic's error.
            subject: What was being validated, for the message (``settings``, ``retry policy``).
            known: The valid names, for a "did you mean" hint.
        """
        errors = exc.errors(include_url=False)
        for error in errors:
            nested = error.get("ctx", {}).get("error")
            if isinstance(nested, ConfigurationError):
                return nested
        lines: list[str] = []
        unknown: list[str] = []
        for error in errors:
            where = ".".join(str(part) for part in error["loc"]) or f"({subject})"
            line = f"{where}: {error['msg']}"
            if error["type"] == "extra_forbidden" and error["loc"]:
                unknown.append(str(error["loc"][0]))
                line += _hint(unknown[-1], known, parenthesised=True)
            lines.append(line)
        message = f"invalid {subject}: " + "; ".join(lines)
        if unknown:
            return OptionError(message, field=unknown[0])
        first = next((str(error["loc"][0]) for error in errors if error["loc"]), None)
        return cls(message, field=first)


class OptionError(ConfigurationError, TypeError):
    """An option nothing takes (misspelt, or another library's), or two that exclude each other.

    A ``TypeError``, as Python raises for an unexpected keyword argument, and a
    :class:`ConfigurationError`, naming the option in ``field``.
    """

    @classmethod
    def unknown(cls, option: str, known: Collection[str], *, where: str) -> OptionError:
        """The error for an unknown ``option``, suggesting the closest of ``known``."""
        return cls(f"{where} got an unknown option {option!r}{_hint(option, known)}", field=option)


class MissingExtra(ConfigurationError, ImportError):
    """An optional dependency is not installed; the message names the extra that brings it.

    A :class:`ConfigurationError` when a setting needs it (a ``redis://`` URL without
    redis-py) and an ``ImportError`` when an import does (``taskqueue_kit.web.fastapi``
    without FastAPI), so the ``except`` written for either catches it.

    Attributes:
        extra: The extra to install, e.g. ``"redis"``.
        name: The module that is missing (as for any ``ImportError``), or ``None``.
        field: The setting that needs the extra, or ``None``.
    """

    def __init__(
        self, feature: str, extra: str, *, module: str | None = None, field: str | None = None
    ) -> None:
        detail = f" ({module} is not installed)" if module and module != extra else ""
        super().__init__(
            f"{feature} needs the {extra} extra{detail}: pip install 'taskqueue-kit[{extra}]'",
            field=field,
        )
        self.extra = extra
        self.name = module


def _hint(option: str, known: Collection[str], *, parenthesised: bool = False) -> str:
    if not known:
        return ""
    names = sorted(known)
    close = difflib.get_close_matches(option, names, n=1)
    if parenthesised:
        return f" (did you mean {close[0]!r}?)" if close else ""
    return f"; did you mean {close[0]!r}?" if close else f"; valid options: {', '.join(names)}"


@contextmanager
def validation_errors_as_configuration_errors(
    subject: str, known: Collection[str] = ()
) -> Iterator[None]:
    """Turn a pydantic ``ValidationError`` raised in the block into a kit error.

    Raises:
        ConfigurationError: for pydantic's error, chained to it.
    """
    try:
        yield
    except ValidationError as exc:
        error = ConfigurationError.from_validation_error(exc, subject=subject, known=known)
        if error.__traceback__ is None:
            raise error from exc
        # Ours, raised inside pydantic's validation: raised again as it was, with its own
        # cause, and without pydantic's wrapper as a context.
        error.__suppress_context__ = True
        raise error  # noqa: B904 - the cause is the error's own


class UnknownQueueError(TaskQueueKitError, LookupError):
    """A task would go to a queue that is not declared, where no worker would read it.

    Attributes:
        queue: The undeclared queue name.
        task_name: The task being sent.
    """

    def __init__(self, queue: str, task_name: str, declared: tuple[str, ...]) -> None:
        super().__init__(
            f"task {task_name!r} routes to queue {queue!r}, which is not declared "
            f"(declared: {', '.join(declared)}); add it to TaskQueueSettings.queues"
        )
        self.queue = queue
        self.task_name = task_name


class InvalidTaskId(TaskQueueKitError, ValueError):
    """A task id that is empty, too long or holds characters outside ``[A-Za-z0-9._:-]``."""


class TaskNotFound(TaskQueueKitError, LookupError):
    """An id the result backend has no record of: never sent, or expired."""


class ResultDecodeError(TaskQueueKitError):
    """A stored result that is not JSON the kit wrote; it is reported, never unpickled."""


class DeliveryLimitExceeded(TaskQueueKitError, RuntimeError):
    """A task whose worker process died on each of its last ``max_deliveries`` deliveries.

    Recorded as the task's failure instead of running it again; see ``max_deliveries``.
    """
