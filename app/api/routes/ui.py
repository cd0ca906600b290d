from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["ui"])
# The page only talks to its own origin; inline script and style live in the one static file.
_CSP = "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'"


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def home() -> HTMLResponse:
    page = resources.files("app").joinpath("static/index.html").read_text(encoding="utf-8")
    return HTMLResponse(page, headers={"Content-Security-Policy": _CSP})
