"""The secret-rotation job. (Planning and applying land with the job's own issue; until
then it plans nothing, but the frame runs it end to end.)"""
from __future__ import annotations

from jobs.runner import Job


class SecretRotationJob(Job):
    name = "secret-rotation"


JOB = SecretRotationJob()
