"""The class report: one self-contained ``report.html`` made from the batch's records.

``write_report`` is the entry point. It gathers the numbers a TA wants after grading
a whole class (``summarise``), draws the figures with matplotlib (embedded as base64
PNG: the file needs no network, no CSS, JS or font from elsewhere) and renders the
template ``report.html.j2`` next to this module, in this order:

    header          title, number of students, mean / median / highest score, when generated
    histogram       the scores
    checks          pass rate per check, lowest first, with the most common failure and an example
    statuses        submissions per status (STATUSES), and failed checks per kind
    slowest         the ten submissions that took longest to grade
    similar         groups of submissions with identical normalised code (a hint, never a penalty)
    students        one row per student

Everything a student controls (ids, names, reasons, outputs) is escaped by jinja2's
autoescape: the template never marks a value safe.
"""
from __future__ import annotations

import base64
import io
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from matplotlib.figure import Figure

from .records import STATUSES, CheckOutcome, StudentRecord

TEMPLATE = "report.html.j2"
REPORT_NAME = "report.html"
MESSAGE_CHARS = 200  # a normalised failure message is trimmed to this
EXAMPLE_CHARS = 600  # an example counterexample is truncated to this
SLOWEST = 10  # rows of the slowest-submissions table

# Colours shared by the figures and the page's CSS.
GOOD = "#2e7d32"
BAD = "#c62828"
NEUTRAL = "#1565c0"


# --- text helpers --------------------------------------------------------------------------------

_NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?")


def truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def normalise_message(output: str, kind: str = "") -> str:
    """A failure's output reduced so that equal failures compare equal across students.

    The first non-blank line, numbers not glued to a word collapsed to ``#`` (``float32``
    stays), runs of whitespace made one space, trimmed to MESSAGE_CHARS. A failure
    without output is named by its kind: ``(gated)``.
    """
    line = next((ln.strip() for ln in output.splitlines() if ln.strip()), "")
    if not line:
        return f"({kind or 'no output'})"
    line = _NUMBER.sub("#", line)
    line = re.sub(r"\s+", " ", line)
    return truncate(line, MESSAGE_CHARS)


