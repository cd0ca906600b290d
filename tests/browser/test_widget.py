"""<clinqa-answer> in a real headless Chromium against live servers: answer, citations, states, XSS, embedding."""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from app.config import CorpusSettings, IndexSettings, Settings
from app.main import create_app
from tests.helpers import REPO, uvicorn_thread

pytestmark = pytest.mark.browser

QUESTION = "first line treatment for hypertension in adults"
ABSTAIN_QUESTION = "best splint for a dog's tibia"
XSS_CORPUS = REPO / "tests" / "data" / "xss"
XSS_QUESTION = (
    "Which dressing for a pressure ulcer <img src=x onerror=\"window.__clinqaPwned = 'img'; alert('img')\"> "
    "<script>window.__clinqaPwned = 'script'; alert('script')</script>?"
)
SUPPORTED = "Verified: supported by the cited passage"

# Records, in order, the widget's stage changes, its final state and each sentence as it is added.
TRACE_JS = """
window.__clinqaTrace = [];
customElements.whenDefined("clinqa-answer").then(() => {
  for (const host of document.querySelectorAll("clinqa-answer")) {
    new MutationObserver((records) => {
      for (const r of records) {
        if (r.type === "attributes") {
          const t = r.target;
          if (t.dataset.step) window.__clinqaTrace.push(t.dataset.step + ":" + t.dataset.state);
          else if (t.classList.contains("root")) window.__clinqaTrace.push("root:" + t.dataset.state);
        } else {
          for (const n of r.addedNodes) {
            if (n.classList && n.classList.contains("sentence")) window.__clinqaTrace.push("sentence");
          }
        }
      }
    }).observe(host.shadowRoot, { subtree: true, childList: true, attributes: true, attributeFilter: ["data-state"] });
  }
});
"""

# WCAG contrast ratio of each visible text element against the background it is drawn on.
CONTRAST_JS = """
(host) => {
  const parse = (s) =>
    (s.match(/rgba?\\(([^)]+)\\)/) || [0, "0 0 0 0"])[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
  const channel = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
  const lum = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  const background = (node) => {
    for (let n = node; n; n = n.parentElement || (n.getRootNode && n.getRootNode().host)) {
      const p = parse(getComputedStyle(n).backgroundColor);
      if (p.length < 4 || p[3] > 0) return p;
    }
    return [255, 255, 255];
  };
  const out = [];
  const selectors = [".title", ".notice", ".text", ".badge", ".why", ".cite", ".meta", ".num", "a", "mark", ".primary",
                     ".secondary", "label", "h3"];
  for (const sel of selectors) {
    for (const n of host.shadowRoot.querySelectorAll(sel)) {
      if (n.offsetParent === null || !n.textContent.trim()) continue;
      const a = lum(parse(getComputedStyle(n).color)), b = lum(background(n));
      out.push([sel, n.textContent.trim().slice(0, 30), (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)]);
    }
  }
  return out;
}
"""


@dataclass
class Session:
    """A page in a fresh browser context with what it saw: dialogs, script errors, requests."""

    page: object
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: list[tuple[str, str, dict]] = field(default_factory=list)


@pytest.fixture
def open_page(browser) -> Iterator[Callable[..., Session]]:
    contexts = []

    def _open(**options) -> Session:
        context = browser.new_context(**options)
        context.set_default_timeout(20_000)
        contexts.append(context)
        page = context.new_page()
        session = Session(page)

        def on_dialog(dialog) -> None:
            session.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.on("pageerror", lambda exc: session.errors.append(str(exc)))
        page.on("request", lambda r: session.requests.append((r.method, r.url, r.headers)))
        page.add_init_script(TRACE_JS)
        return session

    yield _open
    for context in contexts:
        context.close()


@pytest.fixture(scope="module")
def api(tiny_settings, tiny_pipeline) -> Iterator[str]:
    with uvicorn_thread(create_app(tiny_settings, pipeline=tiny_pipeline)) as url:
        yield url


def with_cors(settings: Settings, origins: list[str]) -> Settings:
    return settings.model_copy(update={"api": settings.api.model_copy(update={"cors_origins": origins})})


