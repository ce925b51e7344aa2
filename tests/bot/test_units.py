"""Small pieces: texts, keyboards, settings, the command menu, import hygiene, `python -m bot`'s errors."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.keyboards import LangChoice, StyleChoice, style_keyboard
from bot.settings import BotSettings
from bot.texts import ERRORS, STRINGS, Texts, lang_from_code
from jobs import errors
from tests.bot.fake_telegram import TOKEN, FakeTelegram

REPO = Path(__file__).resolve().parents[2]


def test_every_string_exists_in_both_languages():
    assert STRINGS["en"].keys() == STRINGS["ru"].keys()
    codes = {v for k, v in vars(errors).items() if k.isupper() and isinstance(v, str)}
    assert codes <= ERRORS["en"].keys() and codes <= ERRORS["ru"].keys()
    for lang in ("en", "ru"):
        for key, value in STRINGS[lang].items():
            assert value.strip(), (lang, key)


def test_language_from_telegram():
    assert lang_from_code("ru") == lang_from_code("ru-RU") == "ru"
    assert lang_from_code("en") == lang_from_code("uk") == lang_from_code(None) == "en"


def test_album_caption_names_each_picture():
    texts = Texts()
    four = texts.album_caption("ru", "a cat", ["vangogh", "banksy", "delaunay", "malevich"])
    assert four == "🖼 <i>a cat</i>\n\n1. Ван Гог\n2. Бэнкси\n3. Робер Делоне\n4. Казимир Малевич"
    assert texts.album_caption("en", "", ["banksy"] * 4).endswith("1–4. Banksy")
    assert len(texts.album_caption("en", "x" * 5000, ["banksy"] * 4)) < 1024


def test_style_keyboard_marks_the_current_choice_and_round_trips():
    markup = style_keyboard(Texts(), "en", "banksy")
    buttons = [b for row in markup.inline_keyboard for b in row]
    assert buttons[0].text == "🎨 All four artists"
    assert [b.text for b in buttons if b.text.startswith("✓")] == ["✓ Banksy"]
    assert StyleChoice.unpack(buttons[1].callback_data).style == "vangogh"
    assert LangChoice.unpack(LangChoice(lang="ru").pack()).lang == "ru"


def test_settings_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    monkeypatch.setenv("ADMIN_IDS", "1, 2")
    monkeypatch.setenv("MAX_JOBS_PER_USER", "5")
    settings = BotSettings()
    assert settings.bot_token.get_secret_value() == TOKEN
    assert settings.admin_ids == {1, 2} and settings.max_jobs_per_user == 5
    assert (settings.inference, settings.models, settings.device) == ("embedded", "sd15", "auto")
    assert settings.db_path == Path("data/artbooth.sqlite3")
    assert TOKEN not in repr(settings)
    (tmp_path / ".env").write_text("INFERENCE=external\nMODELS=tiny\n")
    assert BotSettings().inference == "external"


@pytest.mark.parametrize(
    "token", ["", "123456", "abc:defghijklmnopqrstuvwxyz0123456789", "123:short", "12 3:" + "a" * 35]
)
def test_malformed_tokens_are_refused(token):
    with pytest.raises(ValidationError):
        BotSettings(_env_file=None, bot_token=token)


def run_bot(tmp_path: Path, env: dict[str, str], timeout: float = 20) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("BOT_TOKEN", "TELEGRAM_API_BASE")}
    return subprocess.run(
        [sys.executable, "-m", "bot"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={
            **clean,
            "PYTHONPATH": str(REPO),
            "DATA_DIR": str(tmp_path / "data"),
            "INFERENCE": "external",
            **env,
        },
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "artbooth bot: BOT_TOKEN is not set (put it in the environment or .env)"),
        ({"BOT_TOKEN": "not-a-token"}, "artbooth bot: BOT_TOKEN is malformed: expected <digits>:"),
    ],
)
def test_a_missing_or_malformed_token_gives_one_clear_line(tmp_path, env, message):
    result = run_bot(tmp_path, env)
    assert result.returncode == 2
    assert result.stderr.startswith(message)
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_a_token_telegram_rejects_gives_one_clear_line(tmp_path, telegram: FakeTelegram):
    other = "654321:" + "b" * 35
    result = run_bot(
        tmp_path, {"BOT_TOKEN": other, "TELEGRAM_API_BASE": telegram.base_url, "LOG_LEVEL": "ERROR"}
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "artbooth bot: Telegram rejected BOT_TOKEN (401 Unauthorized): check the token with @BotFather"
    )


def test_the_bot_never_imports_torch_diffusers_or_transformers():
    code = (
        "import pkgutil, importlib, sys, bot\n"
        "for m in pkgutil.walk_packages(bot.__path__, 'bot.'):\n"
        "    importlib.import_module(m.name)\n"
        "heavy = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "print('ok', len([m for m in sys.modules if m.startswith('bot')]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")


async def test_command_menu_in_both_languages(telegram: FakeTelegram, tmp_path):
    from bot.commands import set_commands
    from bot.telegram import create_bot
    from tests.bot.conftest import bot_settings

    bot = create_bot(bot_settings(telegram, tmp_path))
    try:
        await set_commands(bot, Texts())
    finally:
        await bot.session.close()
    calls = telegram.sent("setMyCommands")
    by_lang = {c.params.get("language_code"): c.params for c in calls}
    assert set(by_lang) == {None, "en", "ru"}
    assert all(p["scope"] == {"type": "default"} for p in by_lang.values())
    ru = {c["command"]: c["description"] for c in by_lang["ru"]["commands"]}
    en = {c["command"]: c["description"] for c in by_lang[None]["commands"]}
    assert (
        ru.keys()
        == en.keys()
        == {
            *("start", "help", "style", "status", "cancel", "lang"),
            *("train", "done", "me", "portrait", "pose", "forget"),
            "settings",
        }
    )
    assert ru["style"] == "выбрать стиль" and en["style"] == "choose a style"


def test_sigterm_while_telegram_is_unreachable_stops_the_bot(tmp_path):
    clean = {k: v for k, v in os.environ.items() if k not in ("BOT_TOKEN", "TELEGRAM_API_BASE")}
    env = {
        **clean,
        "PYTHONPATH": str(REPO),
        "DATA_DIR": str(tmp_path / "data"),
        "INFERENCE": "external",
        "BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE": "http://127.0.0.1:9",
    }  # nothing listens on the discard port
    process = subprocess.Popen(
        [sys.executable, "-m", "bot"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not (tmp_path / "data" / "artbooth.sqlite3").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.5)  # inside the get_me retry loop by now
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
        assert "cannot reach Telegram" in process.stdout.read()
    finally:
        process.kill()


def test_a_local_bot_api_server(monkeypatch):
    from bot.telegram import create_bot

    settings = BotSettings(
        _env_file=None, bot_token=TOKEN, telegram_api_base="http://10.0.0.5:8081/", telegram_api_local=True
    )
    api = create_bot(settings).session.api
    assert api.is_local
    assert api.api_url(TOKEN, "getMe") == f"http://10.0.0.5:8081/bot{TOKEN}/getMe"
    assert api.file_url(TOKEN, "photos/a.jpg") == f"http://10.0.0.5:8081/file/bot{TOKEN}/photos/a.jpg"
    assert "api.telegram.org" in create_bot(BotSettings(_env_file=None, bot_token=TOKEN)).session.api.base


def test_help_lists_the_settings(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bot", "--help"], cwd=REPO, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0
    assert (
        "BOT_TOKEN" in result.stdout
        and "MAX_JOBS_PER_USER" in result.stdout
        and "TELEGRAM_API_BASE" in result.stdout
    )


async def test_start_up_sweep_deletes_only_folders_of_users_and_jobs_that_are_gone(tmp_path):
    from bot.forget import sweep_orphans
    from jobs.aio import AsyncJobQueue, open_db
    from jobs.files import LocalFiles
    from jobs.store import BotStore

    db = await open_db(tmp_path / "artbooth.sqlite3")
    try:
        await db.execute("INSERT INTO users (id, chat_id, created_at) VALUES (7, 7, 0)")
        kept_job, _ = await AsyncJobQueue(db).enqueue("stylize", user_id=7)
        kept = [tmp_path / d / "7" for d in ("uploads", "selfies", "loras")] + [
            tmp_path / "results" / str(kept_job)
        ]
        gone = [tmp_path / d / "8" for d in ("uploads", "selfies", "loras")] + [tmp_path / "results" / "999"]
        for folder in kept + gone:
            folder.mkdir(parents=True)
            (folder / "file.jpg").write_bytes(b"x")
        names = sorted(p.relative_to(tmp_path).as_posix() for p in gone)
        assert sorted(await sweep_orphans(BotStore(db), LocalFiles(tmp_path))) == names
        assert all(f.exists() for f in kept) and not any(f.exists() for f in gone)
    finally:
        await db.close()


async def test_a_dead_workers_process_group_is_killed_before_the_restart(tmp_path):
    import asyncio

    from bot.supervisor import WorkerSupervisor

    settings = BotSettings(_env_file=None, bot_token=TOKEN, data_dir=tmp_path)
    supervisor = WorkerSupervisor(settings, min_backoff_s=30)
    grandchild = tmp_path / "grandchild.pid"
    # A worker that leaves a child behind and dies, as a kill -9'd one would.
    supervisor.command = lambda: ["sh", "-c", f"sleep 60 & echo $! > {grandchild}; exit 3"]
    task = asyncio.create_task(supervisor.run())
    try:
        while supervisor.process is None or supervisor.process.returncode is None or not grandchild.exists():
            await asyncio.sleep(0.05)
        pid = int(grandchild.read_text())
        deadline = time.monotonic() + 5
        while _alive(pid) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not _alive(pid)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if grandchild.exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(grandchild.read_text()), signal.SIGKILL)


def _alive(pid: int) -> bool:
    """Running, not a zombie (an orphan's zombie waits for PID 1 to reap it)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def test_training_eta_is_said_in_seconds_under_a_minute_and_a_half():
    from bot.texts import Texts
    from bot.train_progress import eta_text

    texts = Texts()
    said = [eta_text(texts, "en", eta) for eta in (600, 130, 85, 62, 40, 12, 3)]
    assert said == [
        " · about 10 min left",
        " · about 2 min left",
        " · about 80 s left",
        " · about 60 s left",
        " · about 40 s left",
        " · about 10 s left",
        " · about 10 s left",
    ]
    assert eta_text(texts, "ru", 40) == " · осталось около 40 с"
    assert eta_text(texts, "en", None) == eta_text(texts, "en", 0) == ""
