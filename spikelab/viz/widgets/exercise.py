"""An answer box for a lab exercise: a text field (or choices), a Check button and the check's verdict.

It works the same in JupyterLab and in a Voila dashboard, where a visitor cannot edit code. Until an answer is
given the verdict says "your turn"; a check never raises into the page (a broken check shows its error as text).
"""
from __future__ import annotations

import ast
import html
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ipywidgets as W

from spikelab.exercises import Verdict
from spikelab.viz.widgets._base import Panel, _css

_COLOURS = {"pending": "#3b5b92", "correct": "#1a7f37", "wrong": "#cf222e"}


def parse_answer(text: str) -> object:
    """Read what a learner typed: a Python literal (``0.2``, ``[2, 5, 8]``, ``2, 5, 8``) if it is one, else the
    stripped text; blank text is ``None`` (no answer yet)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    text = text.strip()
    if not text:
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


class Exercise(Panel):
    """An exercise's answer box: ``check(answer, **params)`` (a function of :mod:`spikelab.exercises`) judges it.

    With ``choices`` the learner picks one of them (radio buttons); otherwise types an answer, read with
    :func:`parse_answer`. A multiple-choice check such as :func:`~spikelab.exercises.check_option` takes its
    ``options`` as a parameter: their keys are the choices unless ``choices`` says otherwise. ``verdict`` holds the last :class:`~spikelab.exercises.Verdict`, starting with the check's
    answer to "no answer yet". :meth:`submit` answers as the Check button does.

    Args:
        check: ``f(answer, **params) -> Verdict``.
        placeholder: grey hint in the empty text field, e.g. ``"e.g. [1, 4]"``.
        choices: the choices of a multiple-choice question.
        params: the exercise's settings, passed to ``check``.
    """

    def __init__(self, check: Callable[..., Verdict], *, placeholder: str = "", choices: Sequence[str] | None = None,
                 **params: Any) -> None:
        super().__init__()
        if not callable(check):
            raise TypeError(f"check must be a function returning a Verdict, got {type(check).__name__}")
        self.check, self.params = check, params
        if choices is None and isinstance(params.get("options"), Mapping):
            choices = list(params["options"])
        if choices is not None:
            if isinstance(choices, str) or not choices:
                raise TypeError(f"choices must be a non-empty list, got {choices!r}")
            self.answer = _css(W.RadioButtons(options=[str(o) for o in choices], value=None,
                                              layout=W.Layout(width="auto")), "answer")
        else:
            self.answer = _css(W.Text(placeholder=placeholder, description="your answer", continuous_update=False,
                                      style={"description_width": "90px"}, layout=W.Layout(width="420px")), "answer")
            self.answer.observe(lambda _change: self._on_check(), "value")  # Enter (or leaving the box) checks too
        self.button = _css(W.Button(description="Check", icon="check", button_style="info"), "check")
        self.button.on_click(lambda _b: self._on_check())
        self.result = _css(W.HTML(), "verdict")
        self.verdict: Verdict | None = None
        self.widget = _css(W.VBox([W.HBox([self.answer, self.button]), self.result]), "exercise")
        self._show(self._run(None))

    def _run(self, answer: object) -> Verdict:
        try:
            verdict = self.check(answer, **self.params)
            if not isinstance(verdict, Verdict):
                raise TypeError(f"the check returned {type(verdict).__name__}, not a Verdict")
        except Exception as e:  # a broken check is shown, never raised into the page
            verdict = Verdict(False, f"the check itself failed: {type(e).__name__}: {e}")
        return verdict

    def _show(self, verdict: Verdict) -> None:
        self.verdict = verdict
        status = verdict.status
        self.result.value = (f'<span class="spikelab-verdict-{status}" style="color:{_COLOURS[status]}; '
                             f'font-weight:600">{html.escape(repr(verdict))}</span>')

    def _on_check(self) -> None:
        value = self.answer.value
        self.submit(parse_answer(value) if isinstance(self.answer, W.Text) else value)

    def submit(self, answer: object) -> Verdict:
        """Check ``answer`` (a value, or text as typed), show the verdict and return it."""
        if isinstance(answer, str) and not isinstance(self.answer, W.RadioButtons):
            answer = parse_answer(answer)
        verdict = self._run(answer)
        self._show(verdict)
        return verdict

    def refresh(self) -> Verdict:
        """Check the current answer again (e.g. after the data it depends on changed)."""
        value = self.answer.value
        return self.submit(value if value is not None else None)
