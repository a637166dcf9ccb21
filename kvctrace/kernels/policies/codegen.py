"""Writes dispatch.py from the registry: ``python -m kvctrace.kernels.policies.codegen``.

Numba compiles the engine once per argument types, so a tier's policy code is a runtime
integer and the hooks it selects must be reachable by plain branches in compiled code (a
tuple of first-class functions would work only as an experimental Numba feature, and a
dispatch built with ``exec`` could not be cached). The branches are therefore written out
here, one function per policy-specific operation of a family (spec.py), one branch per
policy of that family, from ``MODULES``. They are small, so LLVM inlines them into the engine
and the code it runs is what hand-written branches would be.
"""
from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

from . import MODULES
from .spec import FAMILY_NAMES, HEAP, LIST, OWN

TARGET = Path(__file__).with_name("dispatch.py")

# The per-policy part of each family's operations (spec.py): name -> (family, arguments,
# has a result, call). What a family does beyond these (list and heap upkeep) is the engine's.
SITES = {
    "list_on_hit": (LIST, "link, lends, s, b", False, "{m}.on_hit(link, lends, s, b)"),
    "heap_key": (HEAP, "bst, b", True, "{m}.key(bst, b)"),
    "own_init_tier": (OWN, "st, sc, s, capacity", False, "{m}.init_tier(st, sc, s, capacity)"),
    "own_on_hit": (OWN, "st, sc, s, b", False, "{m}.on_hit(st, sc, s, b)"),
    "own_insert": (OWN, "st, sc, s, b, capacity", True, "{m}.insert(st, sc, s, b, capacity)"),
    "own_remove": (OWN, "st, sc, s, b", False, "{m}.remove(st, sc, s, b)"),
}

HEADER = '''"""Policy dispatch for the replay engine (kernels/replay.py): for each policy-specific
operation of a family (spec.py), one branch per policy of that family, selected by the tier's
policy code. GENERATED from the registry (__init__.py) by
``python -m kvctrace.kernels.policies.codegen``; do not edit (a test fails when stale)."""
from __future__ import annotations

from . import {imports}
from .spec import hook

N_POLICIES = {n}
OWN_FIELDS = {fields}  # per-block fields of the OWN-family policies (the largest; state.py)
OWN_SCALARS = {scalars}  # per-tier int64 scalars of the OWN-family policies (the largest)
'''

DECORATOR = '@hook'


def _short(m) -> str:
    return m.__name__.rsplit(".", 1)[1]


def _branches(calls: list[tuple[int, str, str]], returns: bool) -> list[str]:
    """``if code == a or code == b:  # names`` + the call, grouping codes with the same call."""
    groups: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for code, name, call in calls:
        groups[call].append((code, name))
    out = []
    for i, (call, members) in enumerate(groups.items()):
        test = " or ".join(f"code == {c}" for c, _ in members)
        out.append(f"    {'if' if i == 0 else 'elif'} {test}:  # {', '.join(n for _, n in members)}")
        out.append(f"        {'return ' if returns else ''}{call}")
    return out


def render() -> str:
    """The text of dispatch.py for the current registry."""
    own = [m for m in MODULES if m.SPEC.family == OWN]
    parts = [HEADER.format(imports=", ".join(sorted(_short(m) for m in MODULES)), n=len(MODULES),
                           fields=max([m.N_FIELDS for m in own], default=1),
                           scalars=max([m.N_SCALARS for m in own], default=1))]
    family = [(code, m.SPEC.name, f"{m.SPEC.family}  # {FAMILY_NAMES[m.SPEC.family]}")
              for code, m in enumerate(MODULES)]
    parts.append(f"\n{DECORATOR}\ndef family(code):\n" + "\n".join(_branches(family, True)) + "\n    return -1\n")
    for site, (fam, args, returns, template) in SITES.items():
        calls = [(code, m.SPEC.name, template.format(m=_short(m)))
                 for code, m in enumerate(MODULES) if m.SPEC.family == fam]
        body = _branches(calls, returns) + (["    return -1"] if returns else [] if calls else ["    pass"])
        parts.append(f"\n{DECORATOR}\ndef {site}(code, {args}):\n" + "\n".join(body) + "\n")
    return "\n".join(parts)


def main(argv=None) -> int:
    TARGET.write_text(render())
    print(f"wrote {TARGET}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
