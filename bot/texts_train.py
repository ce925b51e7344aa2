"""Strings of /train, /me, /portrait and /forget in Russian and English (merged into bot/texts.py)."""

from __future__ import annotations

from jobs import errors

TRAIN_EN = {
    "train_intro": (
        "<b>Let's learn your face.</b> I need 3–20 photos of the same person (or pet):\n"
        "• one face per photo, clearly visible, not too small;\n"
        "• different days, places, angles and expressions;\n"
        "• no sunglasses, no heavy filters, no group photos.\n\n"
        "Who is in the photos?"
    ),
    "train_class_set": (
        "Got it: {cls}. Now send 3–20 photos (one by one or as albums). "
        "/done starts the training, /train cancel stops."
    ),
    "train_choose_class_first": "First tell me who is in the photos:",
    "train_collecting": (
        "You're sending photos for training: {count} accepted so far. "
        "Send more, /done to start the training, /train cancel to stop."
    ),
    "train_running": "Your model is training now ({percent}%). I'll tell you when it's ready. /train cancel stops it.",
    "train_cancelled": "Training cancelled. I deleted the photos you sent for it.",
    "train_nothing": "There's no training to cancel. /train starts one.",
    "train_no_session": "Send /train first: I'll explain which photos I need.",
    "train_too_few": "I have {count} usable photo(s); I need at least {min}. Please send {left} more.",
    "train_started": "🧠 Training your personal model on {count} photos… this message shows the progress.",
    "train_waiting": "🧠 Your training is in the queue: {ahead} job(s) ahead.",
    "train_progress": "🧠 {phase}: {percent}%{eta}",
    "train_phase_prepare": "Getting ready",
    "train_phase_learn": "Learning your face",
    "train_eta": " · about {minutes} min left",
    "train_ready": (
        "✅ Your personal model is ready! Try:\n"
        "<code>/me on the moon</code>\n<code>/me in a forest, autumn</code>\n"
        "/portrait — choose a ready-made scene"
    ),
    "train_failed": (
        "❌ The training didn't work: {reason}\n"
        "Your photos are kept: /done tries again, more photos help, /train cancel deletes them."
    ),
    "train_stopped": "⏹ Training stopped. Your photos are kept: /done starts again, /train cancel deletes them.",
    "selfie_ok": "✅ Photo accepted.",
    "selfie_bad": "❌ Photo not accepted: {reason}",
    "selfie_batch": "Accepted {accepted}, rejected {rejected}.",
    "selfie_bad_n": "❌ Photo {n}: {reason}",
    "selfie_more": "{count} of at least {min} — send {left} more.",
    "selfie_enough": "{count} of at least {min} — send more (up to {max}) or /done to start.",
    "selfie_full": "That's {max} photos — starting the training.",
    "selfie_limit": "I already have {max} photos, the most I take. /done starts the training, /train cancel deletes them.",
    "selfie_overflow": "I already have {max} photos and the training has started; I skipped the extra ones.",
    "me_usage": (
        "Tell me the scene after /me, for example:\n<code>/me on the moon</code>\n"
        "<code>/me eating ice cream in Paris</code>\nOr choose one: /portrait"
    ),
    "me_no_lora": (
        "First I need to learn your face: send /train and 3–20 photos of yourself. "
        "After that /me paints you anywhere."
    ),
    "me_queued": "🎨 Painting you: {scene}…",
    "me_english_hint": "Tip: the painter understands scenes best in English, e.g. /me on the moon, or pick one with /portrait.",
    "portrait_menu": "Choose a scene:",
    "portrait_caption": "🧑‍🎨 {scene}",
    "forget_confirm": (
        "Delete everything I have of you — selfies, personal model, pictures and history? "
        "This can't be undone."
    ),
    "forget_yes": "🗑 Yes, delete everything",
    "forget_no": "Keep it",
    "forget_done": "Done: I deleted your selfies, your personal model, your pictures and your history.",
    "forget_kept": "OK, nothing was deleted.",
    "help_train": (
        "<b>Portraits of you</b>: /train and 3–20 selfies teach me your face; then "
        "<code>/me on the moon</code> or /portrait paints you in any scene. "
        "/forget deletes everything I have of you."
    ),
    "cmd_train": "learn your face from selfies",
    "cmd_done": "start the training",
    "cmd_me": "portraits of you: /me on the moon",
    "cmd_portrait": "portraits in a ready-made scene",
    "cmd_forget": "delete all your data",
}

