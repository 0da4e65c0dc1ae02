"""Who argued what about SGX Launch Control, 2017 to 2021: a typed table of claims.

Each claim is paraphrased in one sentence and names its author, its date, a
lore.kernel.org link, the notebook that tests it and the experiment or
exercise that does. :func:`claims_text` and :func:`claims_html` render it.

Decisions
---------
* **Sources.** The 2017 claims come from the thread excerpt in
  ``../shared/seed``; the later ones from ``../shared/reference``, which
  gives their Message-IDs. Each claim keeps an ``anchor``: a few words that
  occur verbatim in its source file, so a test can check the attribution.
* **Dates of the 2017 claims.** The excerpt has lost its quote markers: it is
  Kai Huang's reply to Andy Lutomirski's message of 12 May 2017, which
  quoted Kai's of 11 May 2017 and, inside it, earlier messages. Only Kai's
  first lines sit right under a dated header (11 May); every other claim is
  dated to the month (``"2017-05"``) rather than guessed.
* **Links.** The excerpt carries no Message-IDs, so a 2017 claim links to a
  lore search for the thread's subject, author and days; a later claim links
  to ``https://lore.kernel.org/r/<Message-ID>`` (or the link the reference
  gives for a merged commit).
* **What tests a claim.** ``test`` is an exercise id of
  :mod:`sgxlab.experiments.exercises` (``"06.2"``) or the dotted name of a
  function sgxlab has (``"sgxlab.experiments.matrix.policy_matrix"``).
"""

from __future__ import annotations

import html
import re
import textwrap
from dataclasses import dataclass
from typing import Final

from sgxlab.errors import ConfigError

__all__ = [
    "Claim",
    "CLAIMS",
    "NOTEBOOKS",
    "THREAD_SEARCH",
    "claim",
    "claims_for",
    "claims_text",
    "claims_html",
]

NOTEBOOKS: Final[tuple[str, ...]] = (
    "00-start-here",
    "01-the-2017-debate",
    "02-launch-control-hardware",
    "03-einit-up-close",
    "04-kvm-lewr-and-lehash",
    "05-host-policies-and-the-little-vm",
    "06-what-each-design-costs",
    "07-sweeps-for-researchers",
    "08-what-linux-merged-and-why",
)
"""The notebook series (``notebooks/<name>.py``), in reading order."""

THREAD_SEARCH: Final[str] = "https://lore.kernel.org/kvm/?q=s%3A%22Basic+KVM+SGX+Virtualization+support%22"
"""A lore search for the May 2017 thread ("Basic KVM SGX Virtualization support")."""

_DATE = re.compile(r"\d{4}-\d{2}(-\d{2})?")
_SOURCES = ("seed", "linux-kvm-qemu.md", "hardware-and-einit.md")


def _search(author: str, days: str) -> str:
    """A lore search link for the 2017 thread, narrowed to one author and a span of days."""
    return f"{THREAD_SEARCH}+f%3A{author}+d%3A{days}"


@dataclass(frozen=True)
class Claim:
    """One position in the debate, paraphrased.

    ``date`` is ISO ``YYYY-MM-DD`` (or ``YYYY-MM`` when the source gives only
    the month); ``source`` is ``"seed"`` (the 2017 thread excerpt) or a
    file of ``../shared/reference``; ``anchor`` is a few words found
    verbatim there; ``message_id`` is empty when the source gives none.
    """

    id: str
    author: str
    date: str
    link: str
    paraphrase: str
    notebook: str
    test: str
    source: str
    anchor: str
    message_id: str = ""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"C\d{2}", self.id):
            raise ConfigError("id", self.id, "a claim id is C followed by two digits")
        if not _DATE.fullmatch(self.date):
            raise ConfigError("date", self.date, "expected YYYY-MM-DD or YYYY-MM")
        if not self.link.startswith(("https://lore.kernel.org/", "https://lkml.kernel.org/")):
            raise ConfigError("link", self.link, "expected a lore.kernel.org (or lkml.kernel.org) link")
        if self.message_id and self.message_id not in self.link:
            raise ConfigError("link", self.link, f"does not carry the Message-ID {self.message_id}")
        if self.notebook not in NOTEBOOKS:
            raise ConfigError("notebook", self.notebook, f"expected one of {', '.join(NOTEBOOKS)}")
        if self.source not in _SOURCES:
            raise ConfigError("source", self.source, f"expected one of {', '.join(_SOURCES)}")
        for name in ("author", "paraphrase", "test", "anchor"):
            if not getattr(self, name).strip():
                raise ConfigError(name, getattr(self, name), "must not be empty")

    @property
    def year(self) -> int:
        return int(self.date[:4])


