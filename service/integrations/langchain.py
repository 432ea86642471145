"""LangChain components over nemawashi, for other teams' chains and agents.

In process (import our package): `KnowledgeBaseRetriever` is the same hybrid search `/v1/search` runs,
`NemawashiEmbeddings` the same embedder the index was built with, and `TriageRunnable` the same pipeline
`/v1/ask` runs, its drafts stored for review with source "langchain". Over HTTP (a running nemawashi):
`RemoteKnowledgeBaseRetriever` and `RemoteTriageRunnable`. LangChain objects stop at this module: the
pipeline below sees strings and our own pydantic types only.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, get_args

import httpx
from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import run_in_executor
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.orm import Session, sessionmaker

from service.bootstrap import Clients, build_triage, open_clients
from service.config import Settings
from service.errors import BadInput, NemawashiError, NotReady
from service.retrieval.embeddings import Embedder
from service.retrieval.schemas import DocTypeName, Hit
from service.retrieval.service import KnowledgeIndex, SearchOptions, clean_query, search_passages
from service.triage.models import QuestionSource
from service.triage.schemas import AskResponse
from service.triage.service import Triage, ask, ask_events

Lang = Literal["ja", "en"]
DOC_TYPES = frozenset(get_args(DocTypeName))


class TriageInput(BaseModel):
    """One question (or survey comment) for the pipeline; a plain string is a question with nothing else."""

    model_config = ConfigDict(extra="forbid")
    question: str = Field(description="A question, objection or survey comment, Japanese or English.")
    department: str | None = Field(default=None, max_length=100)
    asker: str | None = Field(default=None, max_length=200, description="Who asked, when the calling team knows.")
    survey: bool = Field(default=False, description="A survey comment: stored as source survey, for the reports.")

    @property
    def source(self) -> QuestionSource:
        return QuestionSource.survey if self.survey else QuestionSource.langchain


def triage_input(value: TriageInput | str | Mapping[str, Any]) -> TriageInput:
    """The input as a TriageInput, or BadInput saying what shape is expected."""
    if isinstance(value, TriageInput):
        return value
    if isinstance(value, str):
        return TriageInput(question=value)
    try:
        return TriageInput.model_validate(dict(value))
    except (ValidationError, TypeError, ValueError) as exc:
        raise BadInput(
            "expected a question string or {'question': ..., 'department': ..., 'survey': ...}: " + str(exc)
        ) from exc


def hit_document(hit: Hit) -> Document:
    """A search hit as a LangChain Document: the passage text, and where it comes from in metadata."""
    meta = hit.model_dump(exclude={"text"})
    return Document(page_content=hit.text, metadata=meta, id=hit.chunk_id)


def _filters(types: Sequence[str] | None, lang: str | None) -> tuple[list[str] | None, str | None]:
    """Checked type and language filters (a typo would silently find nothing)."""
    wrong = sorted(set(types or ()) - DOC_TYPES)
    if wrong:
        raise BadInput(f"unknown document type(s) {wrong}: use {sorted(DOC_TYPES)}")
    if lang not in (None, "ja", "en"):
        raise BadInput(f"unknown language {lang!r}: use 'ja' or 'en'")
    return (list(types) if types else None), lang


class KnowledgeBaseRetriever(BaseRetriever):
    """The curated knowledge base as a retriever: the hybrid search behind /v1/search, filters and all.

    `retriever.invoke("BRIDGEの費用は？", k=3, types=["faq"], lang="ja")` overrides the defaults per call.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    knowledge: KnowledgeIndex
    k: int = Field(default=5, ge=1, le=50)
    types: list[DocTypeName] | None = None
    lang: Lang | None = None
    options: SearchOptions = Field(default_factory=SearchOptions)
    max_query_chars: int = 2000

    @classmethod
    def from_settings(cls, settings: Settings, knowledge: KnowledgeIndex, **fields: Any) -> KnowledgeBaseRetriever:
        """Searching as the API does with these settings (candidates, fusion, query limit)."""
        defaults = {"options": SearchOptions.from_settings(settings), "max_query_chars": settings.max_query_chars}
        return cls(knowledge=knowledge, **{**defaults, **fields})

    def search(
        self, query: str, *, k: int | None = None, types: Sequence[str] | None = None, lang: str | None = None
    ) -> list[Document]:
        """The k best passages for query, as Documents."""
        chosen_types, chosen_lang = _filters(types if types is not None else self.types, lang or self.lang)
        hits = search_passages(
            self.knowledge,
            query=clean_query(query, max_chars=self.max_query_chars),
            k=k or self.k,
            types=chosen_types,
            lang=chosen_lang,
            options=self.options,
        )
        return [hit_document(h) for h in hits]

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        k: int | None = None,
        types: Sequence[str] | None = None,
        lang: str | None = None,
    ) -> list[Document]:
        return self.search(query, k=k, types=types, lang=lang)

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,
        k: int | None = None,
        types: Sequence[str] | None = None,
        lang: str | None = None,
    ) -> list[Document]:
        # The search is CPU work (embedding, BM25) on shared clients: a worker thread keeps the event loop free.
        return await run_in_executor(None, self.search, query, k=k, types=types, lang=lang)


