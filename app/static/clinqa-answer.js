/*
 * <clinqa-answer>: the clinqa answer widget, a standard Web Component (shadow DOM, no framework).
 *
 *   <script type="module" src="https://clinqa.example/widget/clinqa-answer.js"></script>
 *   <clinqa-answer api-base="https://clinqa.example" max-sources="5" theme="light"></clinqa-answer>
 *
 * Attributes
 *   api-base     where the clinqa API lives (default: the origin and path this script was served from);
 *                another origin must be in the server's CORS allowlist (CLINQA_API__CORS_ORIGINS)
 *   api-key      sent as the X-API-Key header when set
 *   question     ask this question now (set it again to ask another one); the question box is filled in
 *   max-sources  how many entries the sources list shows (default 5; cited sources come first)
 *   theme        light (default) or dark
 * Methods: ask(question) returns a promise that settles when the answer is complete.
 * Events (bubbling, composed): clinqa-answer (detail: the /v1/ask body), clinqa-error (detail: the error).
 *
 * The answer streams from POST {api-base}/v1/ask/stream (server-sent events read with fetch, because
 * EventSource cannot POST) and falls back to POST {api-base}/v1/ask when streaming is unavailable.
 *
 * Security: everything that comes from the corpus, the server or the user is put into the page with
 * textContent, createTextNode or setAttribute on non-URL attributes; the only URL that becomes a link is
 * a source url whose scheme is http or https. No innerHTML, no inline handlers, no eval.
 */

const STEPS = [
  ["query", "Reading the question"],
  ["sources", "Finding guideline passages"],
  ["sentences", "Writing and verifying sentences"],
  ["done", "Done"],
];

const SUPPORT = {
  supported: { icon: "✓", text: "supported", label: "Verified: supported by the cited passage" },
  partial: { icon: "◐", text: "partial", label: "Verified: only partly supported by the cited passage" },
  unsupported: { icon: "✕", text: "unsupported", label: "Not verified: not supported by the cited passage" },
};

// Statuses where an older or proxied server has no streaming endpoint: retry with the plain one.
const NO_STREAM_STATUSES = new Set([404, 405, 406, 415, 501]);