def fmt(value: float) -> str:
    """A score or a number of points, with at most two decimals and no trailing zeros: 7, 7.5, 7.33."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def status_class(status: str) -> str:
    """The CSS class of a status badge: ``import error`` -> ``status-import-error``."""
    return "status-" + re.sub(r"[^a-z0-9]+", "-", status.lower()).strip("-")


# --- what the report shows ----------------------------------------------------------------------

@dataclass
class CheckSummary:
    """One row of the checks table: how the class did on one check."""

    id: str
    name: str
    function: str
    points: float
    attempts: int = 0  # students with an outcome for this check
    passes: int = 0
    failures: list[tuple[str, CheckOutcome]] = field(default_factory=list)  # (student, outcome)

    @property
    def pass_rate(self) -> float:
        return self.passes / self.attempts if self.attempts else 1.0

    def common_failure(self) -> tuple[str, int, str, str]:
        """The most common normalised failure message, how many failures have it, and one
        example of it: the student and their output (truncated). Empty when nobody failed."""
        if not self.failures:
            return "", 0, "", ""
        counts = Counter(normalise_message(o.output, o.kind) for _, o in self.failures)
        message, count = counts.most_common(1)[0]  # ties: the message seen first
        student, outcome = next((s, o) for s, o in sorted(self.failures, key=lambda f: f[0])
                                if normalise_message(o.output, o.kind) == message)
        example = truncate(outcome.output.strip(), EXAMPLE_CHARS) or f"({outcome.kind or 'no output'})"
        return message, count, student, example


@dataclass
class Summary:
    """Everything the template shows, computed from the records alone."""

    students: list[StudentRecord]  # sorted by student
    max_score: float
    mean: float | None
    median: float | None
    highest: float | None
    checks: list[CheckSummary]  # lowest pass rate first
    statuses: list[tuple[str, int]]  # every status of STATUSES, in that order
    kinds: list[tuple[str, int, int]]  # (kind, failed checks, students), most failed checks first
    slowest: list[StudentRecord]
    similar: list[list[StudentRecord]]  # groups of >= 2 with one ast_hash, largest first


def check_summaries(records: list[StudentRecord]) -> list[CheckSummary]:
    """Pass rate per check (by id, over the students with an outcome for it), lowest first;
    equal rates keep the order in which checks first appear in the records."""
    by_id: dict[str, CheckSummary] = {}
    for record in records:
        for outcome in record.checks:
            summary = by_id.setdefault(outcome.id, CheckSummary(outcome.id, outcome.name, outcome.function,
                                                                outcome.points))
            summary.attempts += 1
            if outcome.passed:
                summary.passes += 1
            else:
                summary.failures.append((record.student, outcome))
    order = {check_id: i for i, check_id in enumerate(by_id)}
    return sorted(by_id.values(), key=lambda c: (c.pass_rate, order[c.id]))


def status_counts(records: list[StudentRecord]) -> list[tuple[str, int]]:
    """Submissions per status, every status listed (worst first, as in STATUSES)."""
    counts = Counter(r.status for r in records)
    return [(status, counts.get(status, 0)) for status in STATUSES]


def kind_counts(records: list[StudentRecord]) -> list[tuple[str, int, int]]:
    """Failed checks per ``CheckOutcome.kind``: (kind, failed checks, students with one), most first."""
    checks: Counter[str] = Counter()
    students: dict[str, set[str]] = {}
    for record in records:
        for outcome in record.checks:
            if not outcome.passed:
                kind = outcome.kind or "unknown"
                checks[kind] += 1
                students.setdefault(kind, set()).add(record.student)
    return [(kind, n, len(students[kind])) for kind, n in checks.most_common()]


def similar_groups(records: list[StudentRecord]) -> list[list[StudentRecord]]:
    """Submissions sharing a (non-empty) ``ast_hash``, in groups of two or more, largest first."""
    groups: dict[str, list[StudentRecord]] = {}
    for record in records:
        if record.ast_hash:
            groups.setdefault(record.ast_hash, []).append(record)
    found = [sorted(g, key=lambda r: r.student) for g in groups.values() if len(g) >= 2]
    return sorted(found, key=lambda g: (-len(g), g[0].student))


def summarise(records: list[StudentRecord]) -> Summary:
    """The numbers of the report, for any class, empty included."""
    scores = [r.score for r in records]
    return Summary(
        students=sorted(records, key=lambda r: r.student),
        max_score=max((r.max_score for r in records), default=0.0),
        mean=statistics.fmean(scores) if scores else None,
        median=statistics.median(scores) if scores else None,
        highest=max(scores) if scores else None,
        checks=check_summaries(records),
        statuses=status_counts(records),
        kinds=kind_counts(records),
        slowest=sorted(records, key=lambda r: (-r.elapsed, r.student))[:SLOWEST],
        similar=similar_groups(records),
    )


# --- figures (matplotlib's Figure directly: no pyplot, no global state) --------------------------

def png_data_uri(fig: Figure) -> str:
    """The figure as a ``data:image/png;base64,...`` URI, for an ``<img src>``."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def histogram_figure(scores: list[float], max_score: float) -> Figure:
    """Students per score, bins spanning 0 to the maximum score."""
    fig = Figure(figsize=(11, 3), layout="constrained")
    ax = fig.add_subplot()
    top = max([max_score, *scores, 1.0])
    bins = min(20, max(5, int(top))) if top == int(top) else 20
    ax.hist(scores, bins=bins, range=(0, top), color=NEUTRAL, edgecolor="white")
    ax.set_xlim(0, top)
    ax.set_xlabel("score")
    ax.set_ylabel("students")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_ylim(bottom=0)
    if not scores:
        ax.set_ylim(0, 1)
        ax.set_yticks([])
        ax.text(0.5, 0.5, "no submissions", transform=ax.transAxes, ha="center", va="center", color="grey")
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def status_figure(statuses: list[tuple[str, int]]) -> Figure:
    """Submissions per status, as horizontal bars (graded in green, every other status in red)."""
    fig = Figure(figsize=(6.5, 0.3 * len(statuses) + 0.8), layout="constrained")
    ax = fig.add_subplot()
    labels = [s for s, _ in statuses]
    counts = [n for _, n in statuses]
    ax.barh(labels, counts, color=[GOOD if s == "graded" else BAD for s in labels])
    ax.invert_yaxis()  # worst status on top, as in the table
    ax.set_xlabel("submissions")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlim(0, max(counts + [1]) * 1.1)
    for y, n in enumerate(counts):
        if n:
            ax.text(n, y, f" {n}", va="center")
    ax.spines[["top", "right"]].set_visible(False)
    return fig


# --- the page ------------------------------------------------------------------------------------

def _environment() -> Environment:
    """jinja2 with autoescape on for every template: student text is always escaped."""
    env = Environment(loader=FileSystemLoader(Path(__file__).parent), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["fmt"] = fmt
    env.filters["status_class"] = status_class
    return env


def render_report(records: list[StudentRecord], *, title: str, generated: datetime | None = None) -> str:
    """The report's HTML for these records (``generated``: the time shown, default now, UTC)."""
    summary = summarise(records)
    generated = generated or datetime.now(timezone.utc)
    return _environment().get_template(TEMPLATE).render(
        title=title,
        generated=generated.strftime("%Y-%m-%d %H:%M %Z").strip(),
        s=summary,
        histogram=png_data_uri(histogram_figure([r.score for r in records], summary.max_score)),
        status_chart=png_data_uri(status_figure(summary.statuses)),
        colours={"good": GOOD, "bad": BAD, "neutral": NEUTRAL},
    )


def write_report(records: list[StudentRecord], out: Path, *, title: str) -> Path:
    """Write the class report and return its path.

    ``out`` is the batch's output folder (the report is ``out/report.html``) or, when
    it ends in ``.html``, the report's own path. Folders are created as needed.
    """
    out = Path(out)
    path = out if out.suffix == ".html" else out / REPORT_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(records, title=title), encoding="utf-8")
    return path
