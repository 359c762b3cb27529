"""The class report (grader/batch/class_report.py): hand-made records, parsed HTML, a real browser.

Eight students cover several statuses, a hostile name and a hostile check output, and
two submissions with one ast_hash. The browser test renders the file in headless
Chromium (Debian's /usr/bin/chromium; skipped without it) and leaves a screenshot.
"""
from __future__ import annotations

import base64
import io
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image
import pytest

from grader.batch.class_report import normalise_message, write_report
from grader.batch.records import CheckOutcome, StudentRecord

HOSTILE_NAME = "<script>alert(1)</script>"
HOSTILE_OUTPUT = "sample_gaussian returned garbage</pre><img src=x onerror=alert(1)>"
HOSTILE_REASON = "ImportError: <b>bold</b> & 'quotes' \"too\""
SHARED_HASH = "ab" * 32

# (name, function, points) of the assignment's checks, in check order
CHECKS = [
    ("kl_normal: matches reference", "kl_normal", 2.0),
    ("kl_normal: shape", "kl_normal", 1.0),
    ("sample_gaussian: moments", "sample_gaussian", 3.0),
    ("sample_gaussian: reproducible", "sample_gaussian", 1.0),
]
MAX_SCORE = sum(points for _, _, points in CHECKS)
A, B, C, D = (name for name, _, _ in CHECKS)


def record(student: str, status: str, failures: dict[str, tuple[str, str]] | None, *, name: str = "",
           reason: str = "", elapsed: float = 1.0, ast_hash: str | None = None) -> StudentRecord:
    """A record whose checks all pass but ``failures`` (check name -> (kind, output));
    ``failures=None``: no check outcomes at all (an unreadable submission)."""
    checks = []
    for check, function, points in CHECKS if failures is not None else []:
        kind, output = failures.get(check, ("", ""))
        passed = check not in failures
        checks.append(CheckOutcome(id=check.replace(": ", "-").replace(" ", "-"), name=check, function=function,
                                   points=points, score=points if passed else 0.0, passed=passed, kind=kind,
                                   output=output))
    return StudentRecord(
        student=student, source=f"{student}.py", name=name, email=f"{student}@example.edu", status=status,
        reason=reason, score=sum(c.score for c in checks), max_score=MAX_SCORE, checks=checks, elapsed=elapsed,
        submission_hash=student.encode().hex(), inputs_hash="0" * 64,
        ast_hash=student.encode().hex().ljust(64, "0") if ast_hash is None else ast_hash)


def class_records() -> list[StudentRecord]:
    """The eight students. Pass rates: C 2/7, D 3/7, A 4/7, B 6/7 (grace has no outcomes)."""
    gated = ("gated", "")
    return [
        record("alice", "graded", {}, name="Alice Liddell", elapsed=2.5),
        record("bob", "graded", {A: ("wrong", "kl_normal(mu=0.5, logvar=-1) returned 1.25, expected 0.75\n"
                                              "  at mu=0.5, logvar=-1")},
               name="Bob", elapsed=3.0, ast_hash=SHARED_HASH),
        record("carol", "graded", {A: ("wrong", "kl_normal(mu=1.5, logvar=2) returned 2.5, expected 0.25"),
                                   C: ("wrong", HOSTILE_OUTPUT)},
               name=HOSTILE_NAME, elapsed=4.0),
        record("dave", "timeout", {C: ("timeout", "sample_gaussian timed out after 10 s"), D: gated},
               reason="sample_gaussian: a call ran past 10 s", elapsed=31.0),
        record("erin", "import error", {c: ("import error", "ModuleNotFoundError: No module named 'torchx'")
                                        for c, _, _ in CHECKS},
               reason=HOSTILE_REASON, elapsed=0.4, ast_hash=""),
        record("frank", "crash", {C: ("crash", "the worker died: signal 11"), D: gated},
               reason="worker died (SIGSEGV)", elapsed=5.5, ast_hash=SHARED_HASH),
        record("grace", "unreadable", None, reason="bad zip file", elapsed=0.1, ast_hash=""),
        record("heidi", "memory", {C: ("memory", "sample_gaussian ran out of memory (2 GiB)"), D: gated},
               reason="sample_gaussian ran out of memory", elapsed=12.0),
    ]


