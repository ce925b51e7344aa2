"""Strings of the admin commands and of the blocked users' answer, in Russian and English (merged into bot/texts.py)."""

from __future__ import annotations

ADMIN_EN = {
    "blocked_notice": (
        "Sorry, this bot isn't available to you right now. "
        "If you think this is a mistake, please write to the bot's operator. "
        "/forget still deletes everything I keep about you."
    ),
    "admin_stats": (
        "📊 <b>artbooth</b>\n"
        "Users: {users}\n"
        "Albums: {today} today (UTC), {total} in all\n"
        "Queue: {queued} waiting, {running} running{by_kind}\n"
        "Failures in the last 24 h: {failures}\n"
        "Time to answer in the last hour (queued → done):\n{latency}"
    ),
    "admin_none": "none",
    "admin_latency": "• {kind}: p50 {p50:.1f} s, p95 {p95:.1f} s ({count} jobs)",
    "admin_queue_empty": "The queue is empty.",
    "admin_queue_head": "Jobs waiting or running: {total} (the first {shown}, in the order workers take them)",
    "admin_queue_job": (
        "#{id} {kind} · {state} · priority {priority} · user <code>{user}</code> · {age} ago · attempt {attempts}"
    ),
    "admin_queue_running": "running {percent}%",
    "admin_queue_queued": "waiting",
    "admin_block_usage": "Send the user's numeric id: <code>/{command} 123456789</code> (/queue shows who is waiting).",
    "admin_block_admin": "{user} is an admin (ADMIN_IDS); an admin cannot be blocked.",
    "admin_blocked": (
        "Blocked {user}: their messages now get a short answer and nothing is queued. "
        "Cancelled {cancelled} waiting job(s). /unblock {user} undoes it."
    ),
    "admin_already_blocked": "{user} was already blocked. /unblock {user} undoes it.",
    "admin_unblocked": "Unblocked {user}: they can use the bot again.",
    "admin_not_blocked": "{user} is not blocked. /block {user} blocks them.",
    "cmd_stats": "admin: users, albums, queue, failures, latency",
    "cmd_queue": "admin: the waiting jobs",
    "cmd_block": "admin: block a user by id",
    "cmd_unblock": "admin: unblock a user",
}

ADMIN_RU = {
    "blocked_notice": (
        "Простите, сейчас этот бот для вас недоступен. "
        "Если вы считаете, что это ошибка, напишите, пожалуйста, владельцу бота. "
        "/forget по-прежнему удалит всё, что я о вас храню."
    ),
    "admin_stats": (
        "📊 <b>artbooth</b>\n"
        "Пользователей: {users}\n"
        "Альбомов: {today} сегодня (UTC), {total} всего\n"
        "Очередь: {queued} ждут, {running} выполняются{by_kind}\n"
        "Ошибок за 24 ч: {failures}\n"
        "Время ответа за последний час (от очереди до готового):\n{latency}"
    ),
    "admin_none": "нет",
    "admin_latency": "• {kind}: p50 {p50:.1f} с, p95 {p95:.1f} с ({count} задач)",
    "admin_queue_empty": "Очередь пуста.",
    "admin_queue_head": "Задач в очереди и в работе: {total} (первые {shown}, в том порядке, в каком их берут воркеры)",
    "admin_queue_job": (
        "#{id} {kind} · {state} · приоритет {priority} · пользователь <code>{user}</code> · {age} назад · "
        "попытка {attempts}"
    ),
    "admin_queue_running": "выполняется {percent}%",
    "admin_queue_queued": "ждёт",
    "admin_block_usage": (
        "Укажите числовой id пользователя: <code>/{command} 123456789</code> (/queue показывает, кто ждёт)."
    ),
    "admin_block_admin": "{user} — администратор (ADMIN_IDS); администратора заблокировать нельзя.",
    "admin_blocked": (
        "{user} заблокирован: на его сообщения бот коротко отвечает и ничего не ставит в очередь. "
        "Отменено ожидающих задач: {cancelled}. /unblock {user} — разблокировать."
    ),
    "admin_already_blocked": "{user} уже заблокирован. /unblock {user} — разблокировать.",
    "admin_unblocked": "{user} разблокирован: он снова может пользоваться ботом.",
    "admin_not_blocked": "{user} не заблокирован. /block {user} — заблокировать.",
    "cmd_stats": "админ: пользователи, альбомы, очередь, ошибки, задержки",
    "cmd_queue": "админ: задачи в очереди",
    "cmd_block": "админ: заблокировать пользователя по id",
    "cmd_unblock": "админ: разблокировать пользователя",
}
