"""Senders, one per channel. Each send carries the row's idempotency key (Idempotency-Key header, Message-ID) so a
receiver can drop the repeat that follows a crash between sending and marking the row sent."""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from service.config import Settings
from service.notify.models import Channel
from service.notify.schemas import AskerMail, SealedLink
from service.sealing import unseal

USER_AGENT = "nemawashi-notify/1"


class DeliveryFailed(Exception):
    """A send that did not go through; permanent when retrying cannot help (e.g. HTTP 400, 404)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Outgoing:
    """A claimed row, detached from its session: what one attempt sends."""

    id: int
    channel: Channel
    receiver: str
    payload: dict[str, Any]
    key: str
    attempts: int


def send(row: Outgoing, settings: Settings) -> None:
    """Deliver one row on its channel; DeliveryFailed when it did not go through."""
    if row.channel == Channel.email:
        send_mail(row, settings)
        return
    url = {
        Channel.webhook: settings.webhook_url,
        Channel.teams: settings.teams_webhook_url,
        Channel.slack: settings.slack_webhook_url,
    }[row.channel]
    if not url:
        raise DeliveryFailed(f"{row.channel} is not configured (its URL setting is empty)")
    if row.channel == Channel.webhook:
        body = canonical_json(row.payload)
        headers = signed_headers(body, settings.webhook_secret.get_secret_value() if settings.webhook_secret else "")
    else:
        card = teams_card if row.channel == Channel.teams else slack_message
        body, headers = canonical_json(card(row.payload, settings.public_url)), {}
    post(url, body, {**headers, "Idempotency-Key": row.key}, timeout=settings.outbox_timeout_s)


def canonical_json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=str).encode()


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """hex HMAC-SHA256 of "{timestamp}.{body}": what X-Nemawashi-Signature carries after "sha256="."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def signed_headers(body: bytes, secret: str, *, now: float | None = None) -> dict[str, str]:
    """The timestamp always; the signature when a secret is set (a receiver checks both, and the age)."""
    timestamp = str(int(now if now is not None else time.time()))
    headers = {"X-Nemawashi-Timestamp": timestamp}
    if secret:
        headers["X-Nemawashi-Signature"] = "sha256=" + signature(secret, timestamp, body)
    return headers


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float) -> None:
    """POST JSON; 2xx is delivered. 4xx other than 408/429 will not get better by retrying: permanent."""
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT, **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read(1024)
    except urllib.error.HTTPError as exc:
        permanent = 400 <= exc.code < 500 and exc.code not in (408, 429)
        raise DeliveryFailed(f"HTTP {exc.code} {exc.reason}", permanent=permanent) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}") from exc


TEAM_TITLES = {
    "question.abstained": "新しい未回答の質問 / A question the knowledge base could not answer",
    "draft.flagged": "確認が必要な下書き / A flagged draft needs review",
    "digest.daily": "nemawashi 日次サマリー / Daily digest",
}
DIGEST_LINES = (
    ("questions", "質問 / questions"),
    ("abstained", "未回答 / not answered"),
    ("flagged", "要確認の下書き / flagged drafts"),
    ("approved", "承認 / approved"),
    ("waiting", "未対応 / waiting"),
)


def _team_text(payload: dict[str, Any]) -> str:
    """The message body: the (redacted) question, or the digest's counts."""
    if payload.get("event") == "digest.daily":
        counts = " · ".join(f"{label}: {payload.get(key, 0)}" for key, label in DIGEST_LINES)
        return f"{payload.get('date', '')}（過去24時間 / last 24 hours）\n{counts}"
    return str(payload.get("question", ""))


def _review_link(payload: dict[str, Any], public_url: str) -> str | None:
    return public_url.rstrip("/") + str(payload["review_path"]) if public_url else None