class NemawashiEmbeddings(Embeddings):
    """Our embedder as LangChain Embeddings: documents get the passage form, queries the query form (e5's
    "passage: " / "query: " prefixes), so vectors match the ones in our index."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = self.embedder.embed_passages(list(texts)).tolist()
        return vectors

    def embed_query(self, text: str) -> list[float]:
        vector: list[float] = self.embedder.embed_query(text).tolist()
        return vector


class TriageRunnable(Runnable[TriageInput | str | Mapping[str, Any], AskResponse]):
    """The triage pipeline as a Runnable: the AskResponse /v1/ask gives, stored for review as source "langchain".

    `invoke`/`batch` return AskResponse; `stream`/`astream` yield the answer text as it is written, then the
    AskResponse.
    """

    def __init__(self, triage: Triage, sessions: sessionmaker[Session]) -> None:
        self.triage = triage
        self.sessions = sessions

    def invoke(
        self, input: TriageInput | str | Mapping[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> AskResponse:
        return self._call_with_config(self._ask, input, config, run_type="chain")

    def _ask(self, value: TriageInput | str | Mapping[str, Any]) -> AskResponse:
        item = triage_input(value)
        return ask(
            self.triage,
            self.sessions,
            question=item.question,
            source=item.source,
            department=item.department,
            asker=item.asker,
        )

    def stream(  # type: ignore[override]  # text deltas, then the final AskResponse
        self, input: TriageInput | str | Mapping[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> Generator[str | AskResponse, None, None]:
        item = triage_input(input)
        events = ask_events(
            self.triage,
            self.sessions,
            question=item.question,
            source=item.source,
            department=item.department,
            asker=item.asker,
        )
        for name, payload in events:
            if name == "delta":
                yield str(payload["text"])
            elif name == "done":
                yield AskResponse.model_validate(payload)

    async def astream(  # type: ignore[override]  # text deltas, then the final AskResponse
        self, input: TriageInput | str | Mapping[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[str | AskResponse]:
        # The pipeline is synchronous (embedding, search, LLM stream, database): each step runs in a worker
        # thread, so the event loop gets every delta as soon as the pipeline has it.
        parts = self.stream(input, config, **kwargs)
        try:
            while (part := await run_in_executor(None, next, parts, None)) is not None:
                yield part
        finally:
            await run_in_executor(None, parts.close)


@dataclass
class LocalNemawashi:
    """The clients and pipeline opened in this process, and the LangChain components over them."""

    settings: Settings
    clients: Clients
    triage: Triage

    def retriever(self, **fields: Any) -> KnowledgeBaseRetriever:
        return KnowledgeBaseRetriever.from_settings(self.settings, self.clients.knowledge, **fields)

    def runnable(self) -> TriageRunnable:
        return TriageRunnable(self.triage, self.clients.sessionmaker)

    def embeddings(self) -> NemawashiEmbeddings:
        return NemawashiEmbeddings(self.clients.knowledge.store.embedder)


@contextmanager
def open_local(settings: Settings | None = None, *, embedder: Embedder | None = None) -> Iterator[LocalNemawashi]:
    """nemawashi in this process, configured like the server (NEMAWASHI_* settings); closed on the way out.

    The knowledge base must be indexed (`nemawashi ingest`, or a server's first start on the same data dir)."""
    settings = settings or Settings()
    opened = open_clients(settings, embedder=embedder)
    try:
        if not opened.knowledge.store.exists():
            raise NotReady("the knowledge base is not indexed yet: run `nemawashi ingest`")
        opened.knowledge.refresh()
        yield LocalNemawashi(settings, opened, build_triage(settings, opened))
    finally:
        opened.close()


# --- over HTTP --------------------------------------------------------------------------------------------------


def _headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _raise_for(response: httpx.Response) -> None:
    """A NemawashiError with the server's message and status, for any answer but 2xx."""
    if response.is_success:
        return
    try:
        message = str(response.json().get("error") or response.text)
    except ValueError:
        message = response.text[:300] or response.reason_phrase
    raise NemawashiError(f"nemawashi answered {response.status_code}: {message}", status_code=response.status_code)


class RemoteKnowledgeBaseRetriever(BaseRetriever):
    """KnowledgeBaseRetriever for teams that do not import our package: POST /v1/search on a running nemawashi."""

    base_url: str = Field(description="The service's root, e.g. http://nemawashi.intra:8000")
    token: str | None = Field(default=None, description="Sent as Authorization: Bearer, when the gateway wants one.")
    k: int = Field(default=5, ge=1, le=50)
    types: list[DocTypeName] | None = None
    lang: Lang | None = None
    timeout_s: float = 30.0

    def _body(self, query: str, k: int | None, types: Sequence[str] | None, lang: str | None) -> dict[str, Any]:
        chosen_types, chosen_lang = _filters(types if types is not None else self.types, lang or self.lang)
        return {"query": query, "k": k or self.k, "types": chosen_types, "lang": chosen_lang}

    def _documents(self, response: httpx.Response) -> list[Document]:
        _raise_for(response)
        return [hit_document(Hit.model_validate(h)) for h in response.json()["hits"]]

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        k: int | None = None,
        types: Sequence[str] | None = None,
        lang: str | None = None,
    ) -> list[Document]:
        url = self.base_url.rstrip("/") + "/v1/search"
        body = self._body(query, k, types, lang)
        return self._documents(httpx.post(url, json=body, headers=_headers(self.token), timeout=self.timeout_s))

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,
        k: int | None = None,
        types: Sequence[str] | None = None,
        lang: str | None = None,
    ) -> list[Document]:
        url = self.base_url.rstrip("/") + "/v1/search"
        async with httpx.AsyncClient(timeout=self.timeout_s, headers=_headers(self.token)) as client:
            return self._documents(await client.post(url, json=self._body(query, k, types, lang)))