def shot(page, shots: Path, name: str) -> Path:
    path = shots / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def wait_done(page, expected: str) -> None:
    """Wait until the widget leaves the loading state; fail with what it shows if it is not `expected`."""
    page.wait_for_function(
        """() => {
          const host = document.querySelector("clinqa-answer");
          const root = host && host.shadowRoot && host.shadowRoot.querySelector(".root");
          return root && !["idle", "loading"].includes(root.dataset.state);
        }""",
        timeout=30_000,
    )
    state = page.locator("clinqa-answer .root").get_attribute("data-state")
    assert state == expected, page.locator("clinqa-answer .root").inner_text()


def ask_api(base: str, question: str) -> dict:
    response = httpx.post(f"{base}/v1/ask", json={"question": question}, timeout=60)
    response.raise_for_status()
    return response.json()


def active_citation(page) -> str | None:
    return page.evaluate(
        "() => { const a = document.querySelector('clinqa-answer').shadowRoot.activeElement;"
        " return a ? (a.dataset.citation || a.tagName.toLowerCase()) : null; }"
    )


def test_demo_page_streams_a_cited_verified_answer(open_page, api, shots, tiny_pipeline):
    session = open_page(permissions=["clipboard-read", "clipboard-write"])
    page = session.page
    page.goto(f"{api}/")
    assert page.get_by_text("Demonstration only, not for clinical use").count() >= 2  # page banner and widget
    page.get_by_label("Clinical question").fill(QUESTION)
    page.get_by_role("button", name="Ask").click()
    wait_done(page, "answered")

    expected = ask_api(api, QUESTION)
    sentences = page.locator("clinqa-answer .sentence")
    assert sentences.locator(".text").all_text_contents() == [s["text"] for s in expected["sentences"]]
    assert page.get_by_role("img", name=SUPPORTED).count() == len(expected["sentences"]) == 3
    numbers = [n for s in expected["sentences"] for n in s["citations"]]
    assert page.locator("clinqa-answer .cite").all_text_contents() == [f"[{n}]" for n in numbers]
    # sources: cited chunks first with their numbers (citations 1 and 2 quote one chunk), then uncited evidence
    sources = page.locator("clinqa-answer .sources li")
    assert 2 <= sources.count() <= 5
    assert sources.nth(0).locator(".num").inner_text() == "[1][2]"
    assert "Hypertension > Treatment > First-line drugs" in sources.nth(0).inner_text()
    assert sources.nth(0).locator("a").get_attribute("href") == "https://example.org/hypertension"
    assert f"Index {tiny_pipeline.index_version}" in page.locator("clinqa-answer .foot").inner_text()
    assert "checked against the passage" in page.locator("clinqa-answer .root").inner_text()

    # streamed: stages in order, each sentence added before the final state, over /v1/ask/stream only
    trace = page.evaluate("window.__clinqaTrace")
    order = [trace.index(step) for step in ("query:done", "sources:done", "sentence", "root:answered")]
    assert order == sorted(order), trace
    posts = [url for method, url, _ in session.requests if method == "POST"]
    assert posts == [f"{api}/v1/ask/stream"]
    assert page.locator("clinqa-answer .sentences").get_attribute("aria-live") == "polite"

    page.get_by_role("button", name="Copy answer with references").click()
    page.get_by_text("Copied the answer and its references.").wait_for()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith(expected["answer"]) and "References\n[1] Hypertension in adults" in copied
    assert "https://example.org/hypertension" in copied and "not for clinical use" in copied
    shot(page, shots, "01-answer")
    assert session.errors == [] and session.dialogs == []


