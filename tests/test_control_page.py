"""The control page in a real headless browser (Debian's chromium driven by playwright) on a real
running pipeline: msgnet.lite on the synthetic source, null sink."""
from __future__ import annotations

import json
import logging
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

CHROMIUM = Path(os.environ.get("RTSTYLE_CHROMIUM", "/usr/bin/chromium"))
if not CHROMIUM.exists():
    pytest.skip(f"needs a chromium browser at {CHROMIUM} (apt-get install chromium, or set RTSTYLE_CHROMIUM)",
                allow_module_level=True)
pytest.importorskip("aiohttp", reason="the control endpoint needs aiohttp (pip install 'rtstyle[control]')")
sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install 'rtstyle[test]')")

from rtstyle.control import ControlServer  # noqa: E402
from rtstyle.io import NullSink, SyntheticSource  # noqa: E402
from rtstyle.pipeline import Pipeline  # noqa: E402
from rtstyle.stylizer import Stylizer  # noqa: E402

from helpers import wait_for  # noqa: E402

W, H = 128, 96
# the browser must not reach anything but the page: no updates, sync or QUIC probes from a test
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class Run:
    def __init__(self, pipe: Pipeline, sink: NullSink, ctl: ControlServer) -> None:
        self.pipe, self.sink, self.ctl = pipe, sink, ctl
        self.base = f"http://127.0.0.1:{ctl.port}"

    def get(self, path: str) -> tuple[dict[str, str], bytes]:
        req = urllib.request.Request(self.base + path, headers={"Authorization": f"Bearer {self.ctl.token}"})
        with urllib.request.urlopen(req, timeout=60) as r:
            return dict(r.headers), r.read()

    def status(self) -> dict:
        return json.loads(self.get("/status")[1])

    def preview(self) -> tuple[str, int, np.ndarray]:
        """The style, frame index and RGB image of ``GET /preview.jpg``."""
        hdrs, data = self.get("/preview.jpg")
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        return hdrs["X-Style"], int(hdrs["X-Frame-Index"]), cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    # paintings for two thumbnails (generated: the tests must not need ../shared)
    paintings = tmp_path_factory.mktemp("paintings")
    rng = np.random.default_rng(1)
    for name in ("wave", "the_scream"):
        cv2.imwrite(str(paintings / f"{name}.jpg"), rng.integers(0, 255, (240, 180, 3), dtype=np.uint8))
    sink = NullSink(lossless=False)
    st = Stylizer("msgnet.lite")
    with SyntheticSource(W, H, fps=15, live=True) as src:
        pipe = Pipeline(src, st, [sink], live=True)
        pipe.start()
        try:
            with ControlServer(pipe, port=0, style_images=paintings) as ctl:
                wait_for(lambda: sink.count > 0, "the first output frame")
                yield Run(pipe, sink, ctl)
        finally:
            pipe.stop()
            pipe.wait(30)
            st.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with tempfile.TemporaryDirectory(prefix="rtstyle-chromium-") as profile, sync_api.sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(profile, executable_path=str(CHROMIUM), headless=True,
                                                    args=ARGS, viewport={"width": 1280, "height": 900})
        try:
            yield ctx
        finally:
            ctx.close()


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    """A fresh tab that records the page's script errors and console errors (a CSP violation, a
    failed fetch)."""
    browser.clear_cookies()
    pg = browser.new_page()
    pg.errors = []  # type: ignore[attr-defined]
    pg.on("pageerror", lambda e: pg.errors.append(f"pageerror: {e}"))
    pg.on("console", lambda m: m.type == "error" and pg.errors.append(f"console: {m.text}"))
    yield pg
    pg.close()


def _open(page: Any, run: Run) -> None:
    resp = page.goto(run.ctl.url)
    assert resp.status == 200
    page.wait_for_selector('.style-tile[data-style="wave"]')
    page.wait_for_function("() => document.querySelector('#stat-frames').textContent !== '–'")


def test_the_page_needs_the_token(page: Any, run: Run) -> None:
    resp = page.goto(run.base + "/")
    assert resp.status == 401 and "token" in page.content()
    assert page.query_selector("#models") is None
    resp = page.goto(run.base + "/?token=not-the-token")
    assert resp.status == 403 and page.query_selector("#models") is None
    assert not page.context.cookies(run.base)


def test_the_page_loads_with_the_token(page: Any, run: Run, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        _open(page, run)
        assert "token" not in page.url, "the token must leave the address bar"
        (cookie,) = page.context.cookies(run.base)
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["value"] == run.ctl.token
        assert page.evaluate("document.cookie") == "", "no script may read the token"
        # every registry model is listed; the bank shows the thumbnails that are known
        names = page.eval_on_selector_all(".model", "els => els.map(e => e.dataset.model)")
        from rtstyle.models import list_models

        assert names == list_models()
        page.wait_for_function("""() => document.querySelector('.style-tile[data-style="wave"] img').naturalWidth > 0""")
        assert page.query_selector('.style-tile[data-style="udnie"] img') is None  # no painting for it
        # msgnet.lite has alpha and brush; crossfade is always there
        assert page.is_visible("#alpha") and page.is_visible("#brush") and page.is_visible("#crossfade")
        assert page.input_value("#brush") == "256"
        page.wait_for_function("() => document.querySelector('#preview').naturalWidth === %d" % W)
        # a reload keeps working on the cookie alone
        resp = page.goto(run.base + "/")
        assert resp.status == 200
        page.wait_for_selector('.style-tile[data-style="wave"]')
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], [r.getMessage() for r in caplog.records]
    assert page.errors == []  # type: ignore[attr-defined]


