"""Secret values never reach logs or reports, even when a message carries one."""
import base64
import json
import logging
from urllib.parse import quote, quote_plus

import pytest

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


def strings(data):
    """Every string in a JSON-like value, keys included, as a reader of it would see them."""
    if isinstance(data, dict):
        return [s for k, v in data.items() for s in [k, *strings(v)]]
    if isinstance(data, list):
        return [s for item in data for s in strings(item)]
    return [data] if isinstance(data, str) else []


def test_a_secret_cut_by_truncation_is_still_scrubbed():
    from jobs.runner import _describe
    from jobs.secret_rotation.protocol import describe
    value = "Trunc4ted-S3cret-Value-xyz"
    redact.remember(value)
    for describe_error, limit in ((_describe, 500), (describe, 300)):
        # The secret straddles the limit: cut first, its first half would escape.
        padding = "p" * (limit - len("RuntimeError: ") - 10)
        text = describe_error(RuntimeError(padding + value))
        assert value[:10] not in text, describe_error


@pytest.mark.parametrize("value", ['pa"ss\\w0rd-with-escapes', "päss-wörd-ünïcode", "tab\there-and-line"])
def test_a_secret_that_json_escapes_is_scrubbed_from_reports(value):
    redact.remember(value)
    report = RunReport("secret-rotation", "r2", "cli", False, NOW, NOW)
    report.outcomes.append(Outcome(Action("rotate", "db-password", "due"), "failed",
                                   error=f"login failed for password {value}"))
    report.details = {"note": f"value {value} again", value: "as a key"}
    shown = report_json(report)
    assert not [s for s in strings(shown) if value in s]
    assert any(redact.MASK in s for s in strings(shown))


@pytest.mark.parametrize("encode", [
    lambda v: quote(v, safe=""), quote, quote_plus,
    lambda v: base64.b64encode(v.encode()).decode(),
    lambda v: base64.urlsafe_b64encode(v.encode()).decode(),
    lambda v: base64.b64encode(v.encode()).decode().rstrip("="),
    lambda v: json.dumps(v)[1:-1],
], ids=["quote-all", "quote", "quote_plus", "base64", "base64url", "base64-unpadded", "json"])
def test_url_encoded_base64_and_json_forms_of_a_secret_are_scrubbed(encode):
    value = "p@ss/w0rd+=&?~ é\"x"
    redact.remember(value)
    encoded = encode(value)
    assert encoded != value
    assert encoded not in redact.scrub(f"https://host/cb?pw={encoded}&next=1")
    assert redact.MASK in redact.scrub(f"https://host/cb?pw={encoded}&next=1")