def test_citation_popover_on_hover_and_keyboard(open_page, api, shots):
    session = open_page()
    page = session.page
    page.goto(f"{api}/")
    # driven by the host page: setting the attribute asks
    page.evaluate(f"document.querySelector('clinqa-answer').setAttribute('question', {QUESTION!r})")
    wait_done(page, "answered")
    citations = {c["number"]: c for c in ask_api(api, QUESTION)["citations"]}
    popover = page.locator("clinqa-answer .popover")
    assert popover.is_hidden()

    page.locator("clinqa-answer .cite").nth(0).hover()
    popover.wait_for(state="visible")
    first = citations[1]
    assert first["start"] > 0  # the quote starts inside its chunk, so the highlight is a real sub-span
    assert popover.locator("mark").text_content() == first["quote"]
    assert popover.locator("blockquote").text_content() == first["chunk_text"]
    text = popover.inner_text()
    assert "[1] Hypertension in adults" in text and first["breadcrumb"] in text
    assert "Test Guideline Group · reviewed 2025-06-01" in text
    assert popover.locator("a").get_attribute("href") == "https://example.org/hypertension"
    assert page.locator("clinqa-answer .cite").nth(0).get_attribute("aria-expanded") == "true"
    shot(page, shots, "02-popover-hover")
    page.mouse.move(2, 2)
    popover.wait_for(state="hidden")

    # keyboard: Tab from the question box reaches the first citation, which opens the popover
    page.get_by_label("Clinical question").focus()
    for _ in range(4):
        page.keyboard.press("Tab")
        if active_citation(page) == "1":
            break
    assert active_citation(page) == "1"
    popover.wait_for(state="visible")
    assert popover.locator("mark").text_content() == first["quote"]
    shot(page, shots, "03-popover-keyboard")
    page.keyboard.press("Tab")  # into the popover: its source link
    assert active_citation(page) == "a"
    page.keyboard.press("Tab")  # on to the next citation
    assert active_citation(page) == "2"
    assert popover.locator("mark").text_content() == citations[2]["quote"]
    page.keyboard.press("Escape")
    popover.wait_for(state="hidden")
    assert active_citation(page) == "2"
    assert page.locator("clinqa-answer .cite").nth(1).get_attribute("aria-expanded") == "false"
    assert session.errors == []


def test_abstained_question_shows_the_abstained_state(open_page, api, shots):
    page = open_page().page
    page.goto(f"{api}/")
    page.get_by_label("Clinical question").fill(ABSTAIN_QUESTION)
    page.keyboard.press("Enter")
    wait_done(page, "abstained")
    box = page.locator("clinqa-answer [data-kind=abstained]")
    text = box.inner_text()
    assert "Not enough evidence in the indexed guidelines" in text
    assert ask_api(api, ABSTAIN_QUESTION)["reason"] in text
    assert page.locator("clinqa-answer .sentence").count() == 0
    assert page.locator("clinqa-answer .sources h3").inner_text() == "Closest sources"
    assert page.locator("clinqa-answer .sources li").count() >= 1
    assert page.get_by_role("button", name="Copy answer with references").is_hidden()
    shot(page, shots, "04-abstained")


def test_fallback_error_and_degraded_states(open_page, api, shots):
    session = open_page()
    page = session.page
    page.goto(f"{api}/")
    widget = page.locator("clinqa-answer")

    # a server (or proxy) without the streaming endpoint: the widget falls back to POST /v1/ask
    page.route("**/v1/ask/stream", lambda route: route.fulfill(status=404, json={"detail": "Not Found"}))
    widget.evaluate(f"(el) => el.ask({QUESTION!r})")
    wait_done(page, "answered")
    posts = [url for method, url, _ in session.requests if method == "POST"]
    assert posts == [f"{api}/v1/ask/stream", f"{api}/v1/ask"]
    assert page.get_by_role("img", name=SUPPORTED).count() == 3

    # the API's error body is shown: a question over the server's length limit (422 from the real server)
    page.unroute("**/v1/ask/stream")
    widget.evaluate("(el) => el.ask('gout '.repeat(500))")
    wait_done(page, "error")
    alert = widget.get_by_role("alert").inner_text()
    assert "question: longer than 2000 characters" in alert and "code validation_error" in alert

    # degraded stages are stated above the answer
    body = ask_api(api, QUESTION)
    body["stages"].append({"stage": "rewrite", "status": "degraded", "message": "LLM rewrite timed out; rules used"})
    stream = f"event: done\ndata: {json.dumps(body)}\n\n"
    page.route(
        "**/v1/ask/stream",
        lambda route: route.fulfill(status=200, headers={"content-type": "text/event-stream"}, body=stream),
    )
    widget.evaluate(f"(el) => el.ask({QUESTION!r})")
    wait_done(page, "answered")
    assert page.locator("clinqa-answer .root").get_attribute("data-degraded") == "true"
    degraded = page.locator("clinqa-answer [data-kind=degraded]").inner_text()
    assert "Answered in degraded mode" in degraded and "rewrite: LLM rewrite timed out; rules used" in degraded
    shot(page, shots, "09-degraded")
    assert session.errors == []


