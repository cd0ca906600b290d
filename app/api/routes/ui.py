"""The demonstration page at `/` and the embeddable `<clinqa-answer>` widget at `/widget/clinqa-answer.js`."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

router = APIRouter(tags=["ui"])
# The page loads the widget from its own origin and has no inline script; the widget's styles are a
# constructed stylesheet, the page's own are one inline <style>.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'"
)


def _static(name: str) -> str:
    return resources.files("app").joinpath(f"static/{name}").read_text(encoding="utf-8")


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def home() -> HTMLResponse:
    return HTMLResponse(_static("index.html"), headers={"Content-Security-Policy": _CSP})


@router.get("/widget/clinqa-answer.js", include_in_schema=False)
def widget() -> Response:
    # Any page may load the script itself (it is public and sends no credentials): a module script from
    # another origin needs these headers. Whether that page may then call the API is decided by the CORS
    # allowlist (api.cors_origins), and the widget shows a clear error when it may not.
    return Response(
        _static("clinqa-answer.js"),
        media_type="text/javascript; charset=utf-8",
        headers={
            "Access-Control-Allow-Origin": "*",
            "Cross-Origin-Resource-Policy": "cross-origin",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-cache",
        },
    )
