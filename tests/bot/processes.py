"""`python -m bot` as a real subprocess for end-to-end tests, and a way to find its worker."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.bot.fake_telegram import TOKEN, FakeTelegram

REPO = Path(__file__).resolve().parents[2]


def _proc_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _read(pid: int, name: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except OSError:
        return b""


def alive(pid: int) -> bool:
    stat = _read(pid, "stat")
    return bool(stat) and stat.rsplit(b")", 1)[1].split()[0] != b"Z"  # a zombie is gone for our purposes


def workers_of(data_dir: Path) -> list[int]:
    """Live `python -m inference worker` processes whose DATA_DIR is data_dir (orphans included)."""
    wanted = f"DATA_DIR={data_dir.resolve()}".encode()
    found = []
    for pid in _proc_pids():
        cmdline = _read(pid, "cmdline").split(b"\0")
        ours = (
            b"inference" in cmdline and b"worker" in cmdline and wanted in _read(pid, "environ").split(b"\0")
        )
        if ours and alive(pid):
            found.append(pid)
    return found


class BotProcess:
    def __init__(self, telegram: FakeTelegram, data_dir: Path, **env: str):
        self.telegram, self.data_dir = telegram, data_dir
        self.log_path = data_dir.parent / f"{data_dir.name}-bot.log"
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("BOT_TOKEN",)},
            "PYTHONPATH": str(REPO),
            "BOT_TOKEN": TOKEN,
            "TELEGRAM_API_BASE": telegram.base_url,
            "DATA_DIR": str(data_dir.resolve()),
            "MODELS": "tiny",
            "DEVICE": "cpu",
            "INFERENCE": "embedded",
            "POLLING_TIMEOUT_S": "2",
            "DELIVERY_POLL_S": "0.2",
            "CHAT_ACTION_EVERY_S": "1",
            "WORKER_LEASE_S": "4",
            "NOTICE_INTERVAL_S": "30",
            "STYLIZE_STEPS": "4",  # the tiny models' noise looks the same after 4 steps as after 30
            **env,
        }
        self.process: subprocess.Popen | None = None

    def start(self) -> BotProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot"],
            cwd=self.data_dir.parent,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_worker(self, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if workers := workers_of(self.data_dir):
                return workers[0]
            time.sleep(0.05)
        raise AssertionError(f"no worker appeared in {timeout}s\n{self.log()[-3000:]}")

    def kill9(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def terminate(self, timeout: float = 25.0) -> float:
        """SIGTERM; returns how long the bot took to exit."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout)
        return time.monotonic() - started

    def cleanup(self) -> None:
        """Teardown: nothing of ours survives, whatever the test did."""
        self.kill9()
        for pid in workers_of(self.data_dir):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
