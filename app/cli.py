"""The `clinqa` command line: index build, serve, ask, search, config show.

Errors print one readable line to stderr and exit non-zero; `--json` prints exactly the API's body.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from app.config import Settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="clinqa: clinical QA with verified citations.")
index_app = typer.Typer(no_args_is_help=True, help="Build and inspect index versions.")
config_app = typer.Typer(no_args_is_help=True, help="Show configuration.")
app.add_typer(index_app, name="index")
app.add_typer(config_app, name="config")

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


@index_app.command("build")
def index_build(
    corpus: Annotated[list[Path] | None, typer.Option("--corpus", help="Corpus directory (repeatable).")] = None,
    vocabulary: Annotated[Path | None, typer.Option(help="Concept vocabulary YAML.")] = None,
    no_vocabulary: Annotated[bool, typer.Option("--no-vocabulary", help="Build without concepts.")] = False,
    root: Annotated[Path | None, typer.Option(help="Index root directory.")] = None,
    device: Annotated[str | None, typer.Option(help="Embedding device: cpu, cuda.")] = None,
    activate: Annotated[bool, typer.Option(help="Make the new version current.")] = True,
) -> None:
    """Build a new index version from corpus directories and make it current."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from indexer.build import BuildError, build_index
    from indexer.dense import EncoderLoadError
    from knowledge.vocabulary import VocabularyError

    base = load_settings()
    corpus_settings = base.corpus.model_copy(
        update={
            **({"paths": corpus} if corpus else {}),
            **({"vocabulary": vocabulary} if vocabulary else {}),
            **({"vocabulary": None} if no_vocabulary else {}),
        }
    )
    settings = base.model_copy(
        update={
            "corpus": corpus_settings,
            **({"index": base.index.model_copy(update={"root": root})} if root else {}),
            **({"encoder": base.encoder.model_copy(update={"device": device})} if device else {}),
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
            report = build_index(settings, progress=hook, activate_version=activate)
        except (BuildError, VocabularyError, EncoderLoadError, OSError) as exc:
            raise fail(f"index build failed, nothing activated: {exc}") from exc

    table = Table(title=f"index {report.version}" + (" (current)" if activate else ""), show_header=False)
    for label, value in [
        ("documents", f"{report.documents}"),
        ("chunks", f"{report.chunks}"),
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
    table = Table("version", "created", "documents", "chunks", "current")
    for v in versions:
        m = read_manifest(root / v)
        table.add_row(v, m.created_at, str(m.counts["documents"]), str(m.counts["chunks"]), "*" if v == current else "")
    out.print(table)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
) -> None:
    """Serve the HTTP API, its OpenAPI docs (/docs) and the answer page (/)."""
    import uvicorn

    from app.logs import configure_logging
    from app.main import create_app

    settings = load_settings()
    api = settings.api.model_copy(update={k: v for k, v in {"host": host, "port": port}.items() if v is not None})
    settings = settings.model_copy(update={"api": api})
    configure_logging(settings.log)
    err.print(f"clinqa serving on http://{api.host}:{api.port}  (docs: /docs)", highlight=False)
    uvicorn.run(create_app(settings), host=api.host, port=api.port, log_config=None, access_log=False)


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
