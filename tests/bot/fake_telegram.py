"""A Bot API server on loopback for tests: the real aiogram client talks HTTP to it.

Runs in its own thread with its own event loop, so one server can serve a bot subprocess across a
whole test module and an in-process dispatcher alike. Tests push updates (`push_message`,
`push_callback`), read what the bot called (`calls`, `wait_for`), and inject errors (`fail_next`).

Semantics follow Telegram where the bot can tell the difference: getUpdates long-polls for `timeout`
seconds; an `offset` confirms (and forgets) every update below it; files are served at
/file/bot<token>/<path>; getFile refuses files over 20 MB; requests come as url-encoded or multipart
forms with JSON-serialized fields.

Webhooks too: after setWebhook, getUpdates answers 409 and pushed updates are POSTed to the URL, one at a
time and in order, with the X-Telegram-Bot-Api-Secret-Token header; anything but a 2xx answer (or a
dropped connection) means the update is delivered again a moment later, like Telegram does. An update
leaves the queue once the bot answered 2xx. deleteWebhook goes back to getUpdates.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, web
from PIL import Image

TOKEN = "123456:TEST-token-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "artbooth", "username": "artbooth_test_bot"}
DOWNLOAD_LIMIT = 20 * 1024 * 1024
_JSON_FIELDS = {
    "media",
    "reply_markup",
    "reply_parameters",
    "commands",
    "scope",
    "allowed_updates",
    "link_preview_options",
}
_INT_FIELDS = {"chat_id", "offset", "timeout", "limit", "message_id"}


@dataclass(frozen=True)
class TgUser:
    id: int
    lang: str | None = "en"
    first_name: str = "Tester"

    def as_json(self) -> dict[str, Any]:
        user = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.lang:
            user["language_code"] = self.lang
        return user


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    files: dict[str, bytes]
    at: float
    ok: bool = True
    response: Any = None

    @property
    def chat_id(self) -> int | None:
        return self.params.get("chat_id")

    def media_files(self) -> list[bytes]:
        """sendMediaGroup: the bytes of each item, in order."""
        return [self.files[item["media"].removeprefix("attach://")] for item in self.params["media"]]


@dataclass
class _File:
    file_id: str
    unique_id: str
    data: bytes
    size: int
    path: str


@dataclass
class _Failure:
    body: dict[str, Any] | None
    status: int
    disconnect: bool = False


@dataclass
class FloodLimits:
    """Telegram's flood control, enforced: a send into a chat sooner than `per_chat_s` after the last one,
    or past `per_second` sends in the last second, is answered 429 with `retry_after` and bans the chat
    (or everything); a send during a ban is a violation (and is refused again). `ban_on_first_send` chats
    are banned by the server itself at their first send, as Telegram does at times."""

    per_chat_s: float = 0.8  # ~1/s, with room for the jitter between a client's send and its arrival
    per_second: int = 30
    retry_after: int = 2
    ban_on_first_send: dict[int, int] = field(default_factory=dict)  # chat → retry_after
    violations: list[Call] = field(default_factory=list)
    refused: list[Call] = field(default_factory=list)
    _last: dict[Any, float] = field(default_factory=dict)
    _bans: dict[Any, float] = field(default_factory=dict)  # chat (None: all) → monotonic end of the ban
    _window: list[float] = field(default_factory=list)

    @staticmethod
    def limited(method: str) -> bool:
        return method.startswith(("send", "edit", "copy", "forward"))

    def check(self, call: Call, now: float) -> int | None:
        """None: the send may go; else the retry_after of a 429."""
        chat = call.chat_id
        ban = max(self._bans.get(chat, 0.0), self._bans.get(None, 0.0))
        if now < ban:
            self.violations.append(call)
            return max(1, round(ban - now))
        if chat in self.ban_on_first_send:
            seconds = self.ban_on_first_send.pop(chat)
            self._bans[chat] = now + seconds
            return seconds
        if call.method == "sendChatAction":  # not a message: only the bans apply
            return None
        self._window = [t for t in self._window if now - t < 1.0]
        if len(self._window) >= self.per_second:
            self._bans[None] = now + 1
            return 1
        if now - self._last.get(chat, -1e9) < self.per_chat_s:
            self._bans[chat] = now + self.retry_after
            return self.retry_after
        self._last[chat] = now
        self._window.append(now)
        return None


@dataclass
class FakeTelegram:
    token: str = TOKEN
    updates: list[dict[str, Any]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._update_ids = itertools.count(1000)
        self._message_ids = itertools.count(1)
        self._files: dict[str, _File] = {}
        self._failures: dict[str, list[_Failure]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._new_update: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.confirmed_below = 0  # the highest offset a getUpdates call has sent
        self.fetches: list[tuple[int | None, list[int]]] = []  # getUpdates: (offset, update ids handed over)
        self.on_fetch: Callable[[list[int]], None] | None = None  # called as a non-empty batch goes out
        self.on_poll: Callable[[int | None], None] | None = None  # called with each getUpdates' offset
        self.port = 0
        self._closing = False
        self.downloads_missing = False  # every /file/ download answers 404 (a file gone from the server)
        self.limits: FloodLimits | None = None  # set to enforce Telegram's flood control
        self.webhook: dict[str, Any] | None = None  # setWebhook's url, secret_token, allowed_updates
        self.webhook_posts: list[tuple[int, int | None]] = []  # (update_id, HTTP status; None: no answer)
        self.on_webhook_answered: Callable[[int], None] | None = None  # called after a 2xx, in the server
        self.webhook_retry_s = 0.3
        self._webhook_wake: asyncio.Event | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeTelegram:
        started = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, args=(started,), name="fake-telegram", daemon=True
        )
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("fake Telegram did not start")
        return self

    def stop(self) -> None:
        self._closing = True
        if self._loop and self._new_update:
            self._loop.call_soon_threadsafe(self._new_update.set)  # long polls return at once
        if self._loop:
            self._loop.call_soon_threadsafe(self._webhook_task.cancel)
        if self._loop and self._runner:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(10)

    def _serve(self, started: threading.Event) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._new_update = asyncio.Event()
        self._webhook_wake = asyncio.Event()
        self._webhook_task = self._loop.create_task(self._deliver_to_webhook())
        app = web.Application(client_max_size=100 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        started.set()
        self._loop.run_forever()
        self._loop.close()

    # -- what tests do -------------------------------------------------------------------------
    def add_file(self, data: bytes, *, size: int | None = None, suffix: str = "jpg") -> _File:
        n = next(self._ids)
        file = _File(
            f"file-{n}", f"uniq{n}", data, len(data) if size is None else size, f"photos/file_{n}.{suffix}"
        )
        with self._lock:
            self._files[file.file_id] = file
        return file

    def push_message(
        self,
        user: TgUser,
        *,
        text: str | None = None,
        photo: bytes | None = None,
        photo_size: int | None = None,
        document: tuple[bytes, str, str] | None = None,  # (data, file name, mime type)
        document_size: int | None = None,
        announce_size: bool = True,  # False: the update carries no file_size (Telegram may omit it)
        caption: str | None = None,
        sticker: bool = False,
        voice: bool = False,
        video: bool = False,
        media_group_id: str | None = None,
        edited: bool = False,  # an edited_message update (the message as it is after the edit)
    ) -> int:
        """Queue an update with a new message from `user` in their private chat; returns its update_id."""
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": user.id, "type": "private", "first_name": user.first_name},
            "from": user.as_json(),
        }
        if text is not None:
            message["text"] = text
            if text.startswith("/"):
                command = text.split()[0]
                message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        if photo is not None:
            width, height = Image.open(io.BytesIO(photo)).size
            small = self.add_file(photo[: max(1, len(photo) // 4)])
            large = self.add_file(photo, size=photo_size)
            message["photo"] = [
                {
                    "file_id": small.file_id,
                    "file_unique_id": small.unique_id,
                    "width": max(1, width // 4),
                    "height": max(1, height // 4),
                    "file_size": small.size,
                },
                {
                    "file_id": large.file_id,
                    "file_unique_id": large.unique_id,
                    "width": width,
                    "height": height,
                    "file_size": large.size,
                },
            ]
        if document is not None:
            data, name, mime = document
            file = self.add_file(data, size=document_size, suffix=name.rsplit(".", 1)[-1])
            message["document"] = {
                "file_id": file.file_id,
                "file_unique_id": file.unique_id,
                "file_name": name,
                "mime_type": mime,
            }
            if announce_size:
                message["document"]["file_size"] = file.size
        if sticker:
            message["sticker"] = {
                "file_id": "sticker-1",
                "file_unique_id": "st1",
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
            }
        if voice:
            message["voice"] = {"file_id": "voice-1", "file_unique_id": "vo1", "duration": 2}
        if video:
            message["video"] = {
                "file_id": "video-1",
                "file_unique_id": "vi1",
                "width": 64,
                "height": 64,
                "duration": 2,
            }
        if caption is not None:
            message["caption"] = caption
            if caption.startswith("/"):
                message["caption_entities"] = [
                    {"type": "bot_command", "offset": 0, "length": len(caption.split()[0])}
                ]
        if media_group_id is not None:
            message["media_group_id"] = media_group_id
        if edited:
            message["edit_date"] = message["date"] + 5
            return self._push({"edited_message": message})
        return self._push({"message": message})

    def push_callback(self, user: TgUser, data: str, *, message_id: int = 1) -> int:
        callback = {
            "id": f"cb{next(self._ids)}",
            "from": user.as_json(),
            "chat_instance": "ci",
            "data": data,
            "message": {
                "message_id": message_id,
                "date": int(time.time()),
                "text": "menu",
                "chat": {"id": user.id, "type": "private"},
                "from": BOT_USER,
            },
        }
        return self._push({"callback_query": callback})

    def push_raw(self, body: dict[str, Any]) -> int:
        """Queue an update exactly as given (it may lack fields a client requires); returns its update_id."""
        return self._push(body)

    def _push(self, body: dict[str, Any]) -> int:
        with self._lock:
            update_id = next(self._update_ids)
            self.updates.append({"update_id": update_id, **body})
        if self._loop and self._new_update and self._webhook_wake:
            self._loop.call_soon_threadsafe(self._new_update.set)
            self._loop.call_soon_threadsafe(self._webhook_wake.set)
        return update_id

    def post_to_webhook(self, update: dict[str, Any], *, secret: str | None) -> Any:
        """POST one update to the registered URL with this secret (None: no header), outside the queue.

        Returns a concurrent future of the HTTP status: `.result()` from a thread, or
        `await asyncio.wrap_future(...)` from a test whose event loop runs the bot.
        """
        assert self._loop and self.webhook, "setWebhook first"
        return asyncio.run_coroutine_threadsafe(self._post(self.webhook["url"], update, secret), self._loop)

    def fail_next(
        self,
        method: str,
        body: dict[str, Any] | None = None,
        *,
        status: int | None = None,
        times: int = 1,
        disconnect: bool = False,
    ) -> None:
        """The next `times` calls of `method` get this error (or a dropped connection) instead of a result."""
        status = status or (body or {}).get("error_code", 500)
        with self._lock:
            self._failures.setdefault(method, []).extend(
                _Failure(body, status, disconnect) for _ in range(times)
            )

    def retry_after(self, method: str, seconds: int) -> None:
        self.fail_next(
            method,
            {
                "ok": False,
                "error_code": 429,
                "description": f"Too Many Requests: retry after {seconds}",
                "parameters": {"retry_after": seconds},
            },
        )

    # -- what tests read -----------------------------------------------------------------------
    def sent(
        self, method: str | None = None, *, chat_id: int | None = None, ok: bool | None = True
    ) -> list[Call]:
        with self._lock:
            calls = list(self.calls)
        return [
            c
            for c in calls
            if (method is None or c.method == method)
            and (chat_id is None or c.chat_id == chat_id)
            and (ok is None or c.ok == ok)
        ]

    def texts(self, chat_id: int) -> list[str]:
        return [c.params.get("text", "") for c in self.sent("sendMessage", chat_id=chat_id)]

    def handed_over(self) -> set[int]:
        """Update ids that some getUpdates call returned."""
        with self._lock:
            return {uid for _, ids in self.fetches for uid in ids}

    def pending_updates(self) -> int:
        with self._lock:
            return len(self.updates)

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if result := predicate():
                return result
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")

    async def await_for(
        self, predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition"
    ) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if result := predicate():
                return result
            await asyncio.sleep(0.02)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")

    # -- the server ----------------------------------------------------------------------------
    async def _api(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        method = request.match_info["method"]
        arrived = time.monotonic()  # before the body: an upload's send starts when its request does
        params, files = await _read_params(request)
        call = Call(method, params, files, time.time())
        with self._lock:
            failures = self._failures.get(method)
            failure = failures.pop(0) if failures else None
            if method != "getUpdates":  # polled all the time: counted in `fetches` instead
                self.calls.append(call)
            limited = failure is None and self.limits is not None and FloodLimits.limited(method)
            if limited and (seconds := self.limits.check(call, arrived)) is not None:
                self.limits.refused.append(call)
                failure = _Failure(
                    {
                        "ok": False,
                        "error_code": 429,
                        "description": f"Too Many Requests: retry after {seconds}",
                        "parameters": {"retry_after": seconds},
                    },
                    429,
                )
        if failure is not None:
            call.ok = False
            if failure.disconnect:
                request.transport.close()  # type: ignore[union-attr]
                raise ConnectionResetError("fake Telegram dropped the connection")
            call.response = failure.body
            return web.json_response(
                failure.body
                or {"ok": False, "error_code": failure.status, "description": "Internal Server Error"},
                status=failure.status,
            )
        try:
            result = await self._result(method, params, files)
        except _ApiError as error:
            call.ok = False
            call.response = {"ok": False, "error_code": error.code, "description": error.description}
            return web.json_response(call.response, status=error.code)
        call.response = result
        return web.json_response({"ok": True, "result": result})

    async def _result(self, method: str, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        if method == "getMe":
            return BOT_USER
        if method == "getUpdates":
            if self.webhook:
                raise _ApiError(
                    409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook"
                )
            return await self._get_updates(params)
        if method == "setWebhook":
            self.webhook = {k: params.get(k) for k in ("url", "secret_token", "allowed_updates")}
            if self._webhook_wake:
                self._webhook_wake.set()
            return True
        if method == "deleteWebhook":
            self.webhook = None
            return True
        if method == "getFile":
            file = self._files.get(params.get("file_id", ""))
            if file is None:
                raise _ApiError(400, "Bad Request: invalid file_id")
            if file.size > DOWNLOAD_LIMIT:
                raise _ApiError(400, "Bad Request: file is too big")
            return {
                "file_id": file.file_id,
                "file_unique_id": file.unique_id,
                "file_size": file.size,
                "file_path": file.path,
            }
        if method == "sendMessage":
            return self._message(params, text=params.get("text", ""))
        if method == "editMessageText":
            return self._message(params, text=params.get("text", ""), message_id=params.get("message_id"))
        if method == "sendPhoto":
            return self._message(params, photo=self._stored(files, params, "photo"))
        if method == "sendDocument":
            return self._message(params, document=self._stored(files, params, "document"))
        if method == "sendMediaGroup":
            messages = []
            for item in params["media"]:
                media = {"media": item["media"]}
                stored = self._stored(files, media, "media")
                kind = "photo" if item["type"] == "photo" else "document"
                messages.append(self._message(params, caption=item.get("caption"), **{kind: stored}))
            return messages
        return True  # sendChatAction, answerCallbackQuery, setMyCommands, deleteWebhook...

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        assert self._new_update is not None
        offset = params.get("offset")
        if self.on_poll:
            self.on_poll(offset)
        deadline = time.monotonic() + float(params.get("timeout") or 0)
        while True:
            with self._lock:
                if offset is not None:
                    self.confirmed_below = max(self.confirmed_below, offset)
                    self.updates = [u for u in self.updates if u["update_id"] >= offset]
                batch = self.updates[: int(params.get("limit") or 100)]
            left = deadline - time.monotonic()
            if batch or left <= 0 or self._closing:
                with self._lock:
                    self.fetches.append((offset, [u["update_id"] for u in batch]))
                if batch and self.on_fetch:
                    self.on_fetch([u["update_id"] for u in batch])
                return batch
            self._new_update.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_update.wait(), timeout=left)

    async def _deliver_to_webhook(self) -> None:
        """Telegram's side of a webhook: the oldest update, again and again until the bot answers 2xx."""
        assert self._webhook_wake is not None
        async with ClientSession() as session:
            self._session = session
            while True:
                with self._lock:
                    update = self.updates[0] if self.updates and self.webhook else None
                    hook = self.webhook
                if update is None or hook is None:
                    self._webhook_wake.clear()
                    await self._webhook_wake.wait()
                    continue
                status = await self._post(hook["url"], update, hook.get("secret_token"))
                with self._lock:
                    self.webhook_posts.append((update["update_id"], status))
                    if status is not None and 200 <= status < 300:
                        self.updates = [u for u in self.updates if u["update_id"] != update["update_id"]]
                if status is not None and 200 <= status < 300:
                    if self.on_webhook_answered:
                        self.on_webhook_answered(update["update_id"])
                else:
                    await asyncio.sleep(self.webhook_retry_s)

    async def _post(self, url: str, update: dict[str, Any], secret: str | None) -> int | None:
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        try:
            async with self._session.post(
                url, json=update, headers=headers, timeout=ClientTimeout(total=10)
            ) as response:
                await response.read()
                return response.status
        except (ClientError, OSError, TimeoutError):
            return None

    def _stored(
        self, files: dict[str, bytes], params: dict[str, Any], key: str
    ) -> list[dict[str, Any]] | dict:
        value = params.get(key, "")
        data = (
            files.get(value.removeprefix("attach://"), files.get(key, b"")) if isinstance(value, str) else b""
        )
        file = self.add_file(data)
        return {"file_id": file.file_id, "file_unique_id": file.unique_id, "file_size": file.size}

    def _message(
        self, params: dict[str, Any], message_id: int | None = None, **content: Any
    ) -> dict[str, Any]:
        message = {
            "message_id": message_id or next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": params.get("chat_id", 0), "type": "private"},
            "from": BOT_USER,
        }
        for key, value in content.items():
            if value is None:
                continue
            if key == "photo":
                value = [{**value, "width": 64, "height": 64}]
            message[key] = value
        if "caption" not in content and params.get("caption"):
            message["caption"] = params["caption"]
        return message

    async def _download(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            raise web.HTTPUnauthorized()
        path = request.match_info["path"]
        with self._lock:
            file = next((f for f in self._files.values() if f.path == path), None)
        if file is None or self.downloads_missing:
            raise web.HTTPNotFound()
        return web.Response(body=file.data, content_type="application/octet-stream")


class _ApiError(Exception):
    def __init__(self, code: int, description: str):
        self.code, self.description = code, description


async def _read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
    params: dict[str, Any] = dict(request.query)
    files: dict[str, bytes] = {}
    if request.can_read_body:
        if request.content_type == "application/json":
            params.update(await request.json())
        else:
            for key, value in (await request.post()).items():
                if isinstance(value, web.FileField):
                    files[key] = value.file.read()
                else:
                    params[key] = value
    for key, value in params.items():
        if key in _JSON_FIELDS and isinstance(value, str):
            params[key] = json.loads(value)
        elif key in _INT_FIELDS and isinstance(value, str) and value.lstrip("-").isdigit():
            params[key] = int(value)
    return params, files
