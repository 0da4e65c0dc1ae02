"""``sgxlab plot KIND --out FILE``: one figure, saved reproducibly, without a notebook.

::

    sgxlab plot latency --workload suspend-resume --seeds 3 --out latency.svg
    sgxlab plot policy-matrix --out matrix.png

KIND is ``msr-traffic``, ``latency`` or ``overhead`` (a comparison of
designs, with the options of ``sgxlab compare``), or ``policy-matrix``
(``--design`` picks the MSR-update design, default always-write). The file
is PNG, SVG or PDF by its suffix; the same command gives byte-identical
files, which carry the sgxlab version and the command that reproduces them.
"""

from __future__ import annotations

import argparse

from sgxlab.cli.compare import FIGURES, add_compare_options, comparison, figure

KINDS = (*FIGURES, "policy-matrix")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("plot", help="save one figure (PNG, SVG or PDF) reproducibly")
    p.add_argument("kind", choices=KINDS, help="which figure")
    p.add_argument("--out", required=True, metavar="FILE", help="the figure file (.png, .svg or .pdf)")
    p.add_argument("--design", default="always-write", help="policy-matrix only: the MSR-update design")
    add_compare_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sgxlab.files import check_writable
    from sgxlab.present.export import FIGURE_SUFFIXES, save_figure

    out = check_writable(args.out, "--out", suffixes=FIGURE_SUFFIXES)
    if args.kind == "policy-matrix":
        from sgxlab.experiments.matrix import policy_matrix
        from sgxlab.host.designs import design_class
        from sgxlab.present.plots import plot_policy_matrix

        design_class(args.design)  # a bad name is a ConfigError before the matrix runs
        fig = plot_policy_matrix(policy_matrix(args.design), subtitle=f"design {args.design}")
    else:
        fig = figure(comparison(args), args.kind)
    save_figure(fig, out)
    print(out)
    return 0