class RemoteTriageRunnable(Runnable[TriageInput | str | Mapping[str, Any], AskResponse]):
    """TriageRunnable over HTTP: POST /v1/ask on a running nemawashi (stored there as source "langchain")."""

    def __init__(self, base_url: str, token: str | None = None, *, timeout_s: float = 60.0) -> None:
        self.url = base_url.rstrip("/") + "/v1/ask"
        self.token = token
        self.timeout_s = timeout_s

    def _body(self, value: TriageInput | str | Mapping[str, Any], *, stream: bool) -> dict[str, Any]:
        item = triage_input(value)
        if item.asker:
            raise BadInput("asker cannot be claimed over HTTP: the server takes it from the SSO proxy")
        source = "survey" if item.survey else "langchain"
        return {"question": item.question, "department": item.department, "source": source, "stream": stream}

    def invoke(
        self, input: TriageInput | str | Mapping[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> AskResponse:
        return self._call_with_config(self._post, input, config, run_type="chain")

    def _post(self, value: TriageInput | str | Mapping[str, Any]) -> AskResponse:
        response = httpx.post(
            self.url, json=self._body(value, stream=False), headers=_headers(self.token), timeout=self.timeout_s
        )
        _raise_for(response)
        return AskResponse.model_validate(response.json())

    async def ainvoke(
        self, input: TriageInput | str | Mapping[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> AskResponse:
        async with httpx.AsyncClient(timeout=self.timeout_s, headers=_headers(self.token)) as client:
            response = await client.post(self.url, json=self._body(input, stream=False))
        _raise_for(response)
        return AskResponse.model_validate(response.json())

    def stream(  # type: ignore[override]  # text deltas, then the final AskResponse
        self, input: TriageInput | str | Mapping[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[str | AskResponse]:
        body = self._body(input, stream=True)
        with httpx.stream("POST", self.url, json=body, headers=_headers(self.token), timeout=self.timeout_s) as resp:
            if not resp.is_success:
                resp.read()
                _raise_for(resp)
            yield from _sse_outputs(resp.iter_lines())

    async def astream(  # type: ignore[override]
        self, input: TriageInput | str | Mapping[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[str | AskResponse]:
        body = self._body(input, stream=True)
        async with (
            httpx.AsyncClient(timeout=self.timeout_s, headers=_headers(self.token)) as client,
            client.stream("POST", self.url, json=body) as resp,
        ):
            if not resp.is_success:
                await resp.aread()
                _raise_for(resp)
            event = ""
            async for line in resp.aiter_lines():
                event, output = _sse_line(event, line)
                if output is not None:
                    yield output


def _sse_outputs(lines: Iterator[str]) -> Iterator[str | AskResponse]:
    event = ""
    for line in lines:
        event, output = _sse_line(event, line)
        if output is not None:
            yield output


def _sse_line(event: str, line: str) -> tuple[str, str | AskResponse | None]:
    """The event name carried forward, and what a `data:` line of /v1/ask's stream means to the caller."""
    if line.startswith("event:"):
        return line.removeprefix("event:").strip(), None
    if not line.startswith("data:"):
        return ("" if not line else event), None
    payload = json.loads(line.removeprefix("data:").strip())
    if event == "delta":
        return event, str(payload["text"])
    if event == "done":
        return event, AskResponse.model_validate(payload)
    if event == "error":
        raise NemawashiError(f"nemawashi stopped the answer: {payload.get('error')}", status_code=503)
    return event, None
