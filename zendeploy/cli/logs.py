"""The CLI's one handler for the library's ``logging``: zendeploy's modules log to ``logging.getLogger(__name__)``
(under ``zendeploy``), and a command prints those records on stderr in the CLI's own style: ``warning: ...`` in
yellow, errors in red, and with ``--verbose`` also the library's info lines (dim). A library user configures
``logging`` as usual instead; nothing here is installed on import."""

from __future__ import annotations

import logging


class CliLogHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        from rich.markup import escape

        from .common import _one_line, err_console

        try:
            if record.levelno >= logging.ERROR:
                _one_line(record.getMessage())  # the CLI's error line
                return
            message = escape(record.getMessage())
            if record.levelno >= logging.WARNING:
                err_console.print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)
            else:
                err_console.print(message, style="dim", highlight=False, soft_wrap=True)
        except Exception:  # noqa: BLE001 - a log line must never end a command
            self.handleError(record)


def install(verbose: bool = False) -> logging.Logger:
    """Route the ``zendeploy`` loggers to the CLI's stderr (once; calling again only changes the level)."""
    logger = logging.getLogger("zendeploy")
    if not any(isinstance(h, CliLogHandler) for h in logger.handlers):
        logger.addHandler(CliLogHandler())
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    logger.propagate = False
    return logger
