"""Every user-visible string, in Russian and English, in one place. HTML parse mode: escape user content."""

from __future__ import annotations

from html import escape

from bot.texts_admin import ADMIN_EN, ADMIN_RU
from bot.texts_pose import POSE_EN, POSE_RU
from bot.texts_train import CLASS_NAMES, SELFIE_REASON_OTHER, SELFIE_REASONS, TRAIN_EN, TRAIN_RU
from contract.scenes import SCENES_BY_ID
from contract.styles import ARTISTS, STYLES
from jobs import errors

LANGS = ("en", "ru")


def lang_from_code(language_code: str | None) -> str:
    """Telegram's language_code → 'ru' or 'en'."""
    return "ru" if (language_code or "").lower().startswith("ru") else "en"


_EN = {
    "start": (
        "Hi! I'm <b>artbooth</b>. Send me a photo — a portrait works best — and I'll paint it four ways: "
        "{artists}, with a caption of what I see.\n\n"
        "/style — choose one style instead of four\n/settings — quality or speed\n"
        "/train — teach me your face, then /me, /portrait and /pose paint you\n"
        "/status — your photos in the queue\n"
        "/cancel — cancel the waiting ones\n/lang — Русский / English\n/help — how it works"
    ),
    "help": (
        "<b>How it works</b>\n"
        "1. Send a photo (or an image as a file, up to {max_mb} MB).\n"
        "2. I put it in the queue and tell you your place.\n"
        "3. In a minute or so you get an album of four pictures with a caption.\n\n"
        "<b>Styles</b>: by default the four artists ({artists}). "
        "<code>/style vangogh</code> makes your next photos come back as four Van Gogh variants, "
        "<code>/style all</code> returns to the four artists, and a photo with the caption "
        "<code>/style banksy</code> is painted in that style just once.\n\n"
        "You can have up to {max_jobs} photos in progress at a time. /status shows them, /cancel cancels "
        "the waiting ones, /lang switches the language."
    ),
    "queued_now": "Got it! Painting your photo {what} now…",
    "queued_position": "Got it! Your photo is in the queue: {position} ahead of it. I'll paint it {what}.",
    "what_artists": "in four artists' styles",
    "what_one": "as four <b>{name}</b> variants",
    "too_many": (
        "You already have {limit} photos in progress — that's the most at a time. "
        "Send more when they're done (/status shows them, /cancel cancels the waiting ones)."
    ),
    "queue_full": "I'm very busy right now and the queue is full. Please try again in a few minutes.",
    "file_too_big": "This file is {size_mb} MB; I can take up to {max_mb} MB. Please send a smaller picture.",
    "download_failed": "I couldn't download your photo from Telegram. Please send it again.",
    "style_menu": "Choose the style for your next photos (now: {current}):",
    "style_all_button": "🎨 All four artists",
    "style_current_all": "the four artists",
    "style_set_one": "Done: your next photos come back as four <b>{name}</b> variants. /style all returns to the four artists.",
    "style_set_all": "Done: your next photos come back in the four artists' styles.",
    "style_unknown": "I don't know the style “{given}”. The styles are:\n{styles}\n\nFor example: <code>/style vangogh</code>, or <code>/style all</code> for the four artists.",
    "style_line": "<code>{id}</code> — {name}",
    "status_none": "You have no photos in progress.",
    "status_head": "Your photos:",
    "status_running": "• #{id}: being painted ({percent}%)",
    "status_queued": "• #{id}: waiting, {position} ahead",
    "status_queue": "Queue: {queued} waiting, {running} in progress.",
    "cancel_none": "You have no waiting photos to cancel.",
    "cancel_done": "Cancelled {count} waiting photo(s).",
    "cancel_running": "The one being painted now will still arrive.",
    "lang_menu": "Choose your language:",
    "lang_set": "Language: English.",
    "fallback_text": "Send me a photo and I'll paint it. /help explains how.",
    "fallback_command": "I don't know that command. /help lists what I can do.",
    "fallback_media": "I can only paint photos — not stickers, voice messages or videos. Send me a photo, please.",
    "fallback_document": "That file isn't an image. Send a photo, or a JPEG, PNG or WebP file.",
    "button_expired": "This button no longer works. Try the command again.",
    "album_caption": "🖼 <i>{caption}</i>\n\n{styles}",
    "failed": "Sorry, I couldn't paint your photo: {reason}",
    "update_failed": "Sorry, I couldn't handle that message: something broke on my side. Please try again later.",
    "cmd_start": "what I do",
    "cmd_help": "how it works",
    "cmd_style": "choose a style",
    "cmd_status": "your photos in the queue",
    "cmd_cancel": "cancel the waiting photos",
    "cmd_lang": "Русский / English",
}

