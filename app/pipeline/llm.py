"""LLM answer generators: a GGUF model in-process (llama.cpp) or any OpenAI-compatible server.

The model answers in JSON constrained by a schema built per request, so it can only cite the passages
it was given and its output always parses (`answer_schema`):

    {"answerable": bool, "sentences": [{"text": str, "citations": [passage numbers]}, ...]}

The completion's token limit is the schema's worst case (`worst_case_tokens`): every token writes at
least one byte, a string character is at most 6 bytes (a `\\uXXXX` escape) and each structural token
may be followed by one optional space (llama.cpp's JSON-schema grammar allows exactly one). Sentences
are shortened, if need be, so that worst case fits `max_tokens`; a grammar-bounded answer therefore
always completes, even from a random-weight model. Servers whose grammars allow longer runs of
whitespace (llama-server allows a newline and up to 20 indents, vLLM any) could in principle reach the
limit first; the answer then fails to parse and is reported as a `GenerationError`, never returned.

Evidence that does not fit the model's context (prompt + worst-case answer) is dropped lowest rank
first and listed in `Draft.dropped_evidence`.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from app.config import GenerateSettings, PrivacySettings
from app.pipeline.generate import GenerationError
from app.pipeline.redact import IdentifierRedactor
from app.pipeline.terms import QueryTerms
from app.pipeline.types import Draft, DraftSentence, Query, ScoredChunk, SpanRef
from app.prompts import Prompt, load_prompt

__all__ = [
    "PIP_LINE",
    "AnswerStreamParser",
    "ChatBackend",
    "GenerationError",
    "LlamaCppBackend",
    "LlmGenerator",
    "OpenAIBackend",
    "answer_schema",
    "fit_sentence_chars",
    "load_llm_generator",
    "render_evidence",
    "worst_case_tokens",
]

log = logging.getLogger(__name__)

PIP_LINE = "pip install 'clinqa[llm]'"
MAX_CITATIONS = 3
# Worst-case bytes (hence tokens: every token writes at least one byte) per character of a JSON string.
BYTES_PER_CHAR = 6
# Optional whitespace per structural token in llama.cpp's JSON-schema grammar (`space ::= " "?`).
WHITESPACE_PER_SLOT = 1
# Tokens a chat template adds around the prompt (role markers, a default system line); counted on top
# of the prompt itself when checking the context budget.
CHAT_TEMPLATE_TOKENS = 64
# The shortest sentence bound worth generating with; matches the floor of `max_sentence_chars`.
MIN_SENTENCE_CHARS = 20
SCHEMA_NAME = "clinqa_answer"
_HUB_MODEL = re.compile(r"^(?P<repo>[\w.-]+/[\w.-]+)/(?P<file>[^\s]+\.gguf)$", re.IGNORECASE)

Message = dict[str, str]


class ChatBackend(Protocol):
    """A chat model that writes JSON constrained by a schema, whole or as a stream of text deltas."""

    name: str

    def load(self) -> ChatBackend: ...

    def count_tokens(self, text: str) -> int:
        """Tokens `text` takes in the model's context (exact or a conservative estimate)."""
        ...

    def complete(self, messages: list[Message], schema: dict[str, Any], max_tokens: int) -> str: ...

    def stream(self, messages: list[Message], schema: dict[str, Any], max_tokens: int) -> Iterator[str]: ...


# --- the answer's JSON schema and its worst case ---------------------------------------------------


