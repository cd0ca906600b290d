"""The `clinqa` command line: index build, serve, ask, search, config show, keys.

Errors print one readable line to stderr and exit non-zero; `--json` prints exactly the API's body.
"""

from __future__ import annotations

import json
import shlex
import sys
import uuid
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.table import Table

from app.config import Settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="clinqa: clinical QA with verified citations.")
index_app = typer.Typer(no_args_is_help=True, help="Build and inspect index versions.")
config_app = typer.Typer(no_args_is_help=True, help="Show configuration.")
app.add_typer(index_app, name="index")
app.add_typer(config_app, name="config")
eval_app = typer.Typer(no_args_is_help=True, help="Evaluate retrieval on shared datasets or your own collection.")
app.add_typer(eval_app, name="eval")
keys_app = typer.Typer(no_args_is_help=True, help="Create and list API keys (only their hashes are stored).")
app.add_typer(keys_app, name="keys")
export_app = typer.Typer(no_args_is_help=True, help="Export models for faster CPU inference.")
app.add_typer(export_app, name="export")

S = TypeVar("S", bound=BaseModel)

out = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise fail(f"invalid setting {where}: {first['msg']} (check CLINQA_* environment variables)", 2) from exc


def _setup_logging(settings: Settings, quiet: bool = True) -> None:
    from app.logs import configure_logging

    # Interactive commands keep stderr for their own output; JSON logs only when serving.
    level = "WARNING" if quiet else settings.log.level
    configure_logging(
        settings.log.model_copy(update={"level": level, "json_format": not quiet and settings.log.json_format})
    )


@config_app.command("show")
def config_show() -> None:
    """Print the effective settings (defaults + CLINQA_* environment) as JSON."""
    settings = load_settings()
    print(settings.model_dump_json(indent=2))


@export_app.command("onnx")
def export_onnx_command(
    model_dir: Annotated[Path, typer.Argument(help="A sentence-transformers model folder (cross-encoder or encoder).")],
    int8: Annotated[bool, typer.Option("--int8", help="Also write the int8 (dynamically quantised) model.")] = False,
) -> None:
    """Export MODEL_DIR to ONNX under MODEL_DIR/onnx/ (reused while the model is unchanged)."""
    from app.pipeline.onnx import OnnxUnavailableError, export_onnx

    if not model_dir.is_dir():
        raise fail(f"{model_dir} is not a directory")
    try:
        path = export_onnx(model_dir, int8=int8)
    except OnnxUnavailableError as exc:
        raise fail(str(exc)) from exc
    except Exception as exc:  # torch.onnx / transformers errors: one readable line
        raise fail(f"cannot export {model_dir}: {exc.__class__.__name__}: {exc}") from exc
    out.print(f"wrote {path}", highlight=False, soft_wrap=True)


def _keys_file(path: Path | None) -> Path:
    chosen = path or load_settings().auth.keys_file
    if chosen is None:
        raise fail("no keys file: pass --file PATH or set CLINQA_AUTH__KEYS_FILE", 2)
    return chosen


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="Who the key is for (letters, digits, '.', '_', '-'), e.g. ward-7.")],
    admin: Annotated[bool, typer.Option("--admin", help="An admin key: may also call /v1/admin/*.")] = False,
    file: Annotated[
        Path | None, typer.Option("--file", help="Keys file to add to (default auth.keys_file); created mode 0600.")
    ] = None,
    rate_limit: Annotated[
        int | None,
        typer.Option("--rate-limit", min=1, max=1_000_000, help="Requests per minute for this key (default: auth's)."),
    ] = None,
) -> None:
    """Generate a key, print it once on stdout, and add only its hash to the keys file."""
    from app.api.keys import DuplicateKeyNameError, KeyFileError, add_key, generate_key, hash_key
    from app.config import ApiKeyEntry

    path = _keys_file(file)
    key = generate_key()
    try:
        entry = ApiKeyEntry(
            name=name, hash=hash_key(key), role="admin" if admin else "user", rate_limit_per_minute=rate_limit
        )
    except ValidationError as exc:
        raise fail(f"invalid key name {name!r}: use 1 to 64 letters, digits, '.', '_' or '-'", 2) from exc
    try:
        add_key(path, entry)
    except DuplicateKeyNameError as exc:
        raise fail(str(exc), 2) from exc
    except (KeyFileError, OSError) as exc:
        raise fail(str(exc)) from exc
    print(key)
    err.print(f"created {entry.role} key {name!r} in {path}; shown only this once", highlight=False, soft_wrap=True)