_RU = {
    "start": (
        "Привет! Я <b>artbooth</b>. Пришлите фото — лучше всего портрет, — и я нарисую его в четырёх стилях: "
        "{artists}, с подписью о том, что я вижу.\n\n"
        "/style — выбрать один стиль вместо четырёх\n/settings — качество или скорость\n"
        "/train — выучить ваше лицо, после чего /me, /portrait и /pose нарисуют вас\n"
        "/status — ваши фото в очереди\n"
        "/cancel — отменить ожидающие\n/lang — Русский / English\n/help — как это работает"
    ),
    "help": (
        "<b>Как это работает</b>\n"
        "1. Пришлите фото (или картинку файлом, до {max_mb} МБ).\n"
        "2. Я поставлю его в очередь и скажу, какое оно по счёту.\n"
        "3. Примерно через минуту придёт альбом из четырёх картин с подписью.\n\n"
        "<b>Стили</b>: по умолчанию четыре художника ({artists}). "
        "<code>/style vangogh</code> — следующие фото придут четырьмя вариантами в стиле Ван Гога, "
        "<code>/style all</code> — снова четыре художника, а фото с подписью <code>/style banksy</code> "
        "будет нарисовано в этом стиле один раз.\n\n"
        "Одновременно в работе может быть до {max_jobs} фото. /status покажет их, /cancel отменит "
        "ожидающие, /lang переключит язык."
    ),
    "queued_now": "Принято! Рисую ваше фото {what}…",
    "queued_position": "Принято! Фото в очереди, перед ним: {position}. Нарисую его {what}.",
    "what_artists": "в стилях четырёх художников",
    "what_one": "в четырёх вариантах: <b>{name}</b>",
    "too_many": (
        "У вас уже {limit} фото в работе — это максимум. Присылайте ещё, когда они будут готовы "
        "(/status покажет их, /cancel отменит ожидающие)."
    ),
    "queue_full": "Сейчас очень много работы, очередь заполнена. Попробуйте, пожалуйста, через несколько минут.",
    "file_too_big": "Этот файл весит {size_mb} МБ, а я принимаю до {max_mb} МБ. Пришлите картинку поменьше.",
    "download_failed": "Не получилось скачать ваше фото из Telegram. Пришлите его ещё раз, пожалуйста.",
    "style_menu": "Выберите стиль для следующих фото (сейчас: {current}):",
    "style_all_button": "🎨 Все четыре художника",
    "style_current_all": "четыре художника",
    "style_set_one": "Готово: следующие фото придут четырьмя вариантами в стиле <b>{name}</b>. /style all — снова четыре художника.",
    "style_set_all": "Готово: следующие фото придут в стилях четырёх художников.",
    "style_unknown": "Я не знаю стиль «{given}». Есть такие:\n{styles}\n\nНапример: <code>/style vangogh</code> или <code>/style all</code> для четырёх художников.",
    "style_line": "<code>{id}</code> — {name}",
    "status_none": "У вас нет фото в работе.",
    "status_head": "Ваши фото:",
    "status_running": "• №{id}: рисую ({percent}%)",
    "status_queued": "• №{id}: ждёт, перед ним: {position}",
    "status_queue": "Очередь: ждут {queued}, в работе {running}.",
    "cancel_none": "У вас нет ожидающих фото, отменять нечего.",
    "cancel_done": "Отменено ожидающих фото: {count}.",
    "cancel_running": "То, что уже рисуется, всё равно придёт.",
    "lang_menu": "Выберите язык:",
    "lang_set": "Язык: русский.",
    "fallback_text": "Пришлите мне фото, и я его нарисую. /help расскажет подробнее.",
    "fallback_command": "Я не знаю такой команды. /help — что я умею.",
    "fallback_media": "Я рисую только по фото — стикеры, голосовые и видео не подойдут. Пришлите, пожалуйста, фото.",
    "fallback_document": "Этот файл — не картинка. Пришлите фото или файл JPEG, PNG или WebP.",
    "button_expired": "Эта кнопка больше не работает. Повторите команду.",
    "album_caption": "🖼 <i>{caption}</i>\n\n{styles}",
    "failed": "Простите, не получилось нарисовать ваше фото: {reason}",
    "update_failed": "Простите, не получилось обработать это сообщение: у меня что-то сломалось. Попробуйте позже.",
    "cmd_start": "что я умею",
    "cmd_help": "как это работает",
    "cmd_style": "выбрать стиль",
    "cmd_status": "ваши фото в очереди",
    "cmd_cancel": "отменить ожидающие фото",
    "cmd_lang": "Русский / English",
}

