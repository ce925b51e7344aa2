"""/pose [scene], then a reference photo (or a photo captioned /pose): the user in that photo's pose.

`/pose` waits for the reference in pose_waits (jobs/pose_store.py), so the wait survives a restart.
Registered before train and photo: a waiting user's next picture is the reference, not a selfie or a
style request. While waiting, a sticker, a file that is not an image or a voice message is answered with
what a reference is; other commands work as usual. bot/pose_intake.py turns the reference into the job.
"""

from __future__ import annotations

import re
from html import escape

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message, Update

from bot.handlers.photo import IMAGE
from bot.pose_intake import PoseDesk, no_model_reply
from bot.texts import Texts
from jobs.aio import AsyncJobQueue
from jobs.pose_store import PoseStore
from jobs.store import UserRow
from jobs.training_store import TrainingStore

CANCEL_WORDS = ("cancel", "stop", "отмена", "стоп")
_CAPTION = re.compile(r"^/pose(?:@\w+)?(?:\s+(?P<scene>.*))?$", re.IGNORECASE | re.DOTALL)


def caption_scene(caption: str | None) -> str | None:
    """The scene of a photo captioned '/pose [scene]' ('' without one); None when the caption is not /pose."""
    match = _CAPTION.match((caption or "").strip())
    return " ".join((match.group("scene") or "").split()) if match else None


async def captioned(message: Message) -> bool | dict:
    scene = caption_scene(message.caption)
    return False if scene is None else {"scene": scene}


async def waiting(message: Message, poses: PoseStore, user_row: UserRow) -> bool | dict:
    wait = await poses.waiting(user_row.id)
    return False if wait is None else {"scene": wait.scene or ""}


async def pose_command(
    message: Message,
    command: CommandObject,
    texts: Texts,
    lang: str,
    poses: PoseStore,
    training: TrainingStore,
    queue: AsyncJobQueue,
    user_row: UserRow,
) -> None:
    scene = " ".join((command.args or "").split())
    if scene.lower() in CANCEL_WORDS:
        cancelled = await poses.done(user_row.id)
        await message.answer(texts(lang, "pose_cancelled" if cancelled else "pose_nothing"))
        return
    if (reply := await no_model_reply(texts, lang, training, queue, user_row.id)) is not None:
        await message.answer(reply)
        return
    await poses.wait(user_row.id, message.chat.id, scene or None)
    if scene:
        await message.answer(texts(lang, "pose_ask_scene", scene=escape(scene[:300])))
    else:
        await message.answer(texts(lang, "pose_ask"))


async def reference(
    message: Message, event_update: Update, scene: str, poses_desk: PoseDesk, user_row: UserRow, lang: str
) -> None:
    await poses_desk.accept(message, event_update.update_id, user_row, lang, scene)


def _answer(key: str):
    async def answer(message: Message, texts: Texts, lang: str) -> None:
        await message.answer(texts(lang, key))

    answer.__name__ = f"answer_{key}"
    return answer


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(pose_command, Command("pose"), F.text)
    router.message.register(reference, IMAGE, captioned)
    router.message.register(reference, IMAGE, waiting)
    # What cannot be a reference, while one is awaited (otherwise the catch-alls answer as usual).
    router.message.register(_answer("pose_sticker"), F.sticker, waiting)
    router.message.register(_answer("pose_not_image"), F.document, waiting)
    router.message.register(_answer("pose_other_media"), ~F.text, waiting)
    router.message.register(_answer("pose_waiting"), F.text, ~F.text.startswith("/"), waiting)
    return router