@pytest.fixture(scope="module")
def xss_api(tmp_path_factory) -> Iterator[str]:
    from app.pipeline.runner import Pipeline
    from indexer.build import build_index

    root = tmp_path_factory.mktemp("xss")
    settings = Settings(
        index=IndexSettings(root=root / "indexes"), corpus=CorpusSettings(paths=[XSS_CORPUS], vocabulary=None)
    )
    build_index(settings)
    with uvicorn_thread(create_app(settings, pipeline=Pipeline.load(settings))) as url:
        yield url


def test_corpus_and_question_markup_render_as_inert_text(open_page, xss_api, shots):
    # No CSP here: the page's policy would block inline handlers and hide a widget that injected HTML.
    session = open_page(bypass_csp=True)
    page = session.page
    page.goto(f"{xss_api}/")
    page.get_by_label("Clinical question").fill(XSS_QUESTION)
    page.get_by_role("button", name="Ask").click()
    wait_done(page, "answered")
    expected = ask_api(xss_api, XSS_QUESTION)
    for i in range(page.locator("clinqa-answer .cite").count()):
        page.locator("clinqa-answer .cite").nth(i).hover()  # renders every popover once
        page.locator("clinqa-answer .popover").wait_for(state="visible")
        page.mouse.move(2, 2)  # away, as a reader would: the open popover covers the lines below it
        page.locator("clinqa-answer .popover").wait_for(state="hidden")
    page.locator("clinqa-answer .sources li").first.hover()
    page.wait_for_timeout(300)  # time for any injected onerror or onmouseover to have run

    assert session.dialogs == []
    assert page.evaluate("typeof window.__clinqaPwned") == "undefined"
    found = page.evaluate(
        """() => {
          const roots = [document, document.querySelector("clinqa-answer").shadowRoot];
          const count = (sel) => roots.reduce((n, r) => n + r.querySelectorAll(sel).length, 0);
          return {
            shadowScripts: roots[1].querySelectorAll("script").length,
            img: count("img"),
            jsLinks: count("a[href^='javascript' i]"),
            handlers: count("[onerror], [onmouseover], [onload]"),
            bold: roots[1].querySelectorAll("b").length,
          };
        }"""
    )
    assert found == {"shadowScripts": 0, "img": 0, "jsLinks": 0, "handlers": 0, "bold": 0}
    # the markup is shown literally
    texts = page.locator("clinqa-answer .sentence .text").all_text_contents()
    assert texts == [s["text"] for s in expected["sentences"]]
    assert any("<script>window.__clinqaPwned = 'script'; alert('script')</script>" in t for t in texts)
    assert any("<img src=x onerror=" in t for t in texts)
    assert page.locator("clinqa-answer .asked").text_content() == f"Question: {XSS_QUESTION}"
    page.locator("clinqa-answer .cite").last.focus()
    popover = page.locator("clinqa-answer .popover").inner_text()
    assert "Source address (not a web link): javascript:window.__clinqaPwned = 'url'" in popover
    assert '<a href="javascript:' in popover and "Pressure ulcers <script>" in popover
    shot(page, shots, "05-xss-inert")
    assert session.errors == []