_KAI_11 = _search("kai.huang", "20170511..20170512")
_KAI_MAY = _search("kai.huang", "20170501..20170531")
_ANDY_MAY = _search("luto", "20170501..20170531")


def _lore(message_id: str) -> str:
    return f"https://lore.kernel.org/r/{message_id}"


CLAIMS: Final[tuple[Claim, ...]] = (
    # -- May 2017: the thread excerpt ---------------------------------------
    Claim(
        "C01", "Kai Huang", "2017-05-11", _KAI_11,
        "Writing the four hash MSRs on every vCPU schedule-in need not be slow, "
        "since KVM already does heavier work (a VMCS load, other MSRs) there.",
        "06-what-each-design-costs", "06.1", "seed", "vcpu is schedule in",
    ),
    Claim(
        "C02", "Andy Lutomirski", "2017-05", _ANDY_MAY,
        "These MSRs may well be unoptimized and unusually slow to write.",
        "07-sweeps-for-researchers", "07.1", "seed", "rather unoptimized",
    ),
    Claim(
        "C03", "Andy Lutomirski", "2017-05", _ANDY_MAY,
        "Keep the current hash in a per-CPU variable under a lock (probably a "
        "mutex); before EINIT compare it with the wanted hash and WRMSR only "
        "when they differ.",
        "06-what-each-design-costs", "06.2", "seed", "Have a percpu variable",
    ),
    Claim(
        "C04", "Andy Lutomirski", "2017-05", _ANDY_MAY,
        "KVM should keep a guest's hash writes in memory, trap and emulate "
        "EINIT, and do nothing on guest entry or exit.",
        "04-kvm-lewr-and-lehash", "04.2", "seed", "trap and emulate",
    ),
    Claim(
        "C05", "Kai Huang", "2017-05", _KAI_MAY,
        "A per-CPU copy is optional because EINIT is not on a hot path: just "
        "read the MSRs and compare them with the new value.",
        "06-what-each-design-costs", "06.3", "seed", "read old value from MSRs",
    ),
    Claim(
        "C06", "Andy Lutomirski", "2017-05", _ANDY_MAY,
        "KVM will want to trap EINIT anyway, so that one launch policy can "
        "cover guests as well as the host.",
        "05-host-policies-and-the-little-vm", "05.2", "seed", "want to trap EINIT",
    ),
    Claim(
        "C07", "Kai Huang", "2017-05", _KAI_MAY,
        "Virtualization should just emulate hardware: if a real machine can "
        "run any launch enclave, so should a VM whose FEATURE_CONTROL bit 17 is set.",
        "05-host-policies-and-the-little-vm", "05.3", "seed", "emulating hardware behavior",
    ),
    Claim(
        "C08", "Andy Lutomirski", "2017-05", _ANDY_MAY,
        "Two policies make sense, allow everything or allow some and keep VMs "
        "at least as strict as host root, or else host code just starts a "
        "little VM to run what the host forbids.",
        "05-host-policies-and-the-little-vm", "05.1", "seed", "little VM",
    ),
    Claim(
        "C09", "Kai Huang", "2017-05", _KAI_MAY,
        "QEMU gets -sgx epc=<size>,lehash=<hash>,lewr: the EPC size, the "
        "guest's initial hash, and whether the guest may rewrite it.",
        "04-kvm-lewr-and-lehash", "04.1", "seed", "-sgx epc=<size>,lehash=",
    ),
    Claim(
        "C10", "Kai Huang", "2017-05", _KAI_MAY,
        "A host that allows one launch enclave creates only guests without "
        "lewr whose lehash is that enclave's: they see bit 17 clear.",
        "05-host-policies-and-the-little-vm", "05.4", "seed", "allows one single LE",
    ),
    Claim(
        "C11", "Kai Huang", "2017-05", _KAI_MAY,
        "For several allowed enclaves, lewr would not match hardware, so refuse "
        "lewr and accept only an approved lehash at VM creation.",
        "05-host-policies-and-the-little-vm", "05.3", "seed", "One compromise solution",
    ),
    # -- 2019-2021: the reference notes -------------------------------------
    Claim(
        "C12", "Sean Christopherson, Jarkko Sakkinen", "2019-10-28",
        _lore("20191028210324.12475-11-jarkko.sakkinen@linux.intel.com"),
        "The driver's sgx_einit() keeps a per-CPU cache of the hash, writes "
        "only changed words, and on an invalid-token error rewrites all four "
        "and runs EINIT again.",
        "08-what-linux-merged-and-why", "08.2", "linux-kvm-qemu.md", "sgx_lepubkeyhash_cache",
        "20191028210324.12475-11-jarkko.sakkinen@linux.intel.com",
    ),
    Claim(
        "C13", "Sean Christopherson", "2020-09-21",
        _lore("20200921181021.GA24481@linux.intel.com"),
        "The hash MSRs go back to Intel's key whenever the EPC is lost, as in "
        "suspend and resume, so the cache may be stale at any moment.",
        "02-launch-control-hardware", "02.2", "linux-kvm-qemu.md", "suspend/resume cycle",
        "20200921181021.GA24481@linux.intel.com",
    ),
    Claim(
        "C14", "Borislav Petkov", "2020-09-22",
        _lore("20200922082918.GC22660@zn.tnic"),
        "If EINIT is that costly, WRMSR cycles hardly matter: skip the cache "
        "and simply write the four MSRs.",
        "08-what-linux-merged-and-why", "08.1", "linux-kvm-qemu.md", "20200922082918.GC22660@zn.tnic",
        "20200922082918.GC22660@zn.tnic",
    ),
    Claim(
        "C15", "Sean Christopherson", "2020-09-22",
        _lore("20200922162944.GA30874@linux.intel.com"),
        "Writing the hash MSRs costs over 1,200 cycles, nothing beside an "
        "EINIT of about 60,000: write them, then EINIT.",
        "08-what-linux-merged-and-why", "08.1", "linux-kvm-qemu.md", "1200+ cycles",
        "20200922162944.GA30874@linux.intel.com",
    ),
    Claim(
        "C16", "Jarkko Sakkinen", "2020-09-22",
        _lore("20200922115010.GA102220@linux.intel.com"),
        "Start with the simple always-write and fix it only if it ever becomes "
        "a bottleneck.",
        "08-what-linux-merged-and-why", "08.3", "linux-kvm-qemu.md", "always-update-MSRs",
        "20200922115010.GA102220@linux.intel.com",
    ),
    Claim(
        "C17", "Jarkko Sakkinen", "2020-11-18",
        "https://lkml.kernel.org/r/20201112220135.165028-15-jarkko@kernel.org",
        "Merged for Linux 5.11: with preemption off, write all four MSRs and "
        "run EINIT, retrying only on an interrupted EINIT; no cache, no RDMSR.",
        "08-what-linux-merged-and-why", "08.3", "linux-kvm-qemu.md", "9d0c151b41fed7b879030f4e533143d098781701",
        "20201112220135.165028-15-jarkko@kernel.org",
    ),
    Claim(
        "C18", "Greg Wettstein", "2020-11-21",
        _lore("20201121151259.GA3948@wind.enjellic.com"),
        "The driver as posted initializes any enclave except those asking for "
        "the PROVISIONKEY attribute.",
        "05-host-policies-and-the-little-vm", "05.6", "linux-kvm-qemu.md", "PROVISION_KEY attribute bit",
        "20201121151259.GA3948@wind.enjellic.com",
    ),
    Claim(
        "C19", "Sean Christopherson (posted by Kai Huang)", "2021-04-12",
        _lore("57c92fa4d2083eb3be9e6355e3882fc90cffea87.1618196135.git.kai.huang@intel.com"),
        "Switching the hash MSRs on every VM entry and exit costs too much "
        "(about 400 cycles a WRMSR on Skylake), while trapping EINIT adds "
        "about 1,500 cycles to tens of thousands.",
        "04-kvm-lewr-and-lehash", "04.3", "linux-kvm-qemu.md", "~1500 cycle overhead",
        "57c92fa4d2083eb3be9e6355e3882fc90cffea87.1618196135.git.kai.huang@intel.com",
    ),
)  # fmt: skip
"""Every claim, in the order the debate made them."""


