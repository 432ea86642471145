"""The asker's e-mail, through a real SMTP server (aiosmtpd): their language, the answer and the link, nothing else."""

from __future__ import annotations

from fastapi.testclient import TestClient

from service.config import Settings
from service.sealing import seal, unseal
from tests.followups.conftest import token_of
from tests.followups.test_routes import DRAFTED
from tests.notify.conftest import PROXY, PUBLIC_URL, Mailbox, notify_app, wait_until
from tests.notify.test_delivery import CORRECTED

ASKER = "tanaka.hanako@minato.example"


def test_a_japanese_asker_gets_the_corrected_answer_and_their_link_in_japanese(
    fake_indexed: Settings, database_url: str, smtp: tuple[int, Mailbox]
) -> None:
    port, mailbox = smtp
    mail = {"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_starttls": False, "smtp_from": "pmo@minato.example"}
    proxy = {"sso_email_header": "X-Forwarded-Email", "trusted_proxies": [PROXY]}
    with notify_app(fake_indexed, database_url, **mail, **proxy) as app:
        via_proxy = TestClient(app.app, client=(PROXY, 40000))
        asked = via_proxy.post("/v1/ask", json={"question": DRAFTED}, headers={"X-Forwarded-Email": ASKER}).json()
        other = app.ask("ボーナスは減りますか？")  # another asker, anonymous: nothing of theirs may leak
        decided = app.decide(app.item_of(asked["id"]), app.user("sato"), action="edit", answer=CORRECTED)
        assert decided.status_code == 200
        wait_until(lambda: mailbox.messages)
        [(recipients, message)] = mailbox.messages
        link = f"{PUBLIC_URL}/v1/followups/{token_of(asked['followup_url'])}"
        shown = app.client.get(link.removeprefix(PUBLIC_URL)).json()

    body = message.get_content()
    assert recipients == [ASKER] and message["To"] == ASKER
    assert message["Subject"] == "ご質問への回答が更新されました"
    assert message["Message-ID"].startswith("<answer.updated.item") and "email@minato.example>" in message["Message-ID"]
    assert body.split("\n\n") == [
        "プロジェクトチームが回答を修正しました。以前の回答ではなく、こちらをご覧ください。",
        CORRECTED,
        f"最新の回答はこちら：\n{link}\n",
    ]
    assert "sato" not in body and other["id"] not in body and DRAFTED not in body
    assert shown["state"] == "corrected" and shown["answer"] == CORRECTED  # the mailed link works


def test_a_sealed_token_opens_only_with_its_key() -> None:
    import hashlib

    token = "a" * 43
    digest = hashlib.sha256(token.encode()).hexdigest()
    sealed = seal(token, digest=digest, key="k" * 32)
    assert token not in sealed
    assert unseal(sealed, digest=digest, key="k" * 32) == token
    assert unseal(sealed, digest=digest, key="x" * 32) is None
