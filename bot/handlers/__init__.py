"""The routers, in the order updates try them: features first, the catch-alls last."""

from __future__ import annotations

from aiogram import Router


def get_routers() -> list[Router]:
    from bot.handlers import fallback, photo, start, status, style

    modules = (start, style, status, photo, fallback)  # catch-alls last
    return [module.create_router() for module in modules]