def claim(claim_id: str) -> Claim:
    """The claim with id ``claim_id`` (``"C03"``); :class:`ConfigError` if none."""
    for c in CLAIMS:
        if c.id == claim_id:
            return c
    raise ConfigError("claim_id", claim_id, f"unknown claim; ids run {CLAIMS[0].id}..{CLAIMS[-1].id}")


def claims_for(notebook: str) -> tuple[Claim, ...]:
    """The claims a notebook tests (``notebook`` as in :data:`NOTEBOOKS`)."""
    if notebook not in NOTEBOOKS:
        raise ConfigError("notebook", notebook, f"expected one of {', '.join(NOTEBOOKS)}")
    return tuple(c for c in CLAIMS if c.notebook == notebook)


def _select(claims: tuple[Claim, ...] | None) -> tuple[Claim, ...]:
    chosen = CLAIMS if claims is None else tuple(claims)
    for c in chosen:
        if not isinstance(c, Claim):
            raise ConfigError("claims", c, "expected Claim objects (sgxlab.experiments.claims.CLAIMS)")
    return chosen


def claims_text(claims: tuple[Claim, ...] | None = None, width: int = 72) -> str:
    """The claims as plain text, every line at most ``width`` columns (≥ 40).

    One block per claim: id, date and author, the paraphrase, then where it
    is tested and the link (a link longer than the width goes on its own
    line, unbroken; it is the only thing that may be longer).
    """
    if isinstance(width, bool) or not isinstance(width, int) or width < 40:
        raise ConfigError("width", width, "expected an integer of at least 40 columns")
    blocks = []
    for c in _select(claims):
        head = f"{c.id}  {c.date}  {c.author}"
        lines = textwrap.wrap(head, width, subsequent_indent="    ")
        lines += textwrap.wrap(c.paraphrase, width, initial_indent="    ", subsequent_indent="    ")
        lines += textwrap.wrap(f"tested in {c.notebook} by {c.test}", width, initial_indent="    ",
                               subsequent_indent="    ")  # fmt: skip
        link = f"    {c.link}"
        lines.append(link if len(link) <= width else c.link)
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def claims_html(claims: tuple[Claim, ...] | None = None) -> str:
    """The claims as an HTML table (escaped; one row per claim, the link clickable)."""
    rows = []
    for c in _select(claims):
        cells = (
            html.escape(c.id),
            html.escape(c.date),
            html.escape(c.author),
            html.escape(c.paraphrase),
            f"<code>{html.escape(c.notebook)}</code>",
            f"<code>{html.escape(c.test)}</code>",
            f'<a href="{html.escape(c.link, quote=True)}">lore</a>',
        )
        rows.append("<tr>" + "".join(f"<td>{x}</td>" for x in cells) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("id", "date", "author", "claim", "notebook", "tested by", "source"))
    return f'<table class="sgxlab-claims"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
