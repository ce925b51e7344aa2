"""Inline keyboards: pure functions over typed CallbackData factories (no I/O)."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.texts import Texts
from inference.styles import STYLES

ALL_STYLES = "all"  # the four artists


class StyleChoice(CallbackData, prefix="style"):
    style: str  # a style id, or ALL_STYLES


class LangChoice(CallbackData, prefix="lang"):
    lang: str


def style_keyboard(texts: Texts, lang: str, current: str | None) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    mark = "✓ "
    builder.button(
        text=(mark if current is None else "") + texts(lang, "style_all_button"),
        callback_data=StyleChoice(style=ALL_STYLES),
    )
    for style in STYLES.values():
        builder.button(
            text=(mark if current == style.id else "") + style.name(lang),
            callback_data=StyleChoice(style=style.id),
        )
    builder.adjust(1, 2)  # the "all" button on its own row, then two per row
    return builder.as_markup()


def lang_keyboard() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text="🇷🇺 Русский", callback_data=LangChoice(lang="ru"))
    builder.button(text="🇬🇧 English", callback_data=LangChoice(lang="en"))
    return builder.as_markup()
