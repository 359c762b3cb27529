"""What a batch keeps per student: ``OUTDIR/<student>/record.json``.

A record is the batch's own summary of one grading (results.json is Gradescope's
view): who the student is, how grading went (``status``), the score and every
check's outcome, and the hashes that decide whether a re-run must grade again.
The gradebook CSV and the HTML report are made from records alone.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

# How grading went for a submission, worst first (one status per submission):
#   unreadable    the files could not be read (bad zip, malformed notebook, no module)
#   import error  the module raised, or defined none of the graded functions, when imported
#   timeout       a call ran past its deadline (the function's remaining checks were skipped)
#   memory        a call ran out of memory
#   crash         the worker died (os._exit, a segfault, a signal)
#   error         the grader failed on this submission (a bug of ours: the reason says what)
#   graded        everything ran; the score says how well
Status = Literal["unreadable", "import error", "timeout", "memory", "crash", "error", "graded"]
STATUSES: tuple[str, ...] = ("unreadable", "import error", "timeout", "memory", "crash", "error", "graded")


class CheckOutcome(BaseModel):
    """One check's result for one student (``name`` starts with the function: ``kl_normal: ...``)."""

    id: str  # the check's id (``--only`` takes it; the gradebook's column)
    name: str
    function: str
    points: float
    score: float
    passed: bool
    kind: str = ""  # why it failed: "wrong", "raised", "not implemented", "timeout", "memory", "crash",
    #                 "import error", "unreadable", "gated" (a required check failed); "" when passed
    output: str = ""  # what failed, as the student sees it (student-controlled text: escape it)


class StudentRecord(BaseModel):
    student: str  # the folder name under OUTDIR (file stem, folder or zip name, or Gradescope's submission_<id>)
    source: str  # the submission's path relative to the batch's input folder
    name: str = ""  # from Gradescope's submission_metadata.yml, when the input is an export ("; " for groups)
    email: str = ""
    sid: str = ""
    status: Status
    reason: str = ""  # one line for a status other than "graded"
    score: float
    max_score: float
    checks: list[CheckOutcome]
    elapsed: float  # seconds of grading
    submission_hash: str  # sha256 of the submission's bytes
    inputs_hash: str  # sha256 of everything else that decides a grade (see batch.hashing)
    ast_hash: str = ""  # sha256 of the normalised AST of the graded module ("" when it does not parse)
    only: list[str] = []  # the checks the last run was limited to (--only), merged into the earlier ones
    graded_at: str = ""  # ISO time
