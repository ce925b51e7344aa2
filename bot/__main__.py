"""`python -m bot`: the Telegram bot, long polling (or a webhook: WEBHOOK_URL); with INFERENCE=embedded also
one inference worker."""

from __future__ import annotations

import asyncio
import logging
import sys

from pydantic import ValidationError

from bot.settings import BotSettings


def load_settings() -> BotSettings:
    try:
        return BotSettings()  # type: ignore[call-arg]
    except ValidationError as error:
        problems = []
        for item in error.errors():
            name = str(item["loc"][0]).upper() if item["loc"] else "settings"
            if item["type"] == "missing":
                problems.append(f"{name} is not set (put it in the environment or .env)")
            else:
                problems.append(f"{name} is malformed: {item['msg'].removeprefix('Value error, ')}")
        print("artbooth bot: " + "; ".join(problems), file=sys.stderr)
        raise SystemExit(2) from None


def usage() -> str:
    lines = [__doc__.strip(), "", "Settings (environment or .env):"]
    for name, field in BotSettings.model_fields.items():
        value = None if field.is_required() else field.get_default(call_default_factory=True)
        default = (
            "(required)" if field.is_required() else "(unset)" if value in (None, frozenset()) else str(value)
        )
        lines.append(f"  {name.upper():<24} {default}")
    return "\n".join(lines)


def main() -> int:
    if any(arg in ("-h", "--help") for arg in sys.argv[1:]):
        print(usage())
        return 0
    settings = load_settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from bot.log_redaction import redact_token_in_logs

    redact_token_in_logs(settings.bot_token.get_secret_value())
    from bot.app import FatalError, run

    try:
        asyncio.run(run(settings))
    except FatalError as error:
        print(f"artbooth bot: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
