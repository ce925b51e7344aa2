"""Inline keyboards: pure functions over typed CallbackData factories (no I/O)."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.texts import Texts
from contract.styles import STYLES

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


# -- /settings: quality or fast (fast mode) ------------------------------------------------------------
class ModeChoice(CallbackData, prefix="mode"):
    fast: bool


def mode_keyboard(texts: Texts, lang: str, fast: bool) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for value, key in ((False, "mode_quality_button"), (True, "mode_fast_button")):
        builder.button(
            text=("✓ " if value == fast else "") + texts(lang, key), callback_data=ModeChoice(fast=value)
        )
    return builder.as_markup()


# -- /train, /portrait, /forget ----------------------------------------------------------------
class TrainClass(CallbackData, prefix="cls"):
    cls: str  # contract.kinds.SUBJECT_CLASSES


class SceneChoice(CallbackData, prefix="scene"):
    scene: str  # an contract.scenes id


class ForgetChoice(CallbackData, prefix="forget"):
    sure: bool


def class_keyboard(texts: Texts, lang: str, classes: tuple[str, ...]) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for cls in classes:
        builder.button(text=texts.class_name(lang, cls), callback_data=TrainClass(cls=cls))
    builder.adjust(2)
    return builder.as_markup()


def scene_keyboard(texts: Texts, lang: str, scene_ids: list[str]) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for scene_id in scene_ids:
        builder.button(text=texts.scene_name(lang, scene_id), callback_data=SceneChoice(scene=scene_id))
    builder.adjust(2)
    return builder.as_markup()


def forget_keyboard(texts: Texts, lang: str) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=texts(lang, "forget_yes"), callback_data=ForgetChoice(sure=True))
    builder.button(text=texts(lang, "forget_no"), callback_data=ForgetChoice(sure=False))
    return builder.as_markup()
