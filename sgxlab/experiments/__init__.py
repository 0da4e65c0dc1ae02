"""Experiments that combine the layers below: the policy matrix, the debate's claims and the notebooks' exercises."""

from sgxlab.experiments.claims import CLAIMS, Claim, claim, claims_for, claims_html, claims_text
from sgxlab.experiments.exercises import (
    EXERCISES,
    Verdict,
    check,
    exercise,
    exercises_for,
    launch_enclave_sample,
    solution,
)

__all__ = [
    "CLAIMS",
    "EXERCISES",
    "Claim",
    "Verdict",
    "check",
    "claim",
    "claims_for",
    "exercise",
    "exercises_for",
    "claims_html",
    "claims_text",
    "launch_enclave_sample",
    "solution",
]