def answer_schema(n_passages: int, max_sentences: int, max_chars: int) -> dict[str, Any]:
    """The JSON schema of an answer citing passages 1..n_passages (and nothing else)."""
    if n_passages < 1:
        raise ValueError(f"an answer schema needs at least one passage, got {n_passages}")
    sentence = {
        "type": "object",
        "properties": {
            "text": {"type": "string", "minLength": 1, "maxLength": max_chars},
            "citations": {
                "type": "array",
                "items": {"type": "integer", "enum": list(range(1, n_passages + 1))},
                "minItems": 1,
                "maxItems": min(MAX_CITATIONS, n_passages),
            },
        },
        "required": ["text", "citations"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {
            "answerable": {"type": "boolean"},
            "sentences": {"type": "array", "items": sentence, "maxItems": max_sentences},
        },
        "required": ["answerable", "sentences"],
        "additionalProperties": False,
    }


def worst_case_tokens(n_passages: int, max_sentences: int, max_chars: int) -> int:
    """Most tokens an answer valid under `answer_schema(...)` can take, end-of-sequence included."""
    cites = min(MAX_CITATIONS, n_passages)
    sentence = {"text": "x" * (max_chars * BYTES_PER_CHAR), "citations": [n_passages] * cites}
    longest = {"answerable": False, "sentences": [sentence] * max_sentences}
    compact = json.dumps(longest, separators=(",", ":"))
    # Whitespace may follow each punctuation mark and each key or scalar value, and precede the object.
    values = 3 + max_sentences * (3 + cites)
    slots = 1 + sum(compact.count(c) for c in "{}[],:") + values
    return len(compact.encode("utf-8")) + WHITESPACE_PER_SLOT * slots + 1


def fit_sentence_chars(n_passages: int, max_sentences: int, max_chars: int, max_tokens: int) -> int:
    """The longest sentence bound (<= max_chars) whose worst-case answer fits in max_tokens; 0 if none."""
    base = worst_case_tokens(n_passages, max_sentences, 0)
    per_char = worst_case_tokens(n_passages, max_sentences, 1) - base
    return max(0, min(max_chars, (max_tokens - base) // per_char))


# --- parsing -------------------------------------------------------------------------------------------


def _clean_text(text: str) -> str:
    # A model (or an unconstrained escape) can write control characters or lone surrogates; neither
    # belongs in an answer, and a lone surrogate cannot even be encoded as UTF-8 later on.
    text = text.encode("utf-8", "replace").decode("utf-8")
    text = "".join(" " if unicodedata.category(c) == "Cc" else c for c in text)
    return " ".join(text.split())


_ParserState = Literal["start", "key", "colon", "value", "array", "items", "done", "stuck"]


class AnswerStreamParser:
    """Incremental reader of the answer JSON: `feed()` returns the objects of the top-level
    "sentences" array that became complete, so each sentence can be shown as soon as it is written."""

    def __init__(self) -> None:
        self.text = ""
        self._pos = 0
        self._state: _ParserState = "start"
        self._key = ""
        self._decoder = json.JSONDecoder(strict=False)

    def feed(self, delta: str) -> list[object]:
        self.text += delta
        items: list[object] = []
        buf = self.text
        while self._state not in ("done", "stuck"):
            i = self._pos
            while i < len(buf) and buf[i] in " \t\r\n":
                i += 1
            if i >= len(buf):
                break
            c = buf[i]
            if self._state == "start":
                self._expect(c == "{", i, "key")
            elif self._state == "key":
                if c == "}":
                    self._state, self._pos = "done", i + 1
                elif c == ",":
                    self._pos = i + 1
                else:
                    decoded = self._decode(buf, i)
                    if decoded is None:
                        break
                    self._key = str(decoded[0])
                    self._state, self._pos = "colon", decoded[1]
            elif self._state == "colon":
                self._expect(c == ":", i, "array" if self._key == "sentences" else "value")
            elif self._state == "array":
                self._expect(c == "[", i, "items")
            elif self._state == "value":
                decoded = self._decode(buf, i)
                if decoded is None:
                    break
                self._state, self._pos = "key", decoded[1]
            elif c == ",":  # between sentences
                self._pos = i + 1
            elif c == "]":  # the end of the sentences
                self._state, self._pos = "key", i + 1
            else:
                decoded = self._decode(buf, i)
                if decoded is None:
                    break
                items.append(decoded[0])
                self._pos = decoded[1]
        return items

    def _expect(self, ok: bool, i: int, next_state: _ParserState) -> None:
        # The final parse reports malformed JSON; the stream just stops yielding.
        self._state, self._pos = (next_state, i + 1) if ok else ("stuck", i)

    def _decode(self, buf: str, i: int) -> tuple[object, int] | None:
        try:
            value, end = self._decoder.raw_decode(buf, i)
        except json.JSONDecodeError:
            return None  # incomplete so far
        if end >= len(buf) and not isinstance(value, dict | list | str):
            return None  # a number or literal at the very end may still grow ("1" -> "12")
        return value, end


class _AnswerReader:
    """Turns the model's JSON into DraftSentences citing the chunks of the passages it was shown."""

    def __init__(self, backend: str, passages: list[ScoredChunk], max_sentences: int, max_chars: int) -> None:
        self.backend = backend
        self.passages = passages
        self.max_sentences = max_sentences
        self.max_chars = max_chars
        self.seen = 0

    def _fail(self, what: str) -> GenerationError:
        return GenerationError(f"{self.backend} backend: the answer does not follow the JSON schema ({what})")

    def sentence(self, item: object) -> DraftSentence | None:
        self.seen += 1
        if self.seen > self.max_sentences:
            raise self._fail(f"more than {self.max_sentences} sentences")
        if not isinstance(item, dict) or set(item) != {"text", "citations"}:
            raise self._fail(f"a sentence must be an object with text and citations, got {str(item)[:80]!r}")
        text, numbers = item["text"], item["citations"]
        if not isinstance(text, str) or len(text) > self.max_chars:
            raise self._fail(f"sentence text must be a string of at most {self.max_chars} characters")
        n = len(self.passages)
        if (
            not isinstance(numbers, list)
            or not 1 <= len(numbers) <= MAX_CITATIONS
            or not all(isinstance(k, int) and not isinstance(k, bool) and 1 <= k <= n for k in numbers)
        ):
            raise self._fail(f"citations must be 1 to {MAX_CITATIONS} passage numbers in 1..{n}, got {numbers!r}")
        text = _clean_text(text)
        if not text:
            return None
        chunks = [self.passages[k - 1].chunk for k in dict.fromkeys(numbers)]
        return DraftSentence(text=text, cites=tuple(SpanRef(chunk_id=c.id, start=0, end=len(c.text)) for c in chunks))

    def answer(self, text: str, max_tokens: int) -> tuple[bool, list[DraftSentence]]:
        try:
            data = json.loads(text, strict=False)
        except json.JSONDecodeError as exc:
            raise GenerationError(
                f"{self.backend} backend: the answer is not valid JSON ({exc}; {max_tokens} tokens were allowed, "
                "was the schema enforced?)"
            ) from exc
        if not isinstance(data, dict) or set(data) != {"answerable", "sentences"}:
            raise self._fail("expected an object with answerable and sentences")
        if not isinstance(data["answerable"], bool) or not isinstance(data["sentences"], list):
            raise self._fail("answerable must be a boolean and sentences a list")
        self.seen = 0
        sentences = [s for s in map(self.sentence, data["sentences"]) if s is not None]
        return data["answerable"], sentences


# --- backends -------------------------------------------------------------------------------------------


class _Deadline:
    """`generate.timeout_s` for one streamed answer, checked between streamed pieces: a running llama.cpp
    evaluation or a blocking HTTP read cannot be interrupted from Python, so the limit can be overrun by one
    token (llama_cpp) or one read of at most the same timeout (openai)."""

    def __init__(self, backend: str, seconds: float) -> None:
        self.backend = backend
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def check(self) -> None:
        if time.monotonic() > self.end:
            raise GenerationError(
                f"{self.backend} backend: timed out after {self.seconds:g} s (CLINQA_GENERATE__TIMEOUT_S)"
            )


class LlamaCppBackend:
    """A GGUF model run in-process by llama-cpp-python; the schema becomes a llama.cpp grammar."""

    name = "llama_cpp"

    def __init__(self, settings: GenerateSettings) -> None:
        self.settings = settings
        self._llm: Any = None
        self._lock = threading.Lock()  # a llama.cpp context serves one generation at a time

    def load(self) -> LlamaCppBackend:
        try:
            import llama_cpp
        except ImportError as exc:
            raise GenerationError(f"the llama_cpp backend needs llama-cpp-python: {PIP_LINE}") from exc
        model = self.settings.model
        if not model:
            raise ValueError("the llama_cpp backend needs a model: set CLINQA_GENERATE__MODEL to a GGUF file path")
        options: dict[str, Any] = {
            "n_ctx": self.settings.context_tokens,
            "n_threads": self.settings.threads,
            "n_gpu_layers": self.settings.gpu_layers,
            "seed": self.settings.seed,
            "verbose": False,
        }
        path = Path(model).expanduser()
        hub = _HUB_MODEL.match(model)
        try:
            if path.is_file():
                self._llm = llama_cpp.Llama(model_path=str(path), **options)
            elif hub and not path.exists():
                self._llm = llama_cpp.Llama.from_pretrained(
                    repo_id=hub.group("repo"), filename=hub.group("file"), **options
                )
            else:
                raise GenerationError(
                    f"llama_cpp backend: model {model!r} is not a GGUF file ({path.resolve()} not found) nor a hub "
                    "id 'owner/repo/file.gguf'; set CLINQA_GENERATE__MODEL"
                )
        except GenerationError:
            raise
        except Exception as exc:  # llama.cpp and the hub raise ValueError, OSError, HTTP errors, ...
            raise GenerationError(f"llama_cpp backend: could not load model {model!r}: {exc}") from exc
        log.info("llm loaded", extra={"backend": self.name, "model": model, "n_ctx": self.settings.context_tokens})
        return self

    @property
    def llm(self) -> Any:
        if self._llm is None:
            raise GenerationError("llama_cpp backend: the model is not loaded (call load() first)")
        return self._llm

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def _request(self, messages: list[Message], schema: dict[str, Any], max_tokens: int, stream: bool) -> Any:
        return self.llm.create_chat_completion(
            messages=messages,
            # llama-cpp-python's form of a JSON-schema response; converted to a grammar in-process
            response_format={"type": "json_object", "schema": schema},
            max_tokens=max_tokens,
            temperature=self.settings.temperature,
            seed=self.settings.seed,
            stream=stream,
        )

    def complete(self, messages: list[Message], schema: dict[str, Any], max_tokens: int) -> str:
        with self._lock:
            try:
                response = self._request(messages, schema, max_tokens, stream=False)
            except Exception as exc:
                raise GenerationError(f"llama_cpp backend: generation failed: {exc}") from exc
        return response["choices"][0]["message"]["content"] or ""

    def stream(self, messages: list[Message], schema: dict[str, Any], max_tokens: int) -> Iterator[str]:
        deadline = _Deadline(self.name, self.settings.timeout_s)  # waiting for the model counts too
        if not self._lock.acquire(timeout=deadline.left()):
            raise GenerationError(
                f"llama_cpp backend: the model stayed busy with other requests for {deadline.seconds:g} s "
                "(CLINQA_GENERATE__TIMEOUT_S)"
            )
        try:
            chunks = self._request(messages, schema, max_tokens, stream=True)
            try:
                for chunk in chunks:
                    deadline.check()
                    content = chunk["choices"][0]["delta"].get("content") if chunk["choices"] else None
                    if content:
                        yield content
            finally:
                if hasattr(chunks, "close"):
                    chunks.close()  # an abandoned generation must not hold the model's context
        except GenerationError:
            raise
        except Exception as exc:
            raise GenerationError(f"llama_cpp backend: generation failed: {exc}") from exc
        finally:
            self._lock.release()


ResponseFormatStyle = Literal["json_schema", "json_object"]


class OpenAIBackend:
    """Any server speaking OpenAI's `/v1/chat/completions` (vLLM, llama.cpp's llama-server,
    llama-cpp-python's server, Ollama, OpenAI), over httpx.

    Constrained output is requested the OpenAI-standard way first:
    `{"type": "json_schema", "json_schema": {"name", "schema", "strict": true}}` (OpenAI, vLLM,
    llama-server, Ollama). llama-cpp-python's server rejects that type (with a 500 naming
    `response_format`) and wants `{"type": "json_object", "schema": ...}` instead; when a server
    rejects the standard form like that, the backend switches to the second form once and keeps it.
    """

    name = "openai"

    def __init__(self, settings: GenerateSettings) -> None:
        self.settings = settings
        self.response_format_style: ResponseFormatStyle = "json_schema"
        self._client: Any = None

    def load(self) -> OpenAIBackend:
        try:
            import httpx
        except ImportError as exc:
            raise GenerationError(f"the openai backend needs httpx: {PIP_LINE}") from exc
        if not self.settings.base_url or not self.settings.model:
            raise ValueError("the openai backend needs CLINQA_GENERATE__BASE_URL and CLINQA_GENERATE__MODEL")
        headers = {"Accept": "application/json"}
        if self.settings.api_key is not None:
            headers["Authorization"] = f"Bearer {self.settings.api_key.get_secret_value()}"
        self._client = httpx.Client(
            base_url=self.settings.base_url.rstrip("/") + "/", timeout=self.settings.timeout_s, headers=headers
        )
        log.info("llm server configured", extra={"backend": self.name, "base_url": self.settings.base_url})
        return self

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def count_tokens(self, text: str) -> int:
        # No standard tokenize endpoint; 3 bytes per token over-counts English for common tokenizers.
        return math.ceil(len(text.encode("utf-8")) / 3)

    def _body(self, messages: list[Message], schema: dict[str, Any], max_tokens: int, stream: bool) -> dict:
        if self.response_format_style == "json_schema":
            response_format: dict[str, Any] = {
                "type": "json_schema",
                "json_schema": {"name": SCHEMA_NAME, "schema": schema, "strict": True},
            }
        else:
            response_format = {"type": "json_object", "schema": schema}
        return {
            "model": self.settings.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": self.settings.temperature,
            "seed": self.settings.seed,
            "stream": stream,
            "response_format": response_format,
        }

    def _send(self, messages: list[Message], schema: dict[str, Any], max_tokens: int, stream: bool) -> Any:
        """POST with retries on timeouts, connection errors and 5xx; returns an open 200 response."""
        import httpx

        if self._client is None:
            raise GenerationError("openai backend: not loaded (call load() first)")
        attempts = self.settings.retries + 1
        attempt = 0
        while True:
            body = self._body(messages, schema, max_tokens, stream)
            try:
                response = self._client.send(
                    self._client.build_request("POST", "chat/completions", json=body), stream=True
                )
            except httpx.TransportError as exc:  # timeouts, refused connections, resets
                cause = f"{type(exc).__name__}: {exc}"
                retryable = True
            else:
                if response.status_code == 200:
                    return response
                detail = response.read().decode("utf-8", "replace")
                response.close()
                if self.response_format_style == "json_schema" and _rejects_response_format(detail):
                    log.info("server wants the json_object response format", extra={"backend": self.name})
                    self.response_format_style = "json_object"
                    continue
                cause = f"HTTP {response.status_code}: {_error_message(detail)}"
                retryable = response.status_code >= 500
            attempt += 1
            if not retryable or attempt >= attempts:
                tries = f" after {attempt} attempts" if attempt > 1 else ""
                raise GenerationError(f"openai backend: {self.settings.base_url} failed{tries}: {cause}")
            time.sleep(min(2.0, 0.25 * 2 ** (attempt - 1)))

    def complete(self, messages: list[Message], schema: dict[str, Any], max_tokens: int) -> str:
        response = self._send(messages, schema, max_tokens, stream=False)
        try:
            data = json.loads(response.read())
            return data["choices"][0]["message"]["content"] or ""
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise GenerationError(f"openai backend: unexpected response from {self.settings.base_url}: {exc}") from exc
        finally:
            response.close()

    def stream(self, messages: list[Message], schema: dict[str, Any], max_tokens: int) -> Iterator[str]:
        import httpx

        deadline = _Deadline(self.name, self.settings.timeout_s)
        response = self._send(messages, schema, max_tokens, stream=True)
        try:
            for line in response.iter_lines():
                deadline.check()
                if not line.startswith("data:"):
                    continue  # blank separators, comments, event names
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                event = json.loads(data)
                if "error" in event:
                    raise GenerationError(f"openai backend: the server failed mid-stream: {event['error']}")
                choices = event.get("choices") or []
                content = (choices[0].get("delta") or {}).get("content") if choices else None
                if content:
                    yield content
        except (httpx.HTTPError, ValueError) as exc:
            raise GenerationError(f"openai backend: the stream from {self.settings.base_url} broke: {exc}") from exc
        finally:
            response.close()


def _rejects_response_format(detail: str) -> bool:
    return "response_format" in detail or "json_schema" in detail


def _error_message(detail: str) -> str:
    try:
        error = json.loads(detail).get("error")
        message = error.get("message") if isinstance(error, dict) else error
    except (ValueError, AttributeError):
        message = None
    return str(message or detail)[:500]


# --- the generator --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    messages: list[Message]
    schema: dict[str, Any]
    max_tokens: int
    reader: _AnswerReader
    dropped: tuple[str, ...]
    redacted: tuple[str, ...]


class LlmGenerator:
    """Answer from the evidence with a language model writing schema-constrained JSON (see module doc)."""

    def __init__(
        self, settings: GenerateSettings, backend: ChatBackend, redactor: IdentifierRedactor | None = None
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.redactor = redactor  # identifiers in the question are replaced before the model sees it
        self.name = backend.name
        self.prompt: Prompt = load_prompt("answer", settings.prompt_version, {"question", "evidence"})
        fitted = fit_sentence_chars(
            settings.evidence_chunks, settings.max_sentences, settings.max_sentence_chars, settings.max_tokens
        )
        if fitted < MIN_SENTENCE_CHARS:
            needed = worst_case_tokens(settings.evidence_chunks, settings.max_sentences, MIN_SENTENCE_CHARS)
            raise ValueError(
                f"max_tokens={settings.max_tokens} leaves {fitted} characters per sentence for "
                f"{settings.max_sentences} sentences (the worst case is {BYTES_PER_CHAR} tokens per character); "
                f"set CLINQA_GENERATE__MAX_TOKENS to at least {needed} or lower CLINQA_GENERATE__MAX_SENTENCES"
            )
        if fitted < settings.max_sentence_chars:
            log.warning(
                "sentences shortened to fit max_tokens",
                extra={"max_sentence_chars": settings.max_sentence_chars, "fitted": fitted},
            )

    def run(self, query: Query, terms: QueryTerms, evidence: list[ScoredChunk]) -> Draft:
        plan = self._plan(query, evidence)
        if plan is None:
            return self._draft(False, [], ())
        text = self.backend.complete(plan.messages, plan.schema, plan.max_tokens)
        answerable, sentences = plan.reader.answer(text, plan.max_tokens)
        return self._draft(answerable, sentences, plan.dropped, plan.redacted)

    def stream(self, query: Query, terms: QueryTerms, evidence: list[ScoredChunk]) -> Iterator[DraftSentence | Draft]:
        plan = self._plan(query, evidence)
        if plan is None:
            yield self._draft(False, [], ())
            return
        parser = AnswerStreamParser()
        for delta in self.backend.stream(plan.messages, plan.schema, plan.max_tokens):
            for item in parser.feed(delta):
                sentence = plan.reader.sentence(item)
                if sentence is not None:
                    yield sentence
        # The whole text is parsed again: it validates what the stream skipped (answerable, the end).
        answerable, sentences = plan.reader.answer(parser.text, plan.max_tokens)
        yield self._draft(answerable, sentences, plan.dropped, plan.redacted)

    def _draft(
        self,
        answerable: bool,
        sentences: list[DraftSentence],
        dropped: tuple[str, ...],
        redacted: tuple[str, ...] = (),
    ) -> Draft:
        return Draft(
            sentences=tuple(sentences),
            generator=self.name,
            prompt=self.prompt.id,
            model=self.settings.model,
            insufficient=not answerable,
            dropped_evidence=dropped,
            redacted=redacted,
        )

    def _plan(self, query: Query, evidence: list[ScoredChunk]) -> _Plan | None:
        """The prompt, schema and token limit for this request, dropping the lowest-ranked passages
        until prompt + worst-case answer fit the context; None when there is no evidence at all."""
        s = self.settings
        passages = list(evidence[: s.evidence_chunks])
        if not passages:
            return None
        dropped: list[str] = []
        question = query.original
        redacted: tuple[str, ...] = ()
        if self.redactor is not None:
            redaction = self.redactor.run(question)
            question, redacted = redaction.text, redaction.kinds
        while True:
            n = len(passages)
            chars = fit_sentence_chars(n, s.max_sentences, s.max_sentence_chars, s.max_tokens)
            answer_tokens = worst_case_tokens(n, s.max_sentences, chars)
            text = self.prompt.render(question=question, evidence=render_evidence(passages))
            needed = self.backend.count_tokens(text) + CHAT_TEMPLATE_TOKENS + answer_tokens
            if needed <= s.context_tokens:
                break
            if n == 1:
                raise GenerationError(
                    f"{self.name} backend: the question and the top passage need {needed} tokens (answer "
                    f"included), more than the model's context of {s.context_tokens}; raise "
                    "CLINQA_GENERATE__CONTEXT_TOKENS (up to the model's window) or lower CLINQA_GENERATE__MAX_TOKENS"
                )
            dropped.insert(0, passages.pop().chunk.id)
        if dropped:
            log.warning("evidence dropped to fit the context", extra={"dropped": dropped, "kept": n})
        return _Plan(
            messages=[{"role": "user", "content": text}],
            schema=answer_schema(n, s.max_sentences, chars),
            max_tokens=answer_tokens,
            reader=_AnswerReader(self.name, passages, s.max_sentences, chars),
            dropped=tuple(dropped),
            redacted=redacted,
        )


def render_evidence(passages: list[ScoredChunk]) -> str:
    """Numbered passages [1]..[n], each a source line and its text quoted line by line ("> "), so a
    passage cannot pass for the prompt's own text."""
    blocks = []
    for number, scored in enumerate(passages, start=1):
        chunk = scored.chunk
        quoted = "\n".join(f"> {line}".rstrip() for line in chunk.text.splitlines() or [""])
        blocks.append(f"[{number}] {chunk.breadcrumb or chunk.doc_id}\n{quoted}")
    return "\n\n".join(blocks)


def load_llm_generator(settings: GenerateSettings, privacy: PrivacySettings | None = None) -> LlmGenerator:
    """Validate the settings, load the chosen backend (the model, or the server's client) and wrap it.
    Identifiers are redacted from the question per `privacy` (default: before external servers only)."""
    backend: ChatBackend
    if settings.backend == "llama_cpp":
        if not settings.model:
            raise ValueError(
                "the llama_cpp backend needs a model: set CLINQA_GENERATE__MODEL to a GGUF file path or a hub "
                "id 'owner/repo/file.gguf'"
            )
        backend = LlamaCppBackend(settings)
    elif settings.backend == "openai":
        if not settings.base_url:
            raise ValueError(
                "the openai backend needs the server's URL: set CLINQA_GENERATE__BASE_URL, e.g. http://127.0.0.1:8080/v1"
            )
        if not settings.base_url.startswith(("http://", "https://")):
            raise ValueError(
                f"CLINQA_GENERATE__BASE_URL must start with http:// or https://, got {settings.base_url!r}"
            )
        if not settings.model:
            raise ValueError(
                "the openai backend needs a model name: set CLINQA_GENERATE__MODEL to one the server knows"
            )
        backend = OpenAIBackend(settings)
    else:
        raise ValueError(
            f"backend {settings.backend!r} is not a language model; set CLINQA_GENERATE__BACKEND to llama_cpp or openai"
        )
    privacy = privacy or PrivacySettings()
    redact = privacy.redact_external_llm if settings.backend == "openai" else privacy.redact_local_llm
    redactor = IdentifierRedactor(privacy) if redact else None
    generator = LlmGenerator(settings, backend, redactor)  # cheap checks (prompt, token bounds) before the heavy load
    backend.load()
    return generator
