"""Presentation: what a person sees of a run, a comparison or the policy matrix.

Text for terminals and mailing lists (every line at most 72 columns), HTML
for Jupyter, and the :class:`~sgxlab.present.result.Result` that
:func:`sgxlab.run` returns. This layer only formats: it imports from the
layers below and none of them imports it.
"""
