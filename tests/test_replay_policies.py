"""Policies as plugins: the registry is the one source of names and codes, the engine's
dispatch (generated) covers every registered policy, every policy has a naive twin, and each
one replays exactly like its twin on random traces (one tier, and stacked with LRU)."""
from __future__ import annotations

import ast
import inspect

import pytest
from hypothesis import given, settings, strategies as st

from kvctrace.kernels import policies
from kvctrace.kernels.policies import codegen, dispatch
from kvctrace.kernels.policies.spec import HEAP, LIST, OWN
from tests.naive import NAIVE_TIERS

from .test_replay_engine import _check_same, traces

NAMES = policies.names()
# hooks each family asks of a policy module (kernels/policies/spec.py)
FAMILY_HOOKS = {LIST: ("on_hit",), HEAP: ("key",),
                OWN: ("N_FIELDS", "N_SCALARS", "init_tier", "on_hit", "insert", "remove")}


def test_codes_are_unique_and_name_the_modules():
    codes = [policies.get(n).code for n in NAMES]
    assert sorted(codes) == list(range(len(policies.MODULES)))
    assert len(set(NAMES)) == len(NAMES) == len(policies.MODULES)
    for n in NAMES:
        assert policies.MODULES[policies.code(n)].SPEC.name == n


def test_online_names_exclude_offline_bounds():
    assert "belady" in NAMES and "belady" not in policies.online_names()
    assert set(policies.online_names()) == {n for n in NAMES if policies.get(n).online}


def test_every_policy_module_has_its_family_hooks():
    for m in policies.MODULES:
        for hook in FAMILY_HOOKS[m.SPEC.family]:
            assert hasattr(m, hook), (m.SPEC.name, hook)


def test_dispatch_module_is_generated_from_the_registry():
    # stale: run `python -m kvctrace.kernels.policies.codegen`
    assert inspect.getsource(dispatch) == codegen.render()


def _codes_tested(fn) -> set[int]:
    """Codes compared against in the branches of a dispatch function's source."""
    tree = ast.parse(inspect.getsource(fn.py_func))
    return {node.comparators[0].value for node in ast.walk(tree)
            if isinstance(node, ast.Compare) and isinstance(node.left, ast.Name) and node.left.id == "code"}


def test_dispatch_covers_every_registered_policy():
    every = set(range(len(policies.MODULES)))
    assert dispatch.N_POLICIES == len(every)
    assert _codes_tested(dispatch.family) == every
    by_family = {f: {policies.code(n) for n in NAMES if policies.MODULES[policies.code(n)].SPEC.family == f}
                 for f in (LIST, HEAP, OWN)}
    assert set().union(*by_family.values()) == every
    sites = {LIST: (dispatch.list_on_hit,), HEAP: (dispatch.heap_key,),
             OWN: (dispatch.own_init_tier, dispatch.own_on_hit, dispatch.own_insert, dispatch.own_remove)}
    for fam, fns in sites.items():
        for fn in fns:
            assert _codes_tested(fn) == by_family[fam], fn.__name__
    for n in NAMES:
        assert dispatch.family(policies.code(n)) == policies.MODULES[policies.code(n)].SPEC.family


def test_every_policy_has_a_naive_twin():
    assert set(NAIVE_TIERS) == set(NAMES)


@pytest.mark.parametrize("policy", NAMES)
@settings(max_examples=40, deadline=None)
@given(tr=traces(), cap=st.integers(0, 10), k=st.integers(1, 2))
def test_policy_one_tier_matches_its_twin(policy, tr, cap, k):
    offsets, blocks, n_unique = tr
    _check_same(offsets, blocks, n_unique, [cap], [policy], [k])


@pytest.mark.parametrize("policy", NAMES)
@settings(max_examples=40, deadline=None)
@given(tr=traces(), caps=st.tuples(st.integers(0, 6), st.integers(0, 6)), below=st.booleans(),
       inclusive=st.booleans(), promote=st.booleans(), demote=st.booleans())
def test_policy_stacked_with_lru_matches_its_twin(policy, tr, caps, below, inclusive, promote, demote):
    offsets, blocks, n_unique = tr
    pols = ["lru", policy] if below else [policy, "lru"]
    _check_same(offsets, blocks, n_unique, list(caps), pols, inclusive=inclusive, promote=promote,
                demote=demote)


def test_unknown_policy_code_is_rejected():
    import numpy as np

    from kvctrace.replay.engine import run_hits
    offsets = np.array([0, 2], np.int64)
    blocks = np.array([0, 1], np.int64)
    with pytest.raises(ValueError):
        run_hits(offsets, blocks, 2, [2, 2], [policies.code("lru"), len(policies.MODULES)], [1, 1])


def test_sieve_hand_moves_on_when_its_block_is_promoted():
    # LRU(1) over SIEVE(2), exclusive: block 2 is promoted out of SIEVE while the hand rests on
    # it; the next eviction must start from its newer neighbour, not from the departed block.
    import numpy as np
    blocks = np.array([1, 2, 4, 3, 2, 3, 0, 4], np.int64)
    _check_same(np.arange(9, dtype=np.int64), blocks, 5, [1, 2], ["lru", "sieve"])