const CSS = `
:host {
  --cq-bg: #ffffff; --cq-fg: #1b1f24; --cq-muted: #57606a; --cq-line: #d0d7de; --cq-soft: #f6f8fa;
  --cq-accent: #0550ae; --cq-accent-fg: #ffffff; --cq-focus: #0969da;
  --cq-ok: #116329; --cq-warn: #7d4e00; --cq-bad: #a40e26;
  --cq-mark-bg: #fff1a8; --cq-mark-fg: #1b1f24; --cq-notice-bg: #fff8c5; --cq-notice-line: #d4a72c;
  display: block; box-sizing: border-box; max-width: 100%; color: var(--cq-fg);
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
}
:host([theme="dark"]) {
  --cq-bg: #0d1117; --cq-fg: #e6edf3; --cq-muted: #9da7b3; --cq-line: #3d444d; --cq-soft: #161b22;
  --cq-accent: #4493f8; --cq-accent-fg: #0d1117; --cq-focus: #79c0ff;
  --cq-ok: #56d364; --cq-warn: #e3b341; --cq-bad: #ff8182;
  --cq-mark-bg: #6c5a00; --cq-mark-fg: #ffffff; --cq-notice-bg: #2d2100; --cq-notice-line: #9e6a03;
}
:host([hidden]) { display: none; }
*, *::before, *::after { box-sizing: border-box; }
.root { background: var(--cq-bg); color: var(--cq-fg); border: 1px solid var(--cq-line); border-radius: 8px;
        padding: 12px; overflow-wrap: anywhere; min-width: 0; }
.head { display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 12px; margin-bottom: 8px; }
.title { font-weight: 650; font-size: 1.05rem; margin: 0; }
.notice { background: var(--cq-notice-bg); border: 1px solid var(--cq-notice-line); border-radius: 6px;
          padding: 2px 8px; font-size: .8125rem; margin: 0; }
form { display: flex; flex-wrap: wrap; gap: 8px; margin: 0 0 8px; }
label.q { flex-basis: 100%; font-size: .875rem; color: var(--cq-muted); }
input { flex: 1 1 12rem; min-width: 0; font: inherit; color: var(--cq-fg); background: var(--cq-bg);
        padding: 6px 8px; border: 1px solid var(--cq-muted); border-radius: 6px; }
button { font: inherit; cursor: pointer; border-radius: 6px; }
.primary { padding: 6px 16px; border: 1px solid var(--cq-accent); background: var(--cq-accent); color: var(--cq-accent-fg); }
.secondary { padding: 2px 10px; border: 1px solid var(--cq-line); background: var(--cq-soft); color: var(--cq-fg); font-size: .875rem; }
button:disabled { cursor: default; opacity: .65; }
:focus-visible, .cite:focus { outline: 3px solid var(--cq-focus); outline-offset: 2px; }
a { color: var(--cq-accent); }
.muted, .meta { color: var(--cq-muted); font-size: .875rem; }
.asked { margin: 4px 0; }
.progress { list-style: none; padding: 0; margin: 8px 0; display: flex; flex-wrap: wrap; gap: 4px 16px; font-size: .875rem; }
.progress li { color: var(--cq-muted); }
.progress li::before { content: "○ "; }
.progress li[data-state="active"] { color: var(--cq-fg); font-weight: 600; }
.progress li[data-state="active"]::before { content: "◔ "; }
.progress li[data-state="done"] { color: var(--cq-ok); }
.progress li[data-state="done"]::before { content: "✓ "; }
.box { border-left: 4px solid var(--cq-line); padding: 4px 0 4px 10px; margin: 8px 0; }
.box h3 { margin: 0 0 4px; font-size: 1rem; }
.box p { margin: 2px 0; }
.abstained { border-color: var(--cq-warn); }
.degraded { border-color: var(--cq-warn); }
.error { border-color: var(--cq-bad); }
.error h3 { color: var(--cq-bad); }
.answer { position: relative; }
.answer h3, .sources h3 { font-size: 1rem; margin: 12px 0 4px; }
.sentence { margin: 6px 0; }
.cite { font: inherit; font-size: .8125rem; font-weight: 600; min-width: 24px; min-height: 24px; padding: 0 4px;
        margin: 0 1px; vertical-align: baseline; border: 1px solid var(--cq-accent); background: var(--cq-bg);
        color: var(--cq-accent); border-radius: 4px; }
.cite[aria-expanded="true"] { background: var(--cq-accent); color: var(--cq-accent-fg); }
.badge { display: inline-block; font-size: .75rem; line-height: 1.4; padding: 0 6px; margin-left: 4px;
         border: 1px solid currentColor; border-radius: 1rem; white-space: nowrap; }
.supported { color: var(--cq-ok); } .partial { color: var(--cq-warn); } .unsupported { color: var(--cq-bad); }
.why { display: block; font-size: .8125rem; }
.popover { position: absolute; left: 0; right: 0; z-index: 10; background: var(--cq-bg); color: var(--cq-fg);
           border: 1px solid var(--cq-muted); border-radius: 8px; padding: 8px 10px;
           box-shadow: 0 6px 24px rgba(0, 0, 0, .25); }
.popover[hidden] { display: none; }
.popover .ptitle { font-weight: 600; margin: 0; }
.passage { margin: 6px 0; padding: 4px 8px; border-left: 3px solid var(--cq-line); background: var(--cq-soft);
           max-height: 12rem; overflow: auto; white-space: pre-wrap; font-size: .9375rem; }
mark { background: var(--cq-mark-bg); color: var(--cq-mark-fg); padding: 0 1px; }
.sources ul { list-style: none; padding: 0; margin: 0; }
.sources li { padding: 6px 0; border-top: 1px solid var(--cq-line); }
.num { font-weight: 600; color: var(--cq-accent); margin-right: 4px; }
.tools { display: flex; flex-wrap: wrap; align-items: center; gap: 8px; margin: 8px 0; }
.foot { margin-top: 8px; border-top: 1px solid var(--cq-line); padding-top: 6px; }
.foot p { margin: 0; }
.sr-only { position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden;
           clip: rect(0, 0, 0, 0); white-space: nowrap; border: 0; }
[hidden] { display: none !important; }
`;