def teams_card(payload: dict[str, Any], public_url: str) -> dict[str, Any]:
    """A Teams incoming-webhook MessageCard: title, the (redacted) question, flags, and a button to the item."""
    title = TEAM_TITLES.get(str(payload.get("event")), "nemawashi")
    card: dict[str, Any] = {
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": title,
        "themeColor": "C0392B" if payload.get("event") == "question.abstained" else "E67E22",
        "title": title,
        "text": _team_text(payload),
        "sections": [{"facts": [{"name": "flags", "value": ", ".join(payload.get("flags", [])) or "-"}]}]
        if payload.get("event") != "digest.daily"
        else [],
    }
    if link := _review_link(payload, public_url):
        target = {"os": "default", "uri": link}
        card["potentialAction"] = [{"@type": "OpenUri", "name": "レビューする / Review", "targets": [target]}]
    return card


def slack_message(payload: dict[str, Any], public_url: str) -> dict[str, Any]:
    """A Slack incoming-webhook message: text (the notification's fallback) and blocks."""
    title = TEAM_TITLES.get(str(payload.get("event")), "nemawashi")
    question = _team_text(payload)
    link = _review_link(payload, public_url)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {"type": "section", "text": {"type": "plain_text", "text": question[:2900] or "-"}},
    ]
    if link:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"<{link}|レビューする / Review>"}})
    return {"text": f"{title}: {question[:200]}", "blocks": blocks}


MAIL_TEXTS: dict[str, dict[str, str]] = {
    "ja": {
        "subject": "ご質問への回答が更新されました",
        "approved": "プロジェクトチームが回答を確認しました。",
        "corrected": "プロジェクトチームが回答を修正しました。以前の回答ではなく、こちらをご覧ください。",
        "answered_by_team": "プロジェクトチームから回答が届きました。",
        "rejected": "以前の回答はプロジェクトチームの確認で取り下げられました。プロジェクトチームからのメッセージ：",
        "link": "最新の回答はこちら：",
    },
    "en": {
        "subject": "The answer to your question was updated",
        "approved": "The project team checked and approved the answer.",
        "corrected": "The project team corrected the answer. Please read this instead of the earlier one.",
        "answered_by_team": "The project team has answered your question.",
        "rejected": "The project team withdrew the earlier answer after checking it. Their message:",
        "link": "The current answer is always here:",
    },
}


def followup_link(link: SealedLink | None, settings: Settings) -> str | None:
    """The asker's link in clear, only while sending: needs the link key and the public URL, else None."""
    if link is None or not settings.link_key or not settings.public_url:
        return None
    token = unseal(link.sealed, digest=link.digest, key=settings.link_key.get_secret_value())
    return settings.public_url.rstrip("/") + link.path.replace("{token}", token) if token else None


def mail_message(row: Outgoing, settings: Settings) -> EmailMessage:
    """The asker's e-mail in their language: a line on what changed, the answer, the link. Nothing else."""
    mail = AskerMail.model_validate(row.payload)
    texts = MAIL_TEXTS.get(mail.lang, MAIL_TEXTS["ja"])
    parts = [texts[mail.state], mail.answer]
    if link := followup_link(mail.link, settings):
        parts.append(f"{texts['link']}\n{link}")
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = row.receiver
    message["Subject"] = texts["subject"]
    domain = settings.smtp_from.rpartition("@")[2] or "nemawashi"
    message["Message-ID"] = f"<{row.key}@{domain}>"
    message.set_content("\n\n".join(parts) + "\n", charset="utf-8")
    return message


def send_mail(row: Outgoing, settings: Settings) -> None:
    """One SMTP session per row (STARTTLS and login when configured)."""
    if not settings.smtp_host:
        raise DeliveryFailed("e-mail is not configured (NEMAWASHI_SMTP_HOST is empty)")
    message = mail_message(row, settings)
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.outbox_timeout_s) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_user:
                password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
                smtp.login(settings.smtp_user, password)
            smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        raise DeliveryFailed("the mail server refused the recipient", permanent=True) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
