"""The job queue shared by the bot and the inference workers.

Imports neither torch nor aiogram: both sides use it, and the bot must start in a second.
"""

from jobs.db import connect
from jobs.models import Job, JobState
from jobs.queue import JobQueue
from jobs.schema import migrate

__all__ = ["Job", "JobQueue", "JobState", "connect", "migrate"]