@keys_app.command("hash")
def keys_hash() -> None:
    """Read a key from stdin and print its `sha256:` hash, for an entry in CLINQA_AUTH__KEYS."""
    from app.api.keys import hash_key

    key = sys.stdin.read().strip()
    if not key or any(c.isspace() for c in key):
        raise fail('expected one key on stdin, e.g. `printf %s "$KEY" | clinqa keys hash`', 2)
    print(hash_key(key))


@keys_app.command("list")
def keys_list(
    file: Annotated[
        Path | None, typer.Option("--file", help="Keys file (default: CLINQA_AUTH__KEYS and auth.keys_file).")
    ] = None,
) -> None:
    """List key names, roles and rate limits (never keys or hashes)."""
    from app.api.keys import KeyFileError, configured_keys, read_keys_file

    settings = load_settings()
    try:
        entries = read_keys_file(file) if file else configured_keys(settings.auth)
    except KeyFileError as exc:
        raise fail(str(exc)) from exc
    if not entries:
        err.print("no API keys configured: the server is open (developer mode)", highlight=False)
        return
    table = Table("name", "role", "per minute", "burst")
    for e in entries:
        per_minute = e.rate_limit_per_minute or settings.auth.rate_limit_per_minute
        table.add_row(e.name, e.role, str(per_minute), str(e.rate_limit_burst or settings.auth.rate_limit_burst))
    out.print(table)


def _with_options(section: S, **options: object) -> S:
    """A settings section with the command-line options that were given, validated like the rest."""
    given = {k: v for k, v in options.items() if v is not None}
    try:
        return section.model_validate({**section.model_dump(), **given})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise fail(f"invalid option --{str(first['loc'][0]).replace('_', '-')}: {first['msg']}", 2) from exc


