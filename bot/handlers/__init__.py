"""The routers, in the order updates try them: features first, the catch-alls last."""

from __future__ import annotations

from aiogram import Router


def get_routers() -> list[Router]:
    from bot.handlers import admin, fallback, forget, photo, portrait, start, status, style, train

    # train before photo: a user collecting selfies sends photos that are not style requests.
    modules = (start, admin, style, status, train, portrait, forget, photo, fallback)  # catch-alls last
    return [module.create_router() for module in modules]