# The mean colour of what the page's preview <img> shows (read back through a canvas); null while
# the next preview is loading. With a target, true once every channel is within ``tol`` of it.
MEAN_JS = """(arg) => {
    const img = document.querySelector('#preview');
    if (!img.complete || !img.naturalWidth) return null;
    const c = document.createElement('canvas');
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    const g = c.getContext('2d'); g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    const m = [0, 0, 0];
    for (let i = 0; i < d.length; i += 4) { m[0] += d[i]; m[1] += d[i + 1]; m[2] += d[i + 2]; }
    const mean = m.map(v => v / (d.length / 4));
    if (!arg) return mean;
    return mean.every((v, k) => Math.abs(v - arg[0][k]) < arg[1]) ? mean : null;
}"""


def _shown_mean(page: Any, target: Any = None, tol: float = 0.0) -> np.ndarray:
    arg = None if target is None else [list(map(float, target)), tol]
    return np.array(page.wait_for_function(MEAN_JS, arg=arg, timeout=30000).json_value())


def _click_style(page: Any, run: Run, style: str) -> None:
    page.click(f'.style-tile[data-style="{style}"]')
    wait_for(lambda: run.status()["bank_style"] == style, f"/status to show {style}")
    page.wait_for_selector(f'.style-tile.active[data-style="{style}"]')


def test_a_click_switches_the_style_and_the_preview_follows(page: Any, run: Run, capfd: pytest.CaptureFixture[str]) -> None:
    _open(page, run)
    _click_style(page, run, "wave")
    swaps = run.status()["swaps"]
    wait_for(lambda: run.preview()[0] == "msgnet.lite[wave]", "a preview in the first style")

    _click_style(page, run, "the_scream")
    s = run.status()
    assert s["style"] == "msgnet.lite[the_scream]" and s["swaps"] == swaps + 1
    page.wait_for_function("() => document.querySelector('#now-style').textContent === 'the_scream'")
    wait_for(lambda: run.sink.last.meta["style"] == "msgnet.lite[the_scream]", "frames in the new style")
    style, index, shown = wait_for(lambda: (p := run.preview())[0] == "msgnet.lite[the_scream]" and p,
                                   "a preview in the new style")

    # the preview is that very frame in the new style, not in the old one
    ref = Stylizer("msgnet.lite")
    try:
        frame = SyntheticSource(W, H, fps=15, live=False).render(index)
        ref.set_style(style_vector="the_scream", wait=True)
        new = ref.stylize(frame).astype(float)
        ref.set_style(style_vector="wave", wait=True)
        old = ref.stylize(frame).astype(float)
    finally:
        ref.close()
    d_new, d_old = np.abs(shown - new).mean(), np.abs(shown - old).mean()
    assert d_new < 8 and d_old > 3 * d_new, (d_new, d_old)

    # and the page's own <img> shows it: its mean colour goes to the new style's, away from the old one's
    target, before = new.reshape(-1, 3).mean(0), old.reshape(-1, 3).mean(0)
    assert np.abs(target - before).max() > 20, "the two styles must look different for this test"
    shown_mean = _shown_mean(page, target, 12.0)
    assert np.abs(shown_mean - before).max() > np.abs(shown_mean - target).max()
    assert page.errors == []  # type: ignore[attr-defined]
    assert "Traceback" not in capfd.readouterr().err


def test_buttons_and_sliders_drive_the_run(page: Any, run: Run) -> None:
    _open(page, run)
    _click_style(page, run, "wave")
    bank = run.status()["bank"]
    page.click("#next")
    wait_for(lambda: run.status()["bank_style"] not in (None, "wave"), "/next to move along the bank")
    assert run.status()["bank_style"] in bank
    page.click("#previous")
    wait_for(lambda: run.status()["bank_style"] == "wave", "/previous to come back")
    page.click("#pause")
    wait_for(lambda: run.status()["paused"], "the pause")
    page.wait_for_function("() => document.querySelector('#pause').textContent === 'resume'")
    page.click("#pause")
    wait_for(lambda: not run.status()["paused"], "the resume")
    # a slider change is a control change on the running model that keeps its style
    page.fill("#brush", "512")
    page.dispatch_event("#brush", "change")
    wait_for(lambda: run.status()["controls"].get("brush") == 512.0, "the new brush size")
    assert run.status()["bank_style"] == "wave"
    # the style-image path field
    painting = run.ctl.style_images / "the_scream.jpg"  # type: ignore[operator]
    page.fill("#style-path", str(painting))
    page.click("#use-path")
    wait_for(lambda: run.status()["style"].endswith("+the_scream"), "the style image from the path field")
    # an uploaded style image (a file picked in the page)
    swaps = run.status()["swaps"]
    ok, png = cv2.imencode(".png", np.random.default_rng(2).integers(0, 255, (80, 60, 3), dtype=np.uint8))
    page.set_input_files("#style-file", files=[{"name": "mine.png", "mimeType": "image/png", "buffer": png.tobytes()}])
    wait_for(lambda: (s := run.status())["swaps"] > swaps and s["style"] == "msgnet.lite", "the uploaded style image")
    assert run.status()["controls"]["brush"] == 512.0  # the model's controls stay
    # an error is shown on the page, not as a traceback
    page.fill("#style-path", "/no/such/painting.jpg")
    page.click("#use-path")
    page.wait_for_function("() => document.querySelector('#message').classList.contains('error')")
    assert "not found" in page.text_content("#message")
    assert page.errors == [] or all("400" in e for e in page.errors), page.errors  # type: ignore[attr-defined]