EMBED_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>An intranet page that embeds clinqa</title>
<script type="module" src="{api}/widget/clinqa-answer.js"></script></head>
<body style="font-family: sans-serif; max-width: 40rem; margin: 1rem auto; padding: 0 1rem">
<h1>Guideline portal (another origin)</h1>
<clinqa-answer api-base="{api}" api-key="demo-key" max-sources="3" question="{question}"></clinqa-answer>
</body></html>"""


@pytest.fixture(scope="module")
def host() -> Iterator[str]:
    """A second loopback server (another port, so another origin) serving a page that embeds the widget."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    def embed(request: Request) -> HTMLResponse:
        params = {k: html.escape(request.query_params[k], quote=True) for k in ("api", "question")}
        return HTMLResponse(EMBED_PAGE.format(**params))

    with uvicorn_thread(Starlette(routes=[Route("/embed", embed)])) as url:
        yield url


def test_embedding_from_an_allowed_origin_answers(open_page, host, tiny_settings, tiny_pipeline, shots):
    with uvicorn_thread(create_app(with_cors(tiny_settings, [host]), pipeline=tiny_pipeline)) as api_url:
        session = open_page()
        page = session.page
        page.goto(f"{host}/embed?" + str(httpx.QueryParams(api=api_url, question=QUESTION)))
        wait_done(page, "answered")
        assert page.get_by_role("img", name=SUPPORTED).count() == 3
        assert page.locator("clinqa-answer .sources li").count() == 3  # max-sources="3"
        assert "not shown" in page.locator("clinqa-answer .sources").inner_text()
        posts = [(url, headers) for method, url, headers in session.requests if method == "POST"]
        assert [url for url, _ in posts] == [f"{api_url}/v1/ask/stream"]
        assert posts[0][1].get("x-api-key") == "demo-key"  # allowed through the CORS preflight
        shot(page, shots, "06-embed-allowed")


@pytest.mark.parametrize("origins", [[], ["http://127.0.0.1:9"]], ids=["no-allowlist", "other-origin"])
def test_embedding_from_an_origin_not_allowed_shows_an_error(
    open_page, host, tiny_settings, tiny_pipeline, shots, origins
):
    with uvicorn_thread(create_app(with_cors(tiny_settings, origins), pipeline=tiny_pipeline)) as api_url:
        page = open_page().page
        page.goto(f"{host}/embed?" + str(httpx.QueryParams(api=api_url, question=QUESTION)))
        wait_done(page, "error")
        alert = page.locator("clinqa-answer").get_by_role("alert")
        text = alert.inner_text()
        assert "The answer could not be loaded" in text
        assert f"Could not reach the clinqa service at {api_url}/" in text
        assert f"this page's origin ({host}) is not allowed" in text and "CLINQA_API__CORS_ORIGINS" in text
        assert page.locator("clinqa-answer .sentence").count() == 0
        shot(page, shots, f"07-embed-denied-{'none' if not origins else 'other'}")


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_narrow_viewport_and_contrast(open_page, api, shots, theme):
    page = open_page(viewport={"width": 360, "height": 780}).page
    page.goto(f"{api}/")
    page.evaluate(f"document.querySelector('clinqa-answer').setAttribute('theme', {theme!r})")
    page.get_by_label("Clinical question").fill(QUESTION)
    page.keyboard.press("Enter")
    wait_done(page, "answered")
    page.locator("clinqa-answer .cite").first.focus()
    page.locator("clinqa-answer .popover").wait_for(state="visible")

    layout = page.evaluate(
        """() => {
          const host = document.querySelector("clinqa-answer");
          const root = host.shadowRoot.querySelector(".root");
          const box = host.getBoundingClientRect();
          const pop = host.shadowRoot.querySelector(".popover").getBoundingClientRect();
          return {page: document.documentElement.scrollWidth, view: window.innerWidth, left: box.left,
                  right: box.right, rootScroll: root.scrollWidth, rootClient: root.clientWidth,
                  popLeft: pop.left, popRight: pop.right};
        }"""
    )
    assert layout["view"] == 360 and layout["page"] <= 360, layout
    assert layout["left"] >= 0 and layout["right"] <= 360, layout
    assert layout["rootScroll"] <= layout["rootClient"], layout
    assert layout["popLeft"] >= 0 and layout["popRight"] <= 360, layout
    ratios = page.locator("clinqa-answer").evaluate(CONTRAST_JS)
    low = [r for r in ratios if r[2] < 4.5]
    assert ratios and not low, low
    shot(page, shots, f"08-narrow-360-{theme}")
