"""Strings of /pose in Russian and English (merged into bot/texts.py)."""

from __future__ import annotations

POSE_EN = {
    "pose_ask": (
        "Send me a <b>reference photo</b>: I'll paint you in its pose and composition. "
        "One person, clearly visible, works best.\n/pose cancel stops."
    ),
    "pose_ask_scene": (
        "Send me a <b>reference photo</b>: I'll paint you in its pose, {scene}. "
        "One person, clearly visible, works best.\n/pose cancel stops."
    ),
    "pose_queued": "🕺 Got the reference! Painting you in its pose…",
    "pose_queued_scene": "🕺 Got the reference! Painting you in its pose: {scene}…",
    "pose_no_person": (
        "Tip: I don't see a person in this photo, so only its composition will carry over. "
        "For a pose, send a photo where someone's face and body are clearly visible."
    ),
    "pose_english_hint": "Tip: the painter understands scenes best in English, e.g. /pose as a knight.",
    "pose_no_lora": (
        "/pose paints <b>you</b> in the pose of any photo, so first I need to learn your face: "
        "send /train and 3–20 photos of yourself. Then /pose and a photo."
    ),
    "pose_training": (
        "Your personal model is still training ({state}). /pose works as soon as it's ready — I'll tell you."
    ),
    "pose_bad_reference": (
        "❌ I can't use this as a reference: {reason}\nSend another photo of the pose you want, or /pose cancel."
    ),
    "pose_too_small": "it's too small: I need at least {min} px on each side to see the pose.",
    "pose_sticker": (
        "A sticker can't be a reference. Send a photo (or an image file) of the pose you want, "
        "or /pose cancel."
    ),
    "pose_not_image": (
        "That file isn't an image, so it can't be a reference. Send a photo, or a JPEG, PNG or WebP "
        "file of the pose you want, or /pose cancel."
    ),
    "pose_other_media": (
        "I need a photo as the reference, not a voice message or a video. Send a photo of the pose you "
        "want, or /pose cancel."
    ),
    "pose_waiting": "I'm waiting for the reference photo for /pose. Send a photo of the pose you want, or /pose cancel.",
    "pose_cancelled": "OK, no pose. Your next photo will be painted in styles as usual.",
    "pose_nothing": "There's no /pose waiting. Send /pose and then a photo to be painted in its pose.",
    "pose_caption": "🕺 {title}\n<i>{caption}</i>",
    "pose_title": "In the pose of your photo",
    "help_pose": (
        "<b>Any pose</b>: /pose and then a photo paint you in that photo's pose (after /train); "
        "<code>/pose as a knight</code> adds a scene, and a photo captioned <code>/pose</code> works too."
    ),
    "cmd_pose": "you in the pose of any photo",
}

POSE_RU = {
    "pose_ask": (
        "Пришлите <b>фото-образец</b>: я нарисую вас в его позе и композиции. "
        "Лучше всего подойдёт фото, где хорошо виден один человек.\n/pose cancel — отмена."
    ),
    "pose_ask_scene": (
        "Пришлите <b>фото-образец</b>: я нарисую вас в его позе, {scene}. "
        "Лучше всего подойдёт фото, где хорошо виден один человек.\n/pose cancel — отмена."
    ),
    "pose_queued": "🕺 Образец получен! Рисую вас в его позе…",
    "pose_queued_scene": "🕺 Образец получен! Рисую вас в его позе: {scene}…",
    "pose_no_person": (
        "Совет: я не вижу на этом фото человека, поэтому перенесётся только композиция. "
        "Для позы пришлите фото, где хорошо видны лицо и фигура."
    ),
    "pose_english_hint": "Совет: художник лучше понимает сцены по-английски, например /pose as a knight.",
    "pose_no_lora": (
        "/pose рисует <b>вас</b> в позе с любого фото, поэтому сначала мне нужно выучить ваше лицо: "
        "отправьте /train и 3–20 своих фото. Потом — /pose и фото."
    ),
    "pose_training": (
        "Ваша личная модель ещё учится ({state}). /pose заработает, как только она будет готова — я скажу."
    ),
    "pose_bad_reference": (
        "❌ Это фото не подойдёт как образец: {reason}\nПришлите другое фото с нужной позой или /pose cancel."
    ),
    "pose_too_small": "оно слишком маленькое: чтобы разглядеть позу, нужно хотя бы {min} пикселей по каждой стороне.",
    "pose_sticker": "Стикер не подойдёт как образец. Пришлите фото (или картинку файлом) с нужной позой или /pose cancel.",
    "pose_not_image": (
        "Этот файл — не картинка, он не подойдёт как образец. Пришлите фото или файл JPEG, PNG или WebP "
        "с нужной позой или /pose cancel."
    ),
    "pose_other_media": (
        "Образцом может быть только фото, не голосовое и не видео. Пришлите фото с нужной позой или /pose cancel."
    ),
    "pose_waiting": "Жду фото-образец для /pose. Пришлите фото с нужной позой или /pose cancel.",
    "pose_cancelled": "Хорошо, без позы. Следующее фото я нарисую в стилях, как обычно.",
    "pose_nothing": "/pose ничего не ждёт. Отправьте /pose, а затем фото, чтобы я нарисовал вас в его позе.",
    "pose_caption": "🕺 {title}\n<i>{caption}</i>",
    "pose_title": "В позе с вашего фото",
    "help_pose": (
        "<b>Любая поза</b>: /pose и затем фото — и я нарисую вас в позе с этого фото (после /train); "
        "<code>/pose as a knight</code> добавит сцену, а ещё можно подписать фото <code>/pose</code>."
    ),
    "cmd_pose": "вы в позе с любого фото",
}