let sharedSheet = null;
function styleSheet() {
  // A constructed stylesheet is not an inline <style>, so a host page's strict CSP does not block it.
  if (sharedSheet === null && "adoptedStyleSheets" in Document.prototype && "replaceSync" in CSSStyleSheet.prototype) {
    sharedSheet = new CSSStyleSheet();
    sharedSheet.replaceSync(CSS);
  }
  return sharedSheet;
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

/** The url as a link target only when it is http(s); anything else (javascript:, data:, relative) is not. */
export function safeHref(url) {
  if (typeof url !== "string" || !url.trim()) return null;
  try {
    const parsed = new URL(url.trim());
    return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
  } catch {
    return null;
  }
}

function dateLine(c) {
  if (c.reviewed) return "reviewed " + c.reviewed;
  if (c.published) return "published " + c.published;
  return null;
}

function joinMeta(...parts) {
  return parts.filter((p) => p !== null && p !== undefined && p !== "").join(" · ");
}

class ApiError extends Error {
  constructor(message, { code = null, status = null, requestId = null } = {}) {
    super(message);
    this.code = code;
    this.status = status;
    this.requestId = requestId;
  }
}

class ClinqaAnswer extends HTMLElement {
  static get observedAttributes() {
    return ["question", "max-sources"];
  }

  constructor() {
    super();
    this._shadow = this.attachShadow({ mode: "open" });
    this._controller = null;
    this._run = 0;
    this._body = null;
    this._citations = new Map();
    this._sentences = [];
    this._sources = [];
    this._popoverFor = null;
    this._closeTimer = null;
    this._pendingAttribute = false;
    this._askedAttribute = null;
    this._build();
  }

  connectedCallback() {
    this._scheduleAttributeQuestion();
  }

  disconnectedCallback() {
    if (this._controller) this._controller.abort();
  }

  attributeChangedCallback(name, oldValue, newValue) {
    if (name === "question" && newValue !== oldValue) this._scheduleAttributeQuestion();
    if (name === "max-sources" && this._body) this._renderSources(this._body);
  }

  /** Ask a question; resolves with the answer body (or null when it failed or was superseded). */
  ask(question) {
    const text = String(question ?? "").trim();
    if (!text) return Promise.resolve(null);
    this._input.value = text;
    return this._ask(text);
  }

  get apiBase() {
    const given = (this.getAttribute("api-base") || "").trim();
    // Served as /widget/clinqa-answer.js: the API is one level up from the script.
    const base = given ? new URL(given, document.baseURI) : new URL("..", import.meta.url);
    return base.href.endsWith("/") ? base.href : base.href + "/";
  }

  get maxSources() {
    const n = Number.parseInt(this.getAttribute("max-sources") || "", 10);
    return Number.isFinite(n) && n >= 0 ? n : 5;
  }

  // ----------------------------------------------------------------- structure

  _build() {
    const sheet = styleSheet();
    if (sheet) this._shadow.adoptedStyleSheets = [sheet];
    else this._shadow.append(el("style", { text: CSS }));

    this._root = el("div", { class: "root", part: "root", "data-state": "idle" });
    const head = el(
      "div",
      { class: "head" },
      el("p", { class: "title", text: "Guideline answer" }),
      el("p", { class: "notice", role: "note", text: "Demonstration only, not for clinical use" }),
    );

    this._input = el("input", {
      id: "q",
      type: "text",
      name: "question",
      maxlength: "2000",
      required: true,
      autocomplete: "off",
      placeholder: "e.g. first line treatment for hypertension in adults",
    });
    this._askButton = el("button", { class: "primary", type: "submit", text: "Ask" });
    this._form = el(
      "form",
      { role: "search", "aria-label": "Ask the indexed guidelines" },
      el("label", { class: "q", for: "q", text: "Clinical question" }),
      this._input,
      this._askButton,
    );
    this._form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.ask(this._input.value);
    });

    this._asked = el("p", { class: "asked muted", hidden: true });
    this._progress = el("ol", { class: "progress", "aria-label": "Progress", hidden: true });
    this._steps = new Map();
    for (const [key, label] of STEPS) {
      const li = el("li", { "data-step": key, "data-state": "pending", text: label });
      this._steps.set(key, li);
      this._progress.append(li);
    }
    // Polite status line for screen readers: stage changes and "copied".
    this._status = el("div", { class: "sr-only", role: "status", "aria-live": "polite" });
    this._message = el("div", { class: "message" });

    this._sentenceList = el("div", {
      class: "sentences",
      "aria-live": "polite",
      "aria-relevant": "additions",
      "aria-atomic": "false",
    });
    this._popover = el("div", {
      class: "popover",
      id: "citation-popover",
      role: "dialog",
      "aria-modal": "false",
      "aria-labelledby": "popover-title",
      hidden: true,
    });
    this._answer = el(
      "section",
      { class: "answer", "aria-labelledby": "answer-heading", hidden: true },
      el("h3", { id: "answer-heading", text: "Answer" }),
      this._sentenceList,
      this._popover,
    );
    this._summary = el("p", { class: "meta", hidden: true });

    this._copyButton = el("button", { class: "secondary", type: "button", text: "Copy answer with references" });
    this._copyStatus = el("span", { class: "meta", "aria-live": "polite" });
    this._tools = el("div", { class: "tools", hidden: true }, this._copyButton, this._copyStatus);
    this._copyButton.addEventListener("click", () => this._copy());

    this._sourcesHeading = el("h3", { id: "sources-heading", text: "Sources" });
    this._sourceList = el("ul", { "aria-labelledby": "sources-heading" });
    this._sourcesMore = el("p", { class: "meta", hidden: true });
    this._sourcesBox = el(
      "section",
      { class: "sources", "aria-labelledby": "sources-heading", hidden: true },
      this._sourcesHeading,
      this._sourceList,
      this._sourcesMore,
    );
    this._footMeta = el("p", { class: "meta" });
    this._foot = el(
      "div",
      { class: "foot" },
      this._footMeta,
      el("p", { class: "meta", text: "Demonstration only, not for clinical use. Answers are not medical advice." }),
    );

    this._root.append(
      head,
      this._form,
      this._asked,
      this._progress,
      this._status,
      this._message,
      this._answer,
      this._summary,
      this._tools,
      this._sourcesBox,
      this._foot,
    );
    this._shadow.append(this._root);

    this._popover.addEventListener("mouseenter", () => this._cancelClose());
    this._popover.addEventListener("mouseleave", () => this._scheduleClose());
    this._popover.addEventListener("focusout", (event) => this._onFocusOut(event));
    this._popover.addEventListener("keydown", (event) => this._onPopoverKey(event));
    this._shadow.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && this._popoverFor) {
        const trigger = this._popoverFor;
        this._closePopover();
        trigger.focus();
        event.stopPropagation();
      }
    });
  }

  _scheduleAttributeQuestion() {
    // Attributes arrive one by one while the element is parsed or upgraded: ask once they are all set.
    if (this._pendingAttribute) return;
    this._pendingAttribute = true;
    queueMicrotask(() => {
      this._pendingAttribute = false;
      const question = (this.getAttribute("question") || "").trim();
      if (!this.isConnected || !question || question === this._askedAttribute) return;
      this._askedAttribute = question;
      this.ask(question);
    });
  }

  // ----------------------------------------------------------------- asking

  async _ask(question) {
    if (this._controller) this._controller.abort();
    const controller = new AbortController();
    this._controller = controller;
    const run = ++this._run;
    this._reset(question);
    const live = () => run === this._run;
    try {
      let body = null;
      try {
        body = await this._stream(question, controller.signal, live);
      } catch (err) {
        if (err instanceof ApiError || err.name === "AbortError") throw err;
        body = null; // network failure or an interrupted stream: try the plain endpoint once
      }
      if (body === null && live()) {
        this._setStep("sources", "active");
        this._announce("Streaming unavailable; fetching the whole answer");
        body = await this._plain(question, controller.signal);
      }
      if (!live()) return null;
      this._finish(body);
      this.dispatchEvent(new CustomEvent("clinqa-answer", { detail: body, bubbles: true, composed: true }));
      return body;
    } catch (err) {
      if (err.name === "AbortError" || !live()) return null;
      this._showError(err);
      this.dispatchEvent(new CustomEvent("clinqa-error", { detail: err, bubbles: true, composed: true }));
      return null;
    } finally {
      if (live()) {
        this._controller = null;
        this._askButton.disabled = false;
        this._root.removeAttribute("aria-busy");
      }
    }
  }

  _headers(accept) {
    const headers = { "content-type": "application/json", accept };
    const key = this.getAttribute("api-key");
    if (key) headers["x-api-key"] = key;
    return headers;
  }

  async _fetch(path, question, signal, accept) {
    const url = new URL(path, this.apiBase).href;
    try {
      return await fetch(url, {
        method: "POST",
        headers: this._headers(accept),
        body: JSON.stringify({ question }),
        credentials: "omit",
        signal,
      });
    } catch (err) {
      if (err.name === "AbortError") throw err;
      throw new TypeError(this._unreachable());
    }
  }

  _unreachable() {
    const base = this.apiBase;
    let message = "Could not reach the clinqa service at " + base + ".";
    if (new URL(base).origin !== window.location.origin) {
      message +=
        " Either the network failed or this page's origin (" +
        window.location.origin +
        ") is not allowed to call it: the server's CORS allowlist (CLINQA_API__CORS_ORIGINS) must include it.";
    }
    return message;
  }

  /** Stream the answer; returns the done body, or null when the server cannot stream. */
  async _stream(question, signal, live) {
    const response = await this._fetch("v1/ask/stream", question, signal, "text/event-stream");
    if (NO_STREAM_STATUSES.has(response.status)) return null;
    if (!response.ok) throw await this._errorOf(response);
    const type = response.headers.get("content-type") || "";
    if (!type.startsWith("text/event-stream") || !response.body) return null;
    for await (const [name, data] of this._events(response.body)) {
      if (!live()) return null;
      if (name === "query") this._onQuery(data);
      else if (name === "sources") this._onSources(data);
      else if (name === "sentence") this._onSentence(data);
      else if (name === "done") return data;
      else if (name === "error") {
        const detail = data.error || {};
        throw new ApiError(detail.message || "the answer failed", {
          code: detail.code,
          status: data.status,
          requestId: data.request_id,
        });
      }
    }
    throw new TypeError("the answer stream ended early");
  }

  async _plain(question, signal) {
    const response = await this._fetch("v1/ask", question, signal, "application/json");
    if (!response.ok) throw await this._errorOf(response);
    return await response.json();
  }

  async _errorOf(response) {
    const requestId = response.headers.get("x-request-id");
    try {
      const body = await response.json();
      if (body && body.error) {
        return new ApiError(body.error.message || response.statusText, {
          code: body.error.code,
          status: response.status,
          requestId: body.request_id || requestId,
        });
      }
    } catch {
      // not the API's JSON error body (a proxy page, say): fall through to the status line
    }
    return new ApiError("HTTP " + response.status + " " + (response.statusText || "error"), {
      status: response.status,
      requestId,
    });
  }

  /** Server-sent events from a byte stream: yields [event name, parsed JSON data]. */
  async *_events(stream) {
    const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer = (buffer + value).replace(/\r\n/g, "\n");
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          let name = "message";
          const data = [];
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) continue;
            const colon = line.indexOf(":");
            const field = colon < 0 ? line : line.slice(0, colon);
            let value = colon < 0 ? "" : line.slice(colon + 1);
            if (value.startsWith(" ")) value = value.slice(1);
            if (field === "event") name = value;
            else if (field === "data") data.push(value);
          }
          if (data.length) yield [name, JSON.parse(data.join("\n"))];
        }
      }
    } finally {
      reader.releaseLock();
    }
  }

  // ----------------------------------------------------------------- states

  _reset(question) {
    this._closePopover();
    this._body = null;
    this._citations = new Map();
    this._sentences = [];
    this._sources = [];
    this._root.dataset.state = "loading";
    this._root.removeAttribute("data-degraded");
    this._root.setAttribute("aria-busy", "true");
    this._askButton.disabled = true;
    this._asked.hidden = false;
    this._asked.textContent = "Question: " + question;
    this._progress.hidden = false;
    for (const [key, label] of STEPS) {
      this._steps.get(key).textContent = label;
      this._setStep(key, "pending");
    }
    this._setStep("query", "active");
    this._announce("Reading the question");
    this._message.replaceChildren();
    this._sentenceList.replaceChildren();
    this._answer.hidden = true;
    this._summary.hidden = true;
    this._tools.hidden = true;
    this._copyStatus.textContent = "";
    this._sourceList.replaceChildren();
    this._sourcesBox.hidden = true;
    this._footMeta.textContent = "";
  }

  _setStep(key, state) {
    const order = STEPS.map(([k]) => k);
    const index = order.indexOf(key);
    for (const [i, k] of order.entries()) {
      const li = this._steps.get(k);
      if (i < index && state !== "pending") {
        li.dataset.state = "done";
        li.removeAttribute("aria-current");
      }
    }
    const li = this._steps.get(key);
    li.dataset.state = state;
    if (state === "active") li.setAttribute("aria-current", "step");
    else li.removeAttribute("aria-current");
  }

  _announce(text) {
    this._status.textContent = text;
  }

  _onQuery(data) {
    this._setStep("query", "done");
    this._setStep("sources", "active");
    const query = data.query || {};
    if (query.rewritten && query.rewritten !== query.original) {
      this._asked.textContent = "Question: " + query.original + " (searched as: " + query.rewritten + ")";
    }
    this._announce("Finding guideline passages");
  }

  _onSources(data) {
    this._sources = data.sources || [];
    this._setStep("sources", "done");
    this._setStep("sentences", "active");
    const n = this._sources.length;
    this._steps.get("sources").textContent = "Found " + n + " passage" + (n === 1 ? "" : "s");
    this._announce(n + " guideline passages found; writing the answer");
  }

  _onSentence(data) {
    for (const c of data.citations || []) this._citations.set(c.number, c);
    this._answer.hidden = false;
    this._appendSentence(data.sentence, this._sentences.length);
    this._sentences.push(data.sentence);
  }

  _finish(body) {
    this._body = body;
    this._sources = body.sources || [];
    for (const c of body.citations || []) this._citations.set(c.number, c);
    this._setStep("done", "done");
    this._progress.hidden = true;
    this._root.dataset.state = body.status === "abstained" ? "abstained" : "answered";
    this._message.replaceChildren();

    const degraded = (body.stages || []).filter((s) => s.status === "degraded");
    if (degraded.length) {
      this._root.dataset.degraded = "true";
      const list = el("ul");
      for (const note of degraded) list.append(el("li", { text: note.stage + ": " + note.message }));
      this._message.append(
        el(
          "div",
          { class: "box degraded", role: "note", "data-kind": "degraded" },
          el("h3", { text: "Answered in degraded mode" }),
          el("p", { text: "Some stages did not run as configured, so this answer may be less complete:" }),
          list,
        ),
      );
    }

    if (body.status === "abstained") {
      this._answer.hidden = true;
      this._sentenceList.replaceChildren();
      this._message.append(
        el(
          "div",
          { class: "box abstained", role: "status", "data-kind": "abstained" },
          el("h3", { text: "Not enough evidence in the indexed guidelines" }),
          el("p", { text: body.reason || "The indexed guidelines do not answer this question." }),
          el("p", { class: "muted", text: "The closest passages found are listed below; none answers the question." }),
        ),
      );
      this._announce("Not enough evidence in the indexed guidelines");
    } else {
      const sentences = body.sentences || [];
      const same =
        sentences.length === this._sentences.length &&
        sentences.every((s, i) => s.text === this._sentences[i].text && s.support === this._sentences[i].support);
      if (!same) {
        this._sentenceList.replaceChildren();
        sentences.forEach((s, i) => this._appendSentence(s, i));
        this._sentences = sentences.slice();
      }
      this._answer.hidden = false;
      this._summary.hidden = false;
      this._summary.textContent = body.verified
        ? "Every sentence was checked against the passage it cites."
        : "Not fully verified" + (body.reason ? ": " + body.reason : ".");
      this._tools.hidden = false;
      this._announce("Answer complete: " + sentences.length + " sentence" + (sentences.length === 1 ? "" : "s"));
    }
    this._renderSources(body);

    const total = body.timings_ms && body.timings_ms.total;
    const skipped = (body.stages || []).filter((s) => s.status === "skipped").map((s) => s.stage + " skipped");
    this._footMeta.textContent = joinMeta(
      "Index " + (body.index_version || "unknown"),
      typeof total === "number" ? Math.round(total) + " ms" : null,
      skipped.join(", "),
    );
  }

  _showError(err) {
    this._closePopover();
    this._root.dataset.state = "error";
    this._progress.hidden = true;
    const detail = joinMeta(err.code ? "code " + err.code : null, err.requestId ? "request " + err.requestId : null);
    this._message.replaceChildren(
      el(
        "div",
        { class: "box error", role: "alert", "data-kind": "error" },
        el("h3", { text: "The answer could not be loaded" }),
        el("p", { class: "error-message", text: err.message || String(err) }),
        detail ? el("p", { class: "meta", text: detail }) : null,
      ),
    );
  }

  // ----------------------------------------------------------------- answer and sources

  _appendSentence(sentence, index) {
    const support = SUPPORT[sentence.support] || SUPPORT.unsupported;
    const row = el("p", { class: "sentence", "data-support": sentence.support });
    row.append(el("span", { class: "text", text: sentence.text }));
    for (const n of sentence.citations || []) {
      row.append(" ", this._citeButton(n));
    }
    const whyId = "why-" + index;
    const reason = sentence.support_reason || (sentence.support === "supported" ? null : "no reason given");
    const badge = el(
      "span",
      {
        class: "badge " + sentence.support,
        role: "img",
        "aria-label": support.label,
        "aria-describedby": reason ? whyId : null,
        title: reason || support.label,
      },
      support.icon + " " + support.text,
    );
    row.append(" ", badge);
    if (reason) row.append(el("span", { class: "why " + sentence.support, id: whyId, text: reason }));
    this._sentenceList.append(row);
  }

  _citeButton(n) {
    const c = this._citations.get(n);
    const button = el("button", {
      class: "cite",
      type: "button",
      "data-citation": String(n),
      "aria-haspopup": "dialog",
      "aria-expanded": "false",
      "aria-controls": "citation-popover",
      "aria-label": "Citation " + n + (c ? ": " + c.breadcrumb : ""),
      text: "[" + n + "]",
    });
    button.addEventListener("mouseenter", () => this._openPopover(button));
    button.addEventListener("mouseleave", () => this._scheduleClose());
    button.addEventListener("focus", () => this._openPopover(button));
    button.addEventListener("click", () => this._openPopover(button));
    button.addEventListener("focusout", (event) => this._onFocusOut(event));
    button.addEventListener("keydown", (event) => {
      // The popover sits after the answer in the DOM: Tab from its trigger goes into it first.
      if (event.key !== "Tab" || event.shiftKey || this._popoverFor !== button) return;
      const link = this._popover.querySelector("a[href]");
      if (link) {
        event.preventDefault();
        link.focus();
      }
    });
    return button;
  }

  _onPopoverKey(event) {
    if (event.key !== "Tab" || !this._popoverFor) return;
    const trigger = this._popoverFor;
    event.preventDefault();
    if (event.shiftKey) {
      trigger.focus();
      return;
    }
    const order = this._focusables().filter((node) => !this._popover.contains(node));
    const next = order[order.indexOf(trigger) + 1];
    this._closePopover();
    if (next) next.focus();
    else trigger.blur();
  }

  _focusables() {
    return Array.from(this._shadow.querySelectorAll("button, a[href], input")).filter(
      (node) => !node.disabled && node.offsetParent !== null,
    );
  }

  _openPopover(button) {
    this._cancelClose();
    const n = Number(button.dataset.citation);
    const c = this._citations.get(n);
    if (!c) return;
    if (this._popoverFor && this._popoverFor !== button) this._popoverFor.setAttribute("aria-expanded", "false");
    this._popoverFor = button;
    button.setAttribute("aria-expanded", "true");

    const passage = el("blockquote", { class: "passage", "aria-label": "Cited passage" });
    const text = typeof c.chunk_text === "string" ? c.chunk_text : "";
    let start = c.start;
    let end = c.end;
    if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && end <= text.length && start < end)) {
      start = c.quote ? text.indexOf(c.quote) : -1;
      end = start >= 0 ? start + c.quote.length : -1;
    }
    if (start >= 0) {
      passage.append(text.slice(0, start), el("mark", { text: text.slice(start, end) }), text.slice(end));
    } else {
      passage.append(el("mark", { text: c.quote || "" }));
    }
    const href = safeHref(c.url);
    let link = null;
    if (href) {
      link = el("a", { href, target: "_blank", rel: "noopener noreferrer", text: "Open the source" });
      link.append(el("span", { class: "sr-only", text: " (opens in a new tab)" }));
    } else if (c.url) {
      link = el("span", { class: "meta", text: "Source address (not a web link): " + c.url });
    }
    this._popover.replaceChildren(
      el("p", { class: "ptitle", id: "popover-title", text: "[" + n + "] " + c.title }),
      el("div", { class: "meta crumb", text: c.breadcrumb }),
      el("div", { class: "meta", text: joinMeta(c.organisation, dateLine(c)) || "no organisation or date given" }),
      passage,
      link,
      c.disclaimer ? el("div", { class: "meta", text: c.disclaimer }) : null,
    );
    const box = this._answer.getBoundingClientRect();
    const at = button.getBoundingClientRect();
    this._popover.style.top = Math.round(at.bottom - box.top + 6) + "px";
    this._popover.hidden = false;
    const mark = passage.querySelector("mark");
    if (mark) passage.scrollTop = Math.max(0, mark.offsetTop - passage.offsetTop - 16);
  }

  _closePopover() {
    this._cancelClose();
    if (this._popoverFor) this._popoverFor.setAttribute("aria-expanded", "false");
    this._popoverFor = null;
    this._popover.hidden = true;
  }

  _onFocusOut(event) {
    const to = event.relatedTarget;
    if (to && (to === this._popoverFor || this._popover.contains(to))) return;
    this._scheduleClose();
  }

  _scheduleClose() {
    this._cancelClose();
    this._closeTimer = setTimeout(() => {
      this._closeTimer = null;
      const trigger = this._popoverFor;
      if (!trigger) return;
      const active = this._shadow.activeElement;
      const kept =
        active === trigger ||
        (active && this._popover.contains(active)) ||
        trigger.matches(":hover") ||
        this._popover.matches(":hover");
      if (!kept) this._closePopover();
    }, 200);
  }

  _cancelClose() {
    if (this._closeTimer !== null) clearTimeout(this._closeTimer);
    this._closeTimer = null;
  }

  _renderSources(body) {
    const cited = [...(body.citations || [])].sort((a, b) => a.number - b.number);
    const citedChunks = new Set(cited.map((c) => c.chunk_id));
    const seen = new Set();
    const entries = [];
    for (const c of cited) {
      // Two citations of one chunk (different spans) are one source with two numbers.
      const same = entries.find((e) => e.item.chunk_id === c.chunk_id);
      if (same) same.numbers.push(c.number);
      else entries.push({ item: c, numbers: [c.number] });
    }
    for (const s of body.sources || []) {
      if (citedChunks.has(s.chunk_id) || seen.has(s.chunk_id)) continue;
      seen.add(s.chunk_id);
      entries.push({ item: s, numbers: [] });
    }
    const shown = entries.slice(0, Math.max(this.maxSources, 0));
    this._sourceList.replaceChildren();
    this._sourcesHeading.textContent = body.status === "abstained" ? "Closest sources" : "Sources";
    for (const { item, numbers } of shown) {
      const li = el("li", { "data-chunk": item.chunk_id });
      const head = el("div");
      if (numbers.length) head.append(el("span", { class: "num", text: numbers.map((n) => "[" + n + "]").join("") }));
      else if (cited.length) head.append(el("span", { class: "meta", text: "not cited · " }));
      head.append(el("strong", { text: item.title }));
      li.append(head, el("div", { class: "meta", text: item.breadcrumb }));
      const meta = joinMeta(item.organisation, dateLine(item));
      if (meta) li.append(el("div", { class: "meta", text: meta }));
      const href = safeHref(item.url);
      if (href) li.append(el("a", { href, target: "_blank", rel: "noopener noreferrer", text: href }));
      else if (item.url) li.append(el("div", { class: "meta", text: "Source address (not a web link): " + item.url }));
      this._sourceList.append(li);
    }
    const more = entries.length - shown.length;
    this._sourcesMore.hidden = more <= 0;
    this._sourcesMore.textContent = more > 0 ? more + " more retrieved " + (more === 1 ? "source" : "sources") + " not shown" : "";
    this._sourcesBox.hidden = shown.length === 0;
  }

  // ----------------------------------------------------------------- copy

  /** The answer as plain text with numbered references (what the copy button puts on the clipboard). */
  answerText() {
    const body = this._body;
    if (!body || body.status !== "answered") return "";
    const lines = [body.answer || "", "", "References"];
    for (const c of [...(body.citations || [])].sort((a, b) => a.number - b.number)) {
      const where = joinMeta(c.organisation, dateLine(c), safeHref(c.url) || c.url);
      lines.push("[" + c.number + "] " + c.title + " — " + c.breadcrumb + (where ? ". " + where : ""));
      lines.push('    "' + c.quote + '"');
    }
    lines.push("", "clinqa index " + body.index_version + ". Demonstration only, not for clinical use.");
    return lines.join("\n");
  }

  async _copy() {
    const text = this.answerText();
    if (!text) return;
    let ok = false;
    try {
      await navigator.clipboard.writeText(text);
      ok = true;
    } catch {
      // Clipboard API refused (permissions, insecure context): the old selection-based copy.
      const area = el("textarea", { class: "sr-only", readonly: true, "aria-hidden": "true" });
      area.value = text;
      this._root.append(area);
      area.select();
      try {
        ok = document.execCommand("copy");
      } catch {
        ok = false;
      }
      area.remove();
      this._copyButton.focus();
    }
    this._copyStatus.textContent = ok ? "Copied the answer and its references." : "Copy failed: select the text instead.";
  }
}

if (!customElements.get("clinqa-answer")) customElements.define("clinqa-answer", ClinqaAnswer);

export { ClinqaAnswer };