# Job error codes (jobs/errors.py) → what went wrong and what to do.
_ERRORS_EN = {
    errors.EMPTY_FILE: "the file is empty. Please send the photo again.",
    errors.NOT_AN_IMAGE: "this isn't a picture I can open. Please send a photo (JPEG, PNG or WebP).",
    errors.UNSUPPORTED_FORMAT: "I can't read this image format. Please send a JPEG or PNG.",
    errors.IMAGE_TOO_SMALL: "the picture is too small. Please send a larger photo.",
    errors.IMAGE_TOO_LARGE: "the picture has too many pixels. Please send a smaller one.",
    errors.FILE_TOO_LARGE: "the file is too large. Please send a smaller one.",
    errors.NO_FACE: "I couldn't find a face. Please send a photo where your face is clearly visible.",
    errors.MANY_FACES: "there are several faces. Please send a photo with just one person.",
    errors.TOO_FEW_PHOTOS: "there are too few photos. Please send more.",
    errors.BAD_LORA: "your personal model is broken. Please train it again.",
    errors.BAD_REQUEST: "the request wasn't right (an unknown style?). See /style and try again.",
    errors.OUT_OF_MEMORY: "the painter ran out of memory. Please try again in a few minutes.",
    errors.MODEL_MISSING: "the painter isn't set up yet. Please try again later.",
    errors.WORKER_LOST: "the painter stopped while working on it. Please send the photo again.",
    errors.INTERNAL: "something went wrong on my side. Please try again later.",
}
_ERRORS_RU = {
    errors.EMPTY_FILE: "файл пустой. Пришлите фото ещё раз.",
    errors.NOT_AN_IMAGE: "это не картинка, которую я могу открыть. Пришлите фото (JPEG, PNG или WebP).",
    errors.UNSUPPORTED_FORMAT: "я не умею читать этот формат. Пришлите JPEG или PNG.",
    errors.IMAGE_TOO_SMALL: "картинка слишком маленькая. Пришлите фото побольше.",
    errors.IMAGE_TOO_LARGE: "в картинке слишком много пикселей. Пришлите поменьше.",
    errors.FILE_TOO_LARGE: "файл слишком большой. Пришлите поменьше.",
    errors.NO_FACE: "я не нашёл лица. Пришлите фото, где хорошо видно ваше лицо.",
    errors.MANY_FACES: "на фото несколько лиц. Пришлите фото, где вы один.",
    errors.TOO_FEW_PHOTOS: "фото слишком мало. Пришлите ещё.",
    errors.BAD_LORA: "ваша личная модель испорчена. Обучите её заново.",
    errors.BAD_REQUEST: "запрос не удался (неизвестный стиль?). Посмотрите /style и попробуйте снова.",
    errors.OUT_OF_MEMORY: "художнику не хватило памяти. Попробуйте через несколько минут.",
    errors.MODEL_MISSING: "художник ещё не готов к работе. Попробуйте позже.",
    errors.WORKER_LOST: "художник остановился посреди работы. Пришлите фото ещё раз.",
    errors.INTERNAL: "у меня что-то сломалось. Попробуйте позже.",
}

