"""The notebooks' exercises: each solver runs, placeholders never raise, verdicts are typed."""

from __future__ import annotations

from pathlib import Path

import pytest

from sgxlab.errors import ConfigError
from sgxlab.experiments.claims import NOTEBOOKS
from sgxlab.experiments.exercises import (
    EXERCISES,
    Verdict,
    check,
    exercise,
    exercises_for,
    launch_enclave_sample,
    solution,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("nb", NOTEBOOKS)
def test_each_notebook_asks_its_exercises_with_a_placeholder(nb):
    """Every exercise is asked in its notebook, left as ``answer=...`` so the notebook runs in CI."""
    text = (ROOT / "notebooks" / f"{nb}.py").read_text()
    for ex in exercises_for(nb):
        assert f'check("{ex.id}", answer=...)' in text, f"{nb} does not ask {ex.id}"


def test_ids_unique_and_every_notebook_has_exercises():
    ids = [e.id for e in EXERCISES]
    assert len(ids) == len(set(ids))
    for nb in NOTEBOOKS:
        assert exercises_for(nb), nb


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda e: e.id)
def test_placeholder_is_not_answered_yet(ex):
    for placeholder in (..., None):
        v = check(ex.id, answer=placeholder)
        assert isinstance(v, Verdict) and v.status == "unanswered" and not v.correct
        assert ex.question in v.explanation and "not answered yet" in str(v)


# Answers the experiments give today; a change in the model that moves one
# of them should be a deliberate change to the notebook that asks it.
KNOWN = {
    "00.1": 4, "02.1": False, "02.2": "intel", "02.3": 0, "03.1": 16, "03.2": 4, "03.3": 2,
    "04.1": False, "04.2": 0, "04.3": 40, "04.4": "sgxlc", "05.1": True, "05.4": False, "05.5": 0,
    "05.6": "ecreate", "06.2": 3, "06.3": 4, "06.4": "percpu-cache", "07.1": "grows", "07.3": 1200,
    "08.2": 1,
}  # fmt: skip

_SOME = {"int": 0, "number": 0.5, "bool": False}


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda e: e.id)
def test_check_runs_the_experiment_and_explains(ex):
    """One run per exercise: a known answer must be right; any other answer gets the computed value."""
    answer = KNOWN.get(ex.id, ex.choices[0] if ex.kind == "choice" else _SOME[ex.kind])
    v = check(ex.id, answer=answer)
    assert v.status in ("correct", "incorrect") and v.explanation and v.expected is not None
    if ex.kind == "choice":
        assert v.expected in ex.choices
    if ex.id in KNOWN:
        assert v.correct, str(v)
    assert v.correct == (v.status == "correct")


def test_solution_is_what_check_computes():
    sol = solution("06.2")
    v = check("06.2", answer=sol.answer)
    assert v.correct and v.explanation == sol.explanation


def test_wrong_answer_is_incorrect_with_the_computed_value():
    v = check("06.2", answer=0)
    assert v.status == "incorrect" and v.expected == 3 and "percpu-cache" in v.explanation
    assert "not quite" in str(v) and "#D55E00" in v._repr_html_()


def test_answer_forms():
    assert check("03.1", "SGX_INVALID_EINITTOKEN").correct
    assert check("02.1", "no").correct
    assert check("06.4", "PERCPU_CACHE").correct
    assert check("08.1", 25).correct  # within 25 %
    assert not check("08.1", 10).correct


def test_bad_answers_and_ids_name_the_field():
    with pytest.raises(ConfigError) as e:
        check("06.2", answer="three")
    assert e.value.option == "answer"
    with pytest.raises(ConfigError) as e:
        check("06.4", answer="fastest")
    assert e.value.option == "answer"
    with pytest.raises(ConfigError) as e:
        check("02.1", answer=1.5)
    assert e.value.option == "answer"
    with pytest.raises(ConfigError) as e:
        exercise("99.9")
    assert e.value.option == "exercise"


def test_launch_enclave_sample_falls_back(tmp_path):
    real = launch_enclave_sample()
    stand_in = launch_enclave_sample(tmp_path)
    assert not stand_in.real and "stand-in" in stand_in.origin
    assert stand_in.enclave().mrenclave() == stand_in.sigstruct.enclavehash
    assert real.enclave().mrenclave() == real.sigstruct.enclavehash
    # Either way the exercise's answer is the same (03.3 reads the default folder).
    assert solution("03.3").answer == 2


def test_launch_enclave_sample_is_intels_when_vectors_exist(vectors):
    le = launch_enclave_sample()
    assert le.real and le.sigstruct.mrsigner.hex().startswith("acb77012")
