"""The notifier every job shares: a generic JSON webhook, Slack or Teams
incoming webhooks, chosen by settings (OPS_NOTIFY_KIND, OPS_NOTIFY_URL).

A job sends a notification as an action (kind ``notify``), so a failed
notification is a failed outcome in the run report, never a crash. The webhook
URL is a secret (it embeds a token) and never appears in a message; every
message is scrubbed of remembered secret values before it is sent.
"""
from __future__ import annotations

import json
import logging
import ssl
import urllib.error
import urllib.request
from typing import Any

from jobs import redact
from jobs.model import Action

log = logging.getLogger(__name__)


class NotifyError(Exception):
    pass


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Webhooks answer, they do not redirect: a redirect is a failure, and the message
    (and the sandbox's loopback-only rule) never goes to the host it names."""

    def redirect_request(self, *args, **kwargs):
        return None


class Notifier:
    def __init__(self, kind: str, url: str | None, *, timeout: float = 10.0,
                 ca_bundle: str | None = None, source: str = "ops-functions"):
        self.kind, self._url, self.timeout, self.source = kind, url, timeout, source
        context = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else None
        self._opener = urllib.request.build_opener(_NoRedirect(),
                                                   urllib.request.HTTPSHandler(context=context))

    @classmethod
    def from_settings(cls, settings) -> "Notifier":
        url = settings.notify_url.get_secret_value() if settings.notify_url else None
        return cls(settings.notify_kind, url, timeout=settings.notify_timeout_seconds,
                   ca_bundle=settings.ca_bundle)

    @property
    def enabled(self) -> bool:
        return self.kind != "none" and bool(self._url)

    def payload(self, title: str, text: str, facts: dict[str, str], severity: str) -> dict[str, Any]:
        if self.kind == "slack":
            blocks: list[dict[str, Any]] = [
                {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
                {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}},
            ]
            if facts:
                blocks.append({"type": "section", "fields": [
                    {"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in list(facts.items())[:10]]})
            return {"text": f"{title}: {text}"[:3000], "blocks": blocks}
        if self.kind == "teams":
            body: list[dict[str, Any]] = [
                {"type": "TextBlock", "size": "Large", "weight": "Bolder", "text": title, "wrap": True},
                {"type": "TextBlock", "text": text, "wrap": True},
            ]
            if facts:
                body.append({"type": "FactSet",
                             "facts": [{"title": k, "value": v} for k, v in facts.items()]})
            return {"type": "message", "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "content": {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                            "type": "AdaptiveCard", "version": "1.4", "body": body}}]}
        return {"source": self.source, "severity": severity, "title": title, "text": text,
                "facts": facts}

    def send(self, title: str, text: str, facts: dict[str, str] | None = None,
             severity: str = "warning") -> str:
        """Post one message; raise NotifyError (without the URL) when it is not accepted."""
        if not self.enabled:
            return "notifications are off (OPS_NOTIFY_KIND=none)"
        # Scrubbed before payload() cuts texts to Slack's limits: a cut secret would not match.
        facts = redact.scrub_data(dict(facts or {}))
        body = json.dumps(self.payload(redact.scrub(title), redact.scrub(text), facts, severity)).encode()
        request = urllib.request.Request(self._url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with self._opener.open(request, timeout=self.timeout) as resp:
                status = resp.status
        except urllib.error.HTTPError as exc:
            raise NotifyError(f"{self.kind} webhook answered HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise NotifyError(f"{self.kind} webhook unreachable: {type(reason).__name__}") from None
        log.info("sent %s notification: %s", self.kind, title)
        return f"sent to {self.kind} webhook (HTTP {status})"


def notify_action(key: str, title: str, text: str, facts: dict[str, str] | None = None,
                  severity: str = "warning", after: tuple[str, ...] = ()) -> Action:
    """An action that sends one notification; ``key`` names what it is about
    (e.g. ``budget:sub-1:2026-11:80%``) and becomes the target."""
    return Action(kind="notify", target=key, reason=title, after=after,
                  params={"title": title, "text": text, "facts": dict(facts or {}),
                          "severity": severity})


def send_action(action: Action, notifier: Notifier) -> str:
    p = action.params
    return notifier.send(p["title"], p["text"], p.get("facts"), p.get("severity", "warning"))
