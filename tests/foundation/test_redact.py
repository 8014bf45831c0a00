"""Secret values never reach logs or reports, even when a message carries one."""
import json
import logging

from jobs import redact
from jobs.model import Action, Outcome, RunReport
from jobs.runner import report_json
from tests.foundation.test_runner import NOW


def test_remembered_values_are_scrubbed_from_logs(caplog):
    value = "s3cr3t-Value-For-Log-Test"
    redact.remember(value)
    logger = logging.getLogger("test.redact")
    caplog.handler.addFilter(redact.RedactingFilter())
    logger.warning("password is %s", value)
    assert value not in caplog.text
    assert redact.MASK in caplog.text


def test_remembered_values_are_scrubbed_from_reports():
    value = "another-S3cret-in-an-error"
    redact.remember(value)
    report = RunReport("secret-rotation", "r1", "cli", False, NOW, NOW)
    report.outcomes.append(Outcome(Action("rotate", "db-password", "due"), "failed",
                                   error=f"login failed for password {value}"))
    assert value not in json.dumps(report_json(report))
