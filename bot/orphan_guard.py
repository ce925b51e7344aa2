"""`python -m bot.orphan_guard PARENT_PID -- COMMAND...`: exec COMMAND, asking Linux for a SIGTERM when the
bot dies, even by kill -9 (PR_SET_PDEATHSIG survives exec). Without it a killed bot would leave its
worker running, and the restarted bot would start a second one.

A separate exec step rather than Popen's preexec_fn, which may deadlock in a process that has threads
(aiosqlite's). Imports nothing from the bot.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> None:
    parent, separator, *command = argv
    if separator != "--" or not command:
        raise SystemExit("usage: python -m bot.orphan_guard PARENT_PID -- COMMAND...")
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != int(parent):  # the parent died before prctl took effect
            raise SystemExit(0)
    os.execv(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