@index_app.command("build")
def index_build(
    corpus: Annotated[list[Path] | None, typer.Option("--corpus", help="Corpus directory (repeatable).")] = None,
    vocabulary: Annotated[
        list[Path] | None,
        typer.Option(
            "--vocabulary",
            help="Concept vocabulary: clinqa YAML, OBO Graph JSON or a UMLS RRF folder (repeatable; merged).",
        ),
    ] = None,
    mappings: Annotated[
        list[Path] | None, typer.Option("--mappings", help="SSSOM mapping table joining vocabularies (repeatable).")
    ] = None,
    abbreviations: Annotated[
        Path | None, typer.Option(help="Abbreviation inventory folder (Wikipedia list and/or ADAM).")
    ] = None,
    no_vocabulary: Annotated[bool, typer.Option("--no-vocabulary", help="Build without concepts.")] = False,
    root: Annotated[Path | None, typer.Option(help="Index root directory.")] = None,
    device: Annotated[str | None, typer.Option(help="Embedding device: cpu, cuda.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Embedding batch size.", min=1, max=4096)] = None,
    precision: Annotated[str | None, typer.Option(help="Encoder precision: fp32, or fp16/bf16 on CUDA.")] = None,
    activate: Annotated[bool, typer.Option(help="Make the new version current.")] = True,
    full: Annotated[
        bool, typer.Option("--full", help="Re-embed everything instead of reusing unchanged documents.")
    ] = False,
    report_file: Annotated[Path | None, typer.Option("--report", help="Also write the build report as JSON.")] = None,
) -> None:
    """Build a new index version from corpus directories and make it current.

    Incremental by default: documents unchanged since the current version keep their chunks and
    embeddings; only new or changed documents are embedded, and deleted ones drop out.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from indexer.build import BuildError, build_index
    from indexer.dense import EncoderLoadError
    from knowledge.vocabulary import VocabularyError

    base = load_settings()
    corpus_settings = base.corpus.model_copy(
        update={
            **({"paths": corpus} if corpus else {}),
            **({"vocabulary": vocabulary[0], "extra_vocabularies": vocabulary[1:]} if vocabulary else {}),
            **({"mappings": mappings} if mappings else {}),
            **({"abbreviations": abbreviations} if abbreviations else {}),
            **({"vocabulary": None} if no_vocabulary else {}),
        }
    )
    settings = base.model_copy(
        update={
            "corpus": corpus_settings,
            **({"index": base.index.model_copy(update={"root": root})} if root else {}),
            "encoder": _with_options(base.encoder, device=device, batch_size=batch_size, precision=precision),
        }
    )
    _setup_logging(settings)
    columns = (TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=False) as progress:
        tasks: dict[str, int] = {}

        def hook(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.advance(tasks[stage], done)

        try:
            report = build_index(settings, progress=hook, activate_version=activate, incremental=not full)
        except (BuildError, VocabularyError, EncoderLoadError, OSError) as exc:
            raise fail(f"index build failed, nothing activated: {exc}") from exc

    table = Table(title=f"index {report.version}" + (" (current)" if activate else ""), show_header=False)
    for label, value in [
        ("documents", f"{report.documents}"),
        ("chunks", f"{report.chunks} ({report.embedded} embedded, {report.chunks - report.embedded} reused)"),
        ("reused from", report.previous_version or "- (full build)"),
        ("concepts / relations", f"{report.concepts} / {report.relations}"),
        ("time", f"{report.seconds:.1f} s ({report.chunks_per_s:.1f} chunks/s)"),
        ("peak memory", f"{report.peak_memory_mb:.0f} MB"),
        ("stage times", ", ".join(f"{k} {v:.1f}s" for k, v in report.timings_s.items())),
        ("chunks over token limit", f"{len(report.over_token_limit)}"),
        ("skipped files", f"{len(report.skipped)}"),
        ("path", str(report.path)),
    ]:
        table.add_row(label, value)
    out.print(table)
    if report_file:
        report_file.write_text(json.dumps(report.as_dict(), indent=2), encoding="utf-8")
    for s in report.skipped:
        err.print(f"[yellow]skipped[/] {s.path}: {s.reason}", highlight=False)


@index_app.command("list")
def index_list(root: Annotated[Path | None, typer.Option(help="Index root directory.")] = None) -> None:
    """List index versions, marking the current one."""
    from indexer.store import CURRENT_LINK, list_versions, read_manifest

    settings = load_settings()
    root = root or settings.index.root
    current = (root / CURRENT_LINK).resolve().name if (root / CURRENT_LINK).exists() else None
    versions = list_versions(root)
    if not versions:
        raise fail(f"no index versions in {root}; run `clinqa index build`")
    table = Table("current", "version", "created (UTC)", "documents", "chunks")
    table.columns[1].no_wrap = True
    for v in versions:
        m = read_manifest(root / v)
        created = m.created_at[:16].replace("T", " ")
        table.add_row("*" if v == current else "", v, created, str(m.counts["documents"]), str(m.counts["chunks"]))
    out.print(table)


def _index_root(root: Path | None) -> Path:
    return root or load_settings().index.root


@index_app.command("verify")
def index_verify(
    version: Annotated[str | None, typer.Argument(help="Version to check (default: current).")] = None,
    root: Annotated[Path | None, typer.Option(help="Index root directory.")] = None,
) -> None:
    """Read a version back the way the server does and check its consistency."""
    from indexer.build import verify_version
    from indexer.store import IndexUnavailableError, read_manifest, resolve_version

    try:
        path = resolve_version(_index_root(root), version)
        verify_version(path)
    except IndexUnavailableError as exc:
        raise fail(f"verify failed: {exc}") from exc
    m = read_manifest(path)
    out.print(f"ok: {m.version} ({m.counts['documents']} documents, {m.counts['chunks']} chunks)", highlight=False)


@index_app.command("activate")
def index_activate(
    version: Annotated[str, typer.Argument(help="Version to make current.")],
    root: Annotated[Path | None, typer.Option(help="Index root directory.")] = None,
) -> None:
    """Verify a version and make it current (atomically). Running servers pick it up on reload."""
    from indexer.build import verify_version
    from indexer.store import IndexUnavailableError, activate, resolve_version

    index_root = _index_root(root)
    try:
        verify_version(resolve_version(index_root, version))
        activate(index_root, version)
    except IndexUnavailableError as exc:
        raise fail(f"not activated: {exc}") from exc
    out.print(f"current -> {version}", highlight=False)


@index_app.command("rollback")
def index_rollback(root: Annotated[Path | None, typer.Option(help="Index root directory.")] = None) -> None:
    """Make the previously active version current again."""
    from indexer.build import verify_version
    from indexer.store import IndexUnavailableError, activate, current_version, previous_active, resolve_version

    index_root = _index_root(root)
    target = previous_active(index_root)
    if target is None:
        raise fail(f"nothing to roll back to in {index_root} (no earlier active version left)")
    try:
        verify_version(resolve_version(index_root, target))
    except IndexUnavailableError as exc:
        raise fail(f"not rolled back: {exc}") from exc
    before = current_version(index_root)
    activate(index_root, target)
    out.print(f"current: {before} -> {target}", highlight=False)


@index_app.command("gc")
def index_gc(
    keep: Annotated[int, typer.Option(min=1, help="Keep this many most recent versions.")] = 3,
    root: Annotated[Path | None, typer.Option(help="Index root directory.")] = None,
) -> None:
    """Delete old versions (never the current one or the rollback target) and dead temporaries."""
    from indexer.store import current_version, list_versions, previous_active, remove_stale_temporaries, remove_version

    index_root = _index_root(root)
    protected = {current_version(index_root), previous_active(index_root)}
    versions = list_versions(index_root)
    doomed = [v for v in versions[: max(0, len(versions) - keep)] if v not in protected]
    for v in doomed:
        remove_version(index_root, v)
    leftovers = remove_stale_temporaries(index_root)
    out.print(
        f"removed {len(doomed)} version(s){': ' + ', '.join(doomed) if doomed else ''}; "
        f"{len(leftovers)} temporary folder(s)",
        highlight=False,
    )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
) -> None:
    """Serve the HTTP API, its OpenAPI docs (/docs) and the answer page (/)."""
    import uvicorn

    from app.api.keys import KeyFileError
    from app.logs import configure_logging
    from app.main import create_app

    settings = load_settings()
    api = settings.api.model_copy(update={k: v for k, v in {"host": host, "port": port}.items() if v is not None})
    settings = settings.model_copy(update={"api": api})
    configure_logging(settings.log)
    try:
        application = create_app(settings)
    except KeyFileError as exc:
        raise fail(f"not serving: {exc}") from exc
    err.print(f"clinqa serving on http://{api.host}:{api.port}  (docs: /docs)", highlight=False)
    uvicorn.run(
        application,
        host=api.host,
        port=api.port,
        log_config=None,
        access_log=False,
        timeout_keep_alive=api.keep_alive_s,
    )


def _pipeline(settings: Settings):
    from app.pipeline.runner import Pipeline
    from indexer.dense import EncoderLoadError
    from indexer.store import IndexUnavailableError

    try:
        return Pipeline.load(settings)
    except (IndexUnavailableError, EncoderLoadError) as exc:
        raise fail(str(exc)) from exc


def _validate_text(text: str, field: str, settings: Settings) -> str:
    text = text.strip()
    if not text:
        raise fail(f"{field} is empty", 2)
    if len(text) > settings.api.max_question_chars:
        raise fail(f"{field} is longer than {settings.api.max_question_chars} characters ({len(text)})", 2)
    return text


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question, in plain words.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON response body.")] = False,
) -> None:
    """Answer a question from the current index, with verified citations."""
    from app.api.schemas import ask_response

    settings = load_settings()
    _setup_logging(settings)
    question = _validate_text(question, "question", settings)
    pipeline = _pipeline(settings)
    body = ask_response(pipeline.ask(question), uuid.uuid4().hex, pipeline.index.documents)
    if as_json:
        print(body.model_dump_json(indent=2))
        return
    _print_answer(body)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="Search text.")],
    top_k: Annotated[int, typer.Option("--top-k", min=1, help="How many chunks.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON response body.")] = False,
) -> None:
    """Hybrid search (BM25 + dense + concepts, fused) over the current index."""
    from app.api.schemas import search_response

    settings = load_settings()
    _setup_logging(settings)
    query = _validate_text(query, "query", settings)
    if top_k > settings.api.max_top_k:
        raise fail(f"--top-k must be <= {settings.api.max_top_k}", 2)
    pipeline = _pipeline(settings)
    body = search_response(pipeline.search(query, top_k=top_k), uuid.uuid4().hex, pipeline.index.documents)
    if as_json:
        print(body.model_dump_json(indent=2))
        return
    table = Table("#", "score", "channels", "section", title=f"search: {body.query.rewritten}")
    for i, r in enumerate(body.results, 1):
        channels = " ".join(f"{k}#{v}" for k, v in r.ranks.items())
        table.add_row(str(i), f"{r.score:.4f}", channels, r.breadcrumb)
    out.print(table)
    out.print(f"[dim]index {body.index_version} · {body.timings_ms.get('total', 0):.0f} ms[/]")


@app.command()
def concepts(
    term: Annotated[str, typer.Argument(help="A name, synonym or abbreviation, e.g. afib.")],
    limit: Annotated[int, typer.Option(min=1, max=100, help="Most concepts to list.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON response body.")] = False,
) -> None:
    """Look up concepts in the current index's knowledge graph (GET /v1/concepts?q=TERM)."""
    from app.api.routes.concepts import ConceptHit
    from indexer.store import IndexUnavailableError, read_graph, resolve_version

    settings = load_settings()
    term = _validate_text(term, "term", settings)
    try:
        graph = read_graph(resolve_version(settings.index.root, settings.index.version))
    except IndexUnavailableError as exc:
        raise fail(str(exc)) from exc
    hits = [
        ConceptHit(
            id=c.id,
            name=c.name,
            semantic_types=c.semantic_types,
            matched=form,
            via=how,
            chunks=len(graph.postings(c.id)),
        )
        for c, form, how in graph.lookup(term, limit)
    ]
    if as_json:
        print(json.dumps([h.model_dump(mode="json") for h in hits], indent=2))
        return
    if not hits:
        raise fail(f"no concept matches {term!r}")
    table = Table("id", "name", "matched", "via", "types", "chunks", title=f"concepts: {term}")
    for h in hits:
        table.add_row(h.id, h.name, h.matched, h.via, " ".join(h.semantic_types), str(h.chunks))
    out.print(table)
    top = graph.concept(hits[0].id)
    if top is not None:
        related = [
            f"{rel} {'->' if d == 'out' else '<-'} {graph.concept(o).name}"
            for d, rel, o in graph.neighbours(top.id)[:8]
            if graph.concept(o)
        ]
        if related:
            out.print(f"[bold]{top.name}[/]: " + "; ".join(related), highlight=False)