# -- fast mode (issue 10): /settings, and the quick versions under a burst --------------------------
_EN.update(
    {
        "settings_menu": (
            "<b>Quality or speed?</b> Now: {current}.\n\n"
            "Quality: the full painting, about a minute in a busy queue.\n"
            "Fast: a quick version in a few steps — rougher, ready much sooner."
        ),
        "mode_quality": "quality",
        "mode_fast": "fast",
        "mode_quality_button": "🎨 Quality",
        "mode_fast_button": "⚡ Fast",
        "mode_set_quality": "Done: your pictures are painted in full quality. /settings changes it.",
        "mode_set_fast": "Done: your pictures come as quick versions. /settings switches back to quality.",
        "settings_unknown": "Use <code>/settings fast</code> or <code>/settings quality</code>, or just /settings for the buttons.",
        "fast_busy": "⚡ I'm busy right now, so you'll get a quick version; full quality is back once the queue is short.",
        "fast_mark": "⚡ quick version",
        "cmd_settings": "quality or speed",
        "help_fast": "<b>Quality or speed</b>: /settings chooses quick versions in a few steps instead of the full painting. When I'm very busy, everyone gets quick versions for a while.",
        "file_too_big_unknown": "This file is larger than I can take (up to {max_mb} MB). Please send a smaller picture.",
        "edited_message": "I saw the edit, but I only act on new messages: please send it again as a new message.",
        "edited_photo": "I saw the edit, but I only paint new messages: please send the photo again as a new message.",
        "status_training": "• #{id}: training your personal model — {state}",
        "train_state_running": "{percent}%{eta}",
        "train_state_queued": "in the queue, {ahead} ahead",
        "train_eta_s": " · about {seconds} s left",
        "train_progress_done": "🧠 Training: 100% — done, see below.",
        "train_progress_failed": "🧠 Training stopped — see below.",
        "painter_not_ready": (
            "Got it, but the painter isn't ready yet (it is being set up). Your photo is kept in the queue "
            "and I'll send the pictures once it's ready; /status shows it, /cancel cancels it. "
            "Please try again later if nothing comes."
        ),
        "me_training": (
            "I'm learning your face right now ({state}). I'll tell you when your model is ready; "
            "then /me and /portrait paint you."
        ),
    }
)
_RU.update(
    {
        "settings_menu": (
            "<b>Качество или скорость?</b> Сейчас: {current}.\n\n"
            "Качество: полная картина, в загруженной очереди — около минуты.\n"
            "Быстро: короткая версия в несколько шагов — грубее, но готова гораздо раньше."
        ),
        "mode_quality": "качество",
        "mode_fast": "быстро",
        "mode_quality_button": "🎨 Качество",
        "mode_fast_button": "⚡ Быстро",
        "mode_set_quality": "Готово: картины будут в полном качестве. /settings — изменить.",
        "mode_set_fast": "Готово: картины будут быстрыми версиями. /settings — вернуть качество.",
        "settings_unknown": "Напишите <code>/settings fast</code> или <code>/settings quality</code>, или просто /settings для кнопок.",
        "fast_busy": "⚡ Сейчас много работы, поэтому будет быстрая версия; полное качество вернётся, когда очередь станет короче.",
        "fast_mark": "⚡ быстрая версия",
        "cmd_settings": "качество или скорость",
        "help_fast": "<b>Качество или скорость</b>: /settings выбирает быстрые версии в несколько шагов вместо полной картины. Когда работы очень много, быстрые версии на время получают все.",
        "file_too_big_unknown": "Этот файл больше, чем я принимаю (до {max_mb} МБ). Пришлите картинку поменьше.",
        "edited_message": "Я вижу правку, но отвечаю только на новые сообщения: отправьте его заново новым сообщением.",
        "edited_photo": "Я вижу правку, но рисую только новые сообщения: отправьте фото заново новым сообщением.",
        "status_training": "• №{id}: учу вашу личную модель — {state}",
        "train_state_running": "{percent}%{eta}",
        "train_state_queued": "в очереди, перед ним: {ahead}",
        "train_eta_s": " · осталось около {seconds} с",
        "train_progress_done": "🧠 Обучение: 100% — готово, см. ниже.",
        "train_progress_failed": "🧠 Обучение остановлено — см. ниже.",
        "painter_not_ready": (
            "Принято, но художник пока не готов (его настраивают). Фото сохранено в очереди, "
            "и я пришлю картины, как только он будет готов; /status покажет его, /cancel отменит. "
            "Если ничего не придёт, попробуйте позже."
        ),
        "me_training": (
            "Я сейчас учу ваше лицо ({state}). Скажу, когда модель будет готова; "
            "тогда /me и /portrait нарисуют вас."
        ),
    }
)