TRAIN_RU = {
    "train_intro": (
        "<b>Давайте выучим ваше лицо.</b> Мне нужно 3–20 фото одного человека (или питомца):\n"
        "• на каждом одно лицо, хорошо видно, не слишком мелко;\n"
        "• разные дни, места, ракурсы и выражения лица;\n"
        "• без тёмных очков, сильных фильтров и групповых фото.\n\n"
        "Кто на фото?"
    ),
    "train_class_set": (
        "Понял: {cls}. Теперь пришлите 3–20 фото (по одному или альбомами). "
        "/done начнёт обучение, /train cancel — отмена."
    ),
    "train_choose_class_first": "Сначала скажите, кто на фото:",
    "train_collecting": (
        "Вы присылаете фото для обучения: принято {count}. "
        "Пришлите ещё, /done начнёт обучение, /train cancel — отмена."
    ),
    "train_running": "Ваша модель сейчас учится ({percent}%). Я скажу, когда будет готово. /train cancel остановит.",
    "train_cancelled": "Обучение отменено. Присланные для него фото я удалил.",
    "train_nothing": "Отменять нечего. /train начнёт обучение.",
    "train_no_session": "Сначала отправьте /train: я расскажу, какие фото нужны.",
    "train_too_few": "Подходящих фото: {count}, а нужно хотя бы {min}. Пришлите ещё {left}.",
    "train_started": "🧠 Учу вашу личную модель на {count} фото… в этом сообщении будет прогресс.",
    "train_waiting": "🧠 Обучение в очереди, перед ним задач: {ahead}.",
    "train_progress": "🧠 {phase}: {percent}%{eta}",
    "train_phase_prepare": "Готовлюсь",
    "train_phase_learn": "Учу ваше лицо",
    "train_eta": " · осталось около {minutes} мин",
    "train_ready": (
        "✅ Ваша личная модель готова! Попробуйте:\n"
        "<code>/me on the moon</code>\n<code>/me в лесу</code>\n"
        "/portrait — выбрать готовую сцену"
    ),
    "train_failed": (
        "❌ Обучение не удалось: {reason}\n"
        "Фото сохранены: /done попробует снова, новые фото помогут, /train cancel удалит их."
    ),
    "train_stopped": "⏹ Обучение остановлено. Фото сохранены: /done начнёт заново, /train cancel удалит их.",
    "selfie_ok": "✅ Фото принято.",
    "selfie_bad": "❌ Фото не подошло: {reason}",
    "selfie_batch": "Принято {accepted}, не подошло {rejected}.",
    "selfie_bad_n": "❌ Фото {n}: {reason}",
    "selfie_more": "{count} из минимум {min} — пришлите ещё {left}.",
    "selfie_enough": "{count} из минимум {min} — пришлите ещё (до {max}) или /done, чтобы начать.",
    "selfie_full": "Это {max} фото — начинаю обучение.",
    "selfie_limit": "У меня уже {max} фото — больше не нужно. /done начнёт обучение, /train cancel удалит их.",
    "selfie_overflow": "У меня уже {max} фото, и обучение началось; лишние фото я пропустил.",
    "me_usage": (
        "Напишите сцену после /me, например:\n<code>/me on the moon</code>\n"
        "<code>/me ест мороженое в Париже</code>\nИли выберите: /portrait"
    ),
    "me_no_lora": (
        "Сначала мне нужно выучить ваше лицо: отправьте /train и 3–20 своих фото. "
        "После этого /me нарисует вас где угодно."
    ),
    "me_queued": "🎨 Рисую вас: {scene}…",
    "me_english_hint": "Совет: художник лучше понимает сцены по-английски, например /me on the moon, или выберите готовую: /portrait.",
    "portrait_menu": "Выберите сцену:",
    "portrait_caption": "🧑‍🎨 {scene}",
    "forget_confirm": (
        "Удалить всё, что у меня есть о вас, — селфи, личную модель, картинки и историю? Это необратимо."
    ),
    "forget_yes": "🗑 Да, удалить всё",
    "forget_no": "Не удалять",
    "forget_done": "Готово: я удалил ваши селфи, личную модель, картинки и историю.",
    "forget_kept": "Хорошо, ничего не удалено.",
    "help_train": (
        "<b>Ваши портреты</b>: /train и 3–20 селфи — и я выучу ваше лицо; потом "
        "<code>/me on the moon</code> или /portrait нарисует вас в любой сцене. "
        "/forget удалит всё, что у меня есть о вас."
    ),
    "cmd_train": "выучить ваше лицо по селфи",
    "cmd_done": "начать обучение",
    "cmd_me": "ваши портреты: /me on the moon",
    "cmd_portrait": "портреты в готовой сцене",
    "cmd_forget": "удалить все ваши данные",
}

CLASS_NAMES = {
    "en": {
        "man": "a man",
        "woman": "a woman",
        "boy": "a boy",
        "girl": "a girl",
        "person": "a person",
        "dog": "a dog",
        "cat": "a cat",
    },
    "ru": {
        "man": "мужчина",
        "woman": "женщина",
        "boy": "мальчик",
        "girl": "девочка",
        "person": "человек",
        "dog": "собака",
        "cat": "кошка",
    },
}

# Why a selfie was not accepted (jobs.errors codes, plus "duplicate").
SELFIE_REASONS = {
    "en": {
        errors.NO_FACE: "I can't find a face",
        errors.MANY_FACES: "there are several faces",
        errors.IMAGE_TOO_SMALL: "too small (I need at least 384 px on the short side)",
        errors.IMAGE_TOO_LARGE: "too many pixels",
        errors.FILE_TOO_LARGE: "the file is too large",
        errors.NOT_AN_IMAGE: "not a picture I can open",
        errors.UNSUPPORTED_FORMAT: "a format I can't read (send JPEG or PNG)",
        errors.EMPTY_FILE: "the file is empty",
        "duplicate": "the same photo as one you already sent",
    },
    "ru": {
        errors.NO_FACE: "не вижу лица",
        errors.MANY_FACES: "на фото несколько лиц",
        errors.IMAGE_TOO_SMALL: "слишком маленькое (нужно хотя бы 384 пикселя по короткой стороне)",
        errors.IMAGE_TOO_LARGE: "слишком много пикселей",
        errors.FILE_TOO_LARGE: "файл слишком большой",
        errors.NOT_AN_IMAGE: "это не картинка, которую я могу открыть",
        errors.UNSUPPORTED_FORMAT: "формат, который я не читаю (пришлите JPEG или PNG)",
        errors.EMPTY_FILE: "файл пустой",
        "duplicate": "такое же фото уже было",
    },
}
SELFIE_REASON_OTHER = {
    "en": "I couldn't process it, please send it again",
    "ru": "не получилось обработать, пришлите ещё раз",
}