def _collection(
    dataset: str | None,
    split: str,
    sample_files: int,
    corpus: Path | None,
    queries: Path | None,
    qrels: Path | None,
    data_dir: Path,
):
    """The evaluation collection the options name: the user's files, or PubMedQA / MedQuAD from `data_dir`."""
    from app.eval.datasets import from_files, medquad, pubmedqa

    if corpus or queries or qrels:
        if not (corpus and queries and qrels):
            raise fail("--corpus, --queries and --qrels go together", 2)
        return from_files(corpus, queries, qrels)
    if dataset == "pubmedqa":
        return pubmedqa(data_dir, split)
    if dataset == "medquad":
        return medquad(data_dir, split, sample_files)
    raise fail("choose --dataset pubmedqa|medquad, or give --corpus/--queries/--qrels", 2)


@eval_app.command("retrieval")
def eval_retrieval(
    dataset: Annotated[str | None, typer.Option(help="pubmedqa or medquad (from --data).")] = None,
    split: Annotated[str, typer.Option(help="test or train.")] = "test",
    sample_files: Annotated[int, typer.Option(help="MedQuAD: use a fixed sample of N files (0 = all).")] = 0,
    corpus: Annotated[Path | None, typer.Option(help='Your documents, JSONL {"id","title","text"}.')] = None,
    queries: Annotated[Path | None, typer.Option(help='Your queries, JSONL {"id","text"}.')] = None,
    qrels: Annotated[Path | None, typer.Option(help="TREC qrels: qid 0 docid grade.")] = None,
    vocabulary: Annotated[
        list[Path] | None, typer.Option("--vocabulary", help="Concept vocabulary (repeatable; as in index build).")
    ] = None,
    mappings: Annotated[list[Path] | None, typer.Option("--mappings", help="SSSOM mapping table (repeatable).")] = None,
    abbreviations: Annotated[Path | None, typer.Option(help="Abbreviation inventory folder.")] = None,
    reranker: Annotated[
        str | None, typer.Option(help="Cross-encoder for the hybrid+rerank row (path or hub id; default rerank.model).")
    ] = None,
    rerank_top: Annotated[int | None, typer.Option(help="Hybrid hits the cross-encoder rescores.", min=1)] = None,
    data: Annotated[
        Path | None, typer.Option(help="Shared data folder (default $CLINQA_DATA or ../shared/data).")
    ] = None,
    work: Annotated[Path, typer.Option(help="Where evaluation corpora and indexes are kept.")] = Path(".cache/eval"),
    out_dir: Annotated[Path, typer.Option("--out", help="Where the table, JSON and TREC runs go.")] = Path(
        "docs/results"
    ),
) -> None:
    """Recall@1/5/10/50, MRR@10 and nDCG@10 for bm25, dense, concept and fused configurations."""
    import os

    from app.eval.datasets import DatasetError
    from app.eval.retrieval import evaluate_collection, markdown_table, prepare_index, write_outputs
    from app.pipeline.rerank import RerankerLoadError
    from indexer.build import BuildError
    from knowledge.vocabulary import VocabularyError

    settings = load_settings()
    # an evaluation measures the reranker it was given: one that cannot load is an error, not a degraded run
    settings = settings.model_copy(
        update={"rerank": _with_options(settings.rerank, model=reranker, top_n=rerank_top, required=True)}
    )
    _setup_logging(settings)
    data_dir = data or Path(os.environ.get("CLINQA_DATA", "../shared/data"))
    try:
        collection = _collection(dataset, split, sample_files, corpus, queries, qrels, data_dir)
        run_settings = prepare_index(collection, work, settings, vocabulary or [], mappings or [], abbreviations)
        with err.status(
            f"indexing {len(collection.documents)} documents and running {len(collection.queries)} queries"
        ):
            result, report = evaluate_collection(collection, run_settings)
    except (DatasetError, BuildError, VocabularyError, RerankerLoadError, OSError) as exc:
        raise fail(str(exc)) from exc
    out.print(markdown_table(result), highlight=False)
    command = "clinqa " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    for path in write_outputs(result, out_dir, command)[:4]:
        err.print(f"wrote {path}", highlight=False)
    err.print(f"index: {report.chunks} chunks, {report.embedded} embedded this run", highlight=False)


