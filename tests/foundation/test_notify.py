"""The shared notifier against a local HTTP receiver: three formats, and a
failed notification is an error without the webhook URL in it."""
import json

import pytest

from jobs.notify import Notifier, NotifyError
from sandbox.webhook import WebhookReceiver


@pytest.fixture
def receiver():
    server = WebhookReceiver()
    yield server
    server.stop()


FACTS = {"scope": "sub-1", "threshold": "80 %"}


def test_generic_webhook_gets_structured_json(receiver):
    Notifier("webhook", receiver.url).send("Budget 80 % reached", "App Service drives it", FACTS)
    msg = receiver.received[0]
    assert msg["title"] == "Budget 80 % reached" and msg["facts"] == FACTS
    assert msg["severity"] == "warning"


def test_slack_gets_blocks_with_a_fallback_text(receiver):
    Notifier("slack", receiver.url).send("Budget 80 % reached", "App Service drives it", FACTS)
    msg = receiver.received[0]
    assert msg["text"].startswith("Budget 80 % reached")
    assert msg["blocks"][0]["type"] == "header"
    assert {"type": "mrkdwn", "text": "*scope*\nsub-1"} in msg["blocks"][2]["fields"]


def test_teams_gets_an_adaptive_card(receiver):
    Notifier("teams", receiver.url).send("Budget 80 % reached", "App Service drives it", FACTS)
    card = receiver.received[0]["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["body"][2]["facts"][0] == {"title": "scope", "value": "sub-1"}


def test_a_refused_notification_raises_without_the_url(receiver):
    receiver.answers.append(500)
    with pytest.raises(NotifyError) as err:
        Notifier("slack", receiver.url).send("t", "x")
    assert "HTTP 500" in str(err.value) and "SECRETPATH" not in str(err.value)


def test_an_unreachable_receiver_raises_without_the_url():
    with pytest.raises(NotifyError) as err:
        Notifier("webhook", "http://127.0.0.1:9/hook/SECRETPATH", timeout=2).send("t", "x")
    assert "unreachable" in str(err.value) and "SECRETPATH" not in str(err.value)


def test_notifications_off_send_nothing(receiver):
    assert "off" in Notifier("none", None).send("t", "x")
    assert receiver.received == []


def test_a_remembered_secret_never_reaches_the_webhook_even_cut_by_a_length_limit(receiver):
    from jobs import redact
    value = "Notify-S3cret-Value-0123456789"
    redact.remember(value)
    # Slack's section text is cut at 3000 characters: the secret straddles the cut.
    text = "t" * (3000 - 12) + value
    Notifier("slack", receiver.url).send(f"title {value}", text, {"password": value, value: "key"})
    sent = json.dumps(receiver.received[0], ensure_ascii=False)
    assert value[:12] not in sent and redact.MASK in sent


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirecting_webhook_is_a_failure_and_the_message_goes_nowhere_else(receiver, status):
    elsewhere = WebhookReceiver()
    try:
        receiver.answers.append((status, {"Location": elsewhere.url}))
        with pytest.raises(NotifyError) as err:
            Notifier("webhook", receiver.url).send("t", "x")
        assert f"HTTP {status}" in str(err.value) and "SECRETPATH" not in str(err.value)
        assert elsewhere.received == []
    finally:
        elsewhere.stop()
