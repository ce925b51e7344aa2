"""The routers, in the order updates try them: features first, the catch-alls last."""

from __future__ import annotations

from aiogram import Router


def get_routers() -> list[Router]:
    from bot.handlers import (
        admin,
        edited,
        fallback,
        forget,
        photo,
        portrait,
        pose,
        settings,
        start,
        status,
        style,
        train,
    )

    # train before photo: a user collecting selfies sends photos that are not style requests.
    # pose before both: the photo after /pose (or captioned /pose) is the reference.
    modules = (
        start,
        admin,
        style,
        settings,
        status,
        pose,
        train,
        portrait,
        forget,
        photo,
        edited,
        fallback,
    )  # catch-alls last
    return [module.create_router() for module in modules]