@eval_app.command("citations")
def eval_citations(
    dataset: Annotated[str | None, typer.Option(help="pubmedqa or medquad (from --data).")] = None,
    split: Annotated[str, typer.Option(help="test or train.")] = "test",
    sample_files: Annotated[int, typer.Option(help="MedQuAD: use a fixed sample of N files (0 = all).")] = 0,
    limit: Annotated[int, typer.Option(help="Ask a fixed random sample of N questions (0 = all).")] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the --limit sample.")] = 13,
    corpus: Annotated[Path | None, typer.Option(help='Your documents, JSONL {"id","title","text"}.')] = None,
    queries: Annotated[Path | None, typer.Option(help='Your questions, JSONL {"id","text"}.')] = None,
    qrels: Annotated[Path | None, typer.Option(help="TREC qrels: qid 0 docid grade.")] = None,
    vocabulary: Annotated[
        list[Path] | None, typer.Option("--vocabulary", help="Concept vocabulary (repeatable; as in index build).")
    ] = None,
    mappings: Annotated[list[Path] | None, typer.Option("--mappings", help="SSSOM mapping table (repeatable).")] = None,
    abbreviations: Annotated[Path | None, typer.Option(help="Abbreviation inventory folder.")] = None,
    reranker: Annotated[str | None, typer.Option(help="Cross-encoder for the pipeline (default rerank.model).")] = None,
    data: Annotated[
        Path | None, typer.Option(help="Shared data folder (default $CLINQA_DATA or ../shared/data).")
    ] = None,
    work: Annotated[Path, typer.Option(help="Where evaluation corpora and indexes are kept.")] = Path(".cache/eval"),
    out_dir: Annotated[Path, typer.Option("--out", help="Where the JSON and citations.md go.")] = Path("docs/results"),
) -> None:
    """ALCE citation recall and precision of the answers (judged by the verifier), answer rate, gold citations."""
    import os

    from app.eval.citations import evaluate_collection, summary_table, write_outputs
    from app.eval.datasets import DatasetError
    from app.eval.retrieval import prepare_index
    from app.pipeline.rerank import RerankerLoadError
    from app.pipeline.runner import StageError
    from indexer.build import BuildError
    from indexer.dense import EncoderLoadError
    from indexer.store import IndexUnavailableError
    from knowledge.vocabulary import VocabularyError

    if split not in ("test", "train"):
        raise fail(f"--split must be test or train, got {split!r}", 2)
    if limit < 0 or sample_files < 0:
        raise fail("--limit and --sample-files must be >= 0", 2)
    settings = load_settings()
    settings = settings.model_copy(update={"rerank": _with_options(settings.rerank, model=reranker, required=True)})
    _setup_logging(settings)
    data_dir = data or Path(os.environ.get("CLINQA_DATA", "../shared/data"))
    try:
        collection = _collection(dataset, split, sample_files, corpus, queries, qrels, data_dir)
        run_settings = prepare_index(collection, work, settings, vocabulary or [], mappings or [], abbreviations)
        n = min(limit, len(collection.queries)) if limit else len(collection.queries)
        with err.status(f"indexing {len(collection.documents)} documents and asking {n} questions") as status:
            result, report = evaluate_collection(
                collection,
                run_settings,
                limit,
                seed,
                progress=lambda i, total: status.update(f"asked {i}/{total} questions"),
            )
    except (
        DatasetError,
        BuildError,
        VocabularyError,
        RerankerLoadError,
        EncoderLoadError,
        IndexUnavailableError,
        StageError,
        OSError,
    ) as exc:
        raise fail(str(exc)) from exc
    out.print(summary_table(result))
    command = "clinqa " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    for path in write_outputs(result, out_dir, command):
        err.print(f"wrote {path}", highlight=False)
    err.print(
        f"index: {report.chunks} chunks, {report.embedded} embedded this run; "
        f"{result.questions} questions in {sum(v for k, v in result.seconds.items() if k != 'ask_cpu'):.0f} s",
        highlight=False,
    )


