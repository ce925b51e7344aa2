"""The bot token never reaches the log: a filter on the log handlers rewrites every record that holds it.

The token is part of every Bot API URL (`/bot<token>/method`, `/file/bot<token>/path`), and aiohttp puts
the URL into its errors: a file download answered with 404 logged the token in a traceback. Redacting at
each call site would miss the next library message, so the filter sits on the handlers, where every
record ends up, and covers the message, its arguments and the formatted traceback. Anything shaped like a
token is masked too (an older token in a stored URL, a token of another bot).
"""

from __future__ import annotations

import logging
import re

MASK = "<redacted>"
TOKEN_SHAPE = re.compile(r"\b\d{5,}:[A-Za-z0-9_-]{30,}")


class TokenRedactor(logging.Filter):
    def __init__(self, token: str):
        super().__init__()
        self.token = token

    def redact(self, text: str) -> str:
        if self.token:
            text = text.replace(self.token, MASK)
        return TOKEN_SHAPE.sub(MASK, text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            # Formatter.format uses exc_text when it is set: format the traceback once, redacted.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def redact_token_in_logs(token: str, logger: logging.Logger | None = None) -> TokenRedactor:
    """Put the filter on every handler of `logger` (the root logger by default): records of all loggers."""
    redactor = TokenRedactor(token)
    for handler in (logger or logging.getLogger()).handlers:
        handler.addFilter(redactor)
    return redactor