_EN.update(TRAIN_EN)
_RU.update(TRAIN_RU)
_EN["help"] += "\n\n" + TRAIN_EN["help_train"]
_RU["help"] += "\n\n" + TRAIN_RU["help_train"]
_EN["help"] += "\n\n" + _EN["help_fast"]
_RU["help"] += "\n\n" + _RU["help_fast"]
# /pose (bot/texts_pose.py)
_EN.update(POSE_EN)
_RU.update(POSE_RU)
_EN["help"] += "\n\n" + POSE_EN["help_pose"]
_RU["help"] += "\n\n" + POSE_RU["help_pose"]
_EN.update(ADMIN_EN)  # admin commands and the blocked users' answer (issue 15)
_RU.update(ADMIN_RU)
STRINGS = {"en": _EN, "ru": _RU}
ERRORS = {"en": _ERRORS_EN, "ru": _ERRORS_RU}


class Texts:
    """`texts(lang, key, **values)`: the string in that language (English when the language is unknown)."""

    def __call__(self, lang: str, key: str, **values: object) -> str:
        template = STRINGS.get(lang, _EN)[key]
        return template.format(**values) if values else template

    def style_name(self, lang: str, style_id: str) -> str:
        return STYLES[style_id].name(lang)

    def artists(self, lang: str) -> str:
        return ", ".join(self.style_name(lang, s) for s in ARTISTS)

    def style_list(self, lang: str) -> str:
        return "\n".join(self(lang, "style_line", id=s.id, name=s.name(lang)) for s in STYLES.values())

    def style_unknown(self, lang: str, given: str) -> str:
        """What the user typed comes back escaped (HTML parse mode) and short."""
        return self(lang, "style_unknown", given=escape(given[:64]), styles=self.style_list(lang))

    def error(self, lang: str, code: str | None) -> str:
        table = ERRORS.get(lang, _ERRORS_EN)
        return self(lang, "failed", reason=table.get(code or "", table[errors.INTERNAL]))

    def album_caption(self, lang: str, caption: str, styles: list[str], fast: bool = False) -> str:
        """The BLIP caption and each picture's style, in the album's order ('1–4. Van Gogh' when repeated)."""
        lines, start = [], 0
        for i in range(1, len(styles) + 1):
            if i == len(styles) or styles[i] != styles[start]:
                number = f"{start + 1}" if i - start == 1 else f"{start + 1}–{i}"
                name = STYLES[styles[start]].name(lang) if styles[start] in STYLES else styles[start]
                lines.append(f"{number}. {escape(name)}")
                start = i
        # Telegram allows 1024 characters in a caption; BLIP's are short, but cut before escaping anyway.
        short = caption.strip()[:400] or "…"
        text = self(lang, "album_caption", caption=escape(short), styles="\n".join(lines))
        return text + "\n\n" + self(lang, "fast_mark") if fast else text

    # -- /train, /me, /portrait ------------------------------------------------------------------
    def error_reason(self, lang: str, code: str | None) -> str:
        table = ERRORS.get(lang, _ERRORS_EN)
        return table.get(code or "", table[errors.INTERNAL])

    def selfie_reason(self, lang: str, code: str) -> str:
        table = SELFIE_REASONS.get(lang, SELFIE_REASONS["en"])
        return table.get(code, SELFIE_REASON_OTHER.get(lang, SELFIE_REASON_OTHER["en"]))

    def class_name(self, lang: str, cls: str) -> str:
        return CLASS_NAMES.get(lang, CLASS_NAMES["en"]).get(cls, cls)

    def scene_name(self, lang: str, scene_id: str) -> str:
        scene = SCENES_BY_ID[scene_id]
        return scene.ru if lang == "ru" else scene.en

    def portrait_caption(self, lang: str, scene: str, fast: bool = False) -> str:
        text = self(lang, "portrait_caption", scene=escape(" ".join(scene.split())[:300] or "…"))
        return text + "\n\n" + self(lang, "fast_mark") if fast else text

    # -- /pose -------------------------------------------------------------------------------------
    def pose_caption(self, lang: str, title: str | None, caption: str) -> str:
        """The album's caption: what the user asked for (or "in the pose of your photo") and BLIP's words."""
        title = " ".join((title or "").split())[:300] or self(lang, "pose_title")
        return self(lang, "pose_caption", title=escape(title), caption=escape(caption.strip()[:400] or "…"))