class TrainKind(StrEnum):
    reranker = "reranker"
    encoder = "encoder"


@app.command("train")
def train(
    kind: Annotated[TrainKind, typer.Argument(help="reranker (cross-encoder) or encoder (bi-encoder).")],
    out_dir: Annotated[Path | None, typer.Option("--out", help="Model folder to write (default models/KIND).")] = None,
    dataset: Annotated[
        list[str] | None,
        typer.Option(
            help="Train on a shared dataset's training split: pubmedqa or medquad (repeatable: groups are "
            "pooled). Default: section titles of the current index."
        ),
    ] = None,
    sample_files: Annotated[int, typer.Option(help="MedQuAD: a fixed sample of N files (0 = all), as in eval.")] = 0,
    titles: Annotated[bool, typer.Option("--titles", help="Also use section titles as pseudo-queries.")] = False,
    data: Annotated[
        Path | None, typer.Option(help="Shared data folder (default $CLINQA_DATA or ../shared/data).")
    ] = None,
    work: Annotated[Path, typer.Option(help="Where dataset corpora and indexes are kept (shared with eval).")] = Path(
        ".cache/eval"
    ),
    epochs: Annotated[int | None, typer.Option()] = None,
    negatives: Annotated[int | None, typer.Option()] = None,
    max_groups: Annotated[int | None, typer.Option(help="Use at most N groups per source (0 = all).")] = None,
    max_length: Annotated[
        int | None, typer.Option(help="Tokens per (query, passage) pair, or per text for the encoder.")
    ] = None,
    batch_groups: Annotated[int | None, typer.Option()] = None,
    learning_rate: Annotated[float | None, typer.Option()] = None,
    device: Annotated[str | None, typer.Option(help="cpu or cuda.")] = None,
    seed: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Fine-tune a cross-encoder reranker or the bi-encoder, from the packaged MiniLM weights, on groups mined
    from a corpus: a question, its gold passage and BM25 hard negatives. A new encoder needs an index rebuild."""
    import os

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from app.eval.datasets import DatasetError, medquad, pubmedqa
    from app.eval.retrieval import prepare_index
    from app.train.mining import Miner
    from app.train.models import TrainingError, train_encoder, train_reranker
    from indexer.build import BuildError, build_index
    from indexer.store import IndexUnavailableError, read_index, resolve_version

    out_dir = out_dir or Path("models") / kind.value
    base = load_settings()
    train_settings = _with_options(
        base.train,
        epochs=epochs,
        negatives=negatives,
        max_groups=max_groups,
        max_length=max_length,
        batch_groups=batch_groups,
        learning_rate=learning_rate,
        device=device,
        seed=seed,
    )
    _setup_logging(base)
    data_dir = data or Path(os.environ.get("CLINQA_DATA", "../shared/data"))
    datasets = list(dataset or [])
    unknown = [d for d in datasets if d not in ("pubmedqa", "medquad")]
    if unknown:
        raise fail(f"--dataset must be pubmedqa or medquad, got {unknown[0]!r}", 2)
    groups: list = []
    sources: list[dict] = []
    try:
        with err.status("mining training groups"):
            for name in datasets:
                collection = (
                    pubmedqa(data_dir, "train") if name == "pubmedqa" else medquad(data_dir, "train", sample_files)
                )
                run_settings = prepare_index(collection, work, base, [])
                build_index(run_settings)
                index = read_index(resolve_version(run_settings.index.root))
                gold = {q: [d for d, g in rel.items() if g > 0] for q, rel in collection.qrels.items()}
                miner = Miner(index, train_settings)
                found = miner.from_questions(collection.queries, gold) + (miner.from_titles() if titles else [])
                groups += found
                sources.append(
                    {
                        "dataset": collection.name,
                        "questions": len(collection.queries),
                        "groups": len(found),
                        "notes": collection.notes,
                        "index_version": index.version,
                    }
                )
            if not datasets:
                index = read_index(resolve_version(base.index.root, base.index.version))
                groups = Miner(index, train_settings).from_titles()
                sources.append(
                    {"index_root": str(base.index.root), "index_version": index.version, "groups": len(groups)}
                )
    except (DatasetError, BuildError, IndexUnavailableError, OSError) as exc:
        raise fail(str(exc)) from exc
    err.print(f"{len(groups)} training groups from {sources}", highlight=False)
    columns = (TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    trainer = train_reranker if kind is TrainKind.reranker else train_encoder
    try:
        with Progress(*columns, console=err) as progress:
            task = progress.add_task("training", total=None)

            def hook(done: int, total: int) -> None:
                progress.update(task, total=total, advance=done)

            report = trainer(groups, train_settings, out_dir, data={"sources": sources}, progress=hook)
    except TrainingError as exc:
        raise fail(str(exc)) from exc
    table = Table(title=f"{kind.value} written to {out_dir}", show_header=False)
    for label, value in [
        ("groups", f"{report.groups} ({', '.join(f'{k} {v}' for k, v in report.sources.items())})"),
        ("steps", f"{report.steps} ({train_settings.epochs} epoch(s) of {train_settings.batch_groups} groups)"),
        ("loss", f"{report.loss_first:.3f} -> {report.loss_last:.3f} (first and last tenth of steps)"),
        ("time", f"{report.seconds:.1f} s ({report.pairs_per_s:.1f} texts or pairs/s on {train_settings.device})"),
        ("use it", f"CLINQA_{'RERANK' if kind is TrainKind.reranker else 'ENCODER'}__MODEL={out_dir}"),
    ]:
        table.add_row(label, value)
    out.print(table)


_BADGE = {
    "supported": "[green]✔ supported[/]",
    "partial": "[yellow]~ partial[/]",
    "unsupported": "[red]✘ unsupported[/]",
}


def _print_answer(body) -> None:
    q = body.query
    out.print(f"[bold]Question:[/] {q.original}", highlight=False)
    if q.rewritten != q.original:
        out.print(f"[dim]Rewritten:[/] {q.rewritten}", highlight=False)
    if q.concepts:
        out.print("[dim]Concepts:[/] " + ", ".join(f"{c.name} ({c.id})" for c in q.concepts), highlight=False)
    out.print()
    if body.status == "abstained":
        out.print(f"[bold yellow]Abstained:[/] {body.reason}", highlight=False)
        if body.sources:
            out.print("\n[bold]Closest sources[/]")
            for s in body.sources[:3]:
                out.print(f"  - {s.breadcrumb} ({s.organisation or 'unknown'})", highlight=False)
    else:
        for s in body.sentences:
            refs = "".join(f"[{n}]" for n in s.citations)
            out.print(f"{s.text} [bold]{refs}[/]  {_BADGE[s.support]}", highlight=False)
        out.print(
            "\n"
            + (
                "[green]All sentences verified against their citations.[/]"
                if body.verified
                else f"[yellow]Not fully verified:[/] {body.reason}"
            )
        )
        out.print("\n[bold]Sources[/]")
        for c in body.citations:
            dates = ", ".join(
                x
                for x in [
                    f"published {c.published}" if c.published else "",
                    f"reviewed {c.reviewed}" if c.reviewed else "",
                ]
                if x
            )
            out.print(f"  [{c.number}] {c.breadcrumb} — {c.organisation or 'unknown'}; {dates}", highlight=False)
            if c.url:
                out.print(f"      {c.url}", highlight=False)
            out.print(f'      "{c.quote}" (chars {c.start}-{c.end} of chunk {c.chunk_id})', highlight=False)
    timing = ", ".join(f"{k} {v:.0f}" for k, v in body.timings_ms.items())
    out.print(f"\n[dim]index {body.index_version} · ms: {timing}[/]")
    for note in body.stages:
        out.print(f"[dim]{note.stage}: {note.status} — {note.message}[/]", highlight=False)
    out.print(f"[dim]{body.notice}[/]")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