class Page(HTMLParser):
    """What the tests read from a page: tables by id (rows of cell texts), img attributes, tags seen."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, list[list[str]]] = {}
        self.imgs: list[dict[str, str]] = []
        self.tags: list[str] = []
        self._table: str | None = None
        self._in_body = False
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        a = {k: v or "" for k, v in attrs}
        if tag == "img":
            self.imgs.append(a)
        elif tag == "table":
            self._table = a.get("id", "")
            self.tables[self._table] = []
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._row is not None and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "tbody":
            self._in_body = False
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def img(self, id_: str) -> dict[str, str]:
        return next(i for i in self.imgs if i.get("id") == id_)


def png_of(src: str) -> bytes:
    prefix = "data:image/png;base64,"
    assert src.startswith(prefix)
    return base64.b64decode(src[len(prefix):], validate=True)


def assert_real_png(data: bytes) -> None:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = matplotlib.image.imread(io.BytesIO(data), format="png")
    height, width = pixels.shape[:2]
    assert 600 <= width <= 2000 and 150 <= height <= 1000, pixels.shape
    assert pixels.std() > 0  # something is drawn


def test_normalise_message() -> None:
    assert normalise_message("f(x=0.5) returned 1e-3, expected -2\nmore") == "f(x=#) returned #, expected #"
    assert normalise_message("dtype float32, shape (3, 4)") == "dtype float32, shape (#, #)"
    assert normalise_message("", "gated") == "(gated)"
    assert len(normalise_message("x" * 1000)) <= 200


def test_report_escapes_and_summarises(tmp_path: Path) -> None:
    path = write_report(class_records(), tmp_path / "out", title="HW2 <VAE> & friends")
    assert path == tmp_path / "out" / "report.html"
    html = path.read_text(encoding="utf-8")
    page = Page(html)

    # student text is escaped: never markup
    for hostile in (HOSTILE_NAME, "<img src=x", "</pre><img", "<b>bold</b>", "<VAE>"):
        assert hostile not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "script" not in page.tags
    assert all(i["src"].startswith("data:image/png;base64,") for i in page.imgs)
    # self-contained: no links out, no scripts, no stylesheets from elsewhere
    for outside in ("http://", "https://", "<link", "@import", "url("):
        assert outside not in html

    for table in ("checks", "statuses", "kinds", "slowest", "similar", "students"):
        assert table in page.tables, table

    # checks: lowest pass rate first, the most common failure counted, the hostile output shown as text
    checks = page.tables["checks"]
    assert [row[0] for row in checks] == [C, D, A, B]
    assert [row[3].split()[-1] for row in checks] == ["(2/7)", "(3/7)", "(4/7)", "(6/7)"]
    row_a = checks[2]
    assert row_a[1] == "kl_normal" and row_a[2] == "2"
    assert row_a[4] == "kl_normal(mu=#, logvar=#) returned #, expected # × 2"
    assert "bob" in row_a[5] and "returned 1.25, expected 0.75" in row_a[5]
    assert any(HOSTILE_OUTPUT in row[5] for row in checks)
    assert checks[3][4].startswith("ModuleNotFoundError: No module named 'torchx'")

    statuses = dict((r[0], int(r[1])) for r in page.tables["statuses"])
    assert statuses == {"unreadable": 1, "import error": 1, "timeout": 1, "memory": 1, "crash": 1, "error": 0,
                        "graded": 3}
    kinds = {r[0]: (int(r[1]), int(r[2])) for r in page.tables["kinds"]}
    assert kinds == {"wrong": (3, 2), "gated": (3, 3), "import error": (4, 1), "timeout": (1, 1),
                     "crash": (1, 1), "memory": (1, 1)}

    assert [r[0] for r in page.tables["slowest"]] == ["dave", "heidi", "frank", "carol", "bob", "alice", "erin",
                                                      "grace"]

    # similar code: one group, exactly bob and frank (empty hashes are not a group), worded as a hint
    similar = page.tables["similar"]
    assert len(similar) == 1
    assert similar[0][1].replace("(Bob)", "").split() == ["bob", "frank"]
    assert "worth a look, not evidence" in html

    students = page.tables["students"]
    assert [r[0] for r in students] == ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]
    assert students[2][1] == HOSTILE_NAME  # shown, as text
    assert students[4][5] == HOSTILE_REASON
    assert students[1][3] == "5 / 7"

    assert_real_png(png_of(page.img("histogram")["src"]))
    assert page.img("histogram")["alt"] == "score histogram"


def test_report_of_an_empty_class(tmp_path: Path) -> None:
    path = write_report([], tmp_path / "report.html", title="nobody")
    assert path == tmp_path / "report.html"
    page = Page(path.read_text(encoding="utf-8"))
    assert "checks" not in page.tables and "students" not in page.tables
    assert all(int(n) == 0 for _, n in page.tables["statuses"])
    assert_real_png(png_of(page.img("histogram")["src"]))


def test_report_when_everyone_passes(tmp_path: Path) -> None:
    records = [record(s, "graded", {}, elapsed=i + 1.0) for i, s in enumerate(["ann", "ben", "cat"])]
    html = write_report(records, tmp_path, title="all good").read_text(encoding="utf-8")
    page = Page(html)
    assert [row[3].split()[-1] for row in page.tables["checks"]] == ["(3/3)"] * len(CHECKS)
    assert all(row[4] == "—" for row in page.tables["checks"])
    assert "kinds" not in page.tables and "No failed checks." in html
    assert "similar" not in page.tables


CHROMIUM = shutil.which("chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium(*args: str, profile: Path) -> str:
    """Run headless Chromium on a file; its stdout."""
    assert CHROMIUM is not None
    done = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="needs headless Chromium (/usr/bin/chromium: apt-get install chromium)")
def test_report_in_a_browser(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    path = write_report(class_records(), tmp_path, title="HW2: VAE")
    url = path.resolve().as_uri()

    dom = chromium("--dump-dom", url, profile=tmp_path / "profile")
    page = Page(dom)
    assert "<script" not in dom.lower() and "script" not in page.tags
    histogram = page.img("histogram")
    assert histogram["src"].startswith("data:image/png;base64,")
    assert_real_png(png_of(histogram["src"]))
    assert len(page.tables["checks"]) == len(CHECKS)
    assert all(i["src"].startswith("data:image/png;base64,") for i in page.imgs)  # the hostile <img> is text

    screenshot = tmp_path / "report.png"
    chromium(f"--screenshot={screenshot}", "--window-size=1280,2000", "--hide-scrollbars", url,
             profile=tmp_path / "profile")
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    request.node.user_properties.append(("screenshot", str(screenshot)))
    print(f"\nclass report screenshot: {screenshot}")
