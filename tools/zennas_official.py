"""The official Zen-NAS candidate generation, written out as idstcv/ZenNAS does it, as a reference to check against.

``SearchSpace/search_space_{XXBL,IDW_fixfc}.py``: the channel and sub-layer choices of ``global_utils`` and
``gen_search_space`` (an incremental list per block-type group, de-duplicated with ``set``, returned as a list of
lists whose flattening is what ``random.choice`` draws from). ``tests/test_search.py`` checks zendeploy's one-draw
sampler against it; ``tools/bench_search.py`` runs the official loop on it.
"""

from __future__ import annotations

import itertools

from zendeploy.space.registry import BLOCK_TYPES, CONV
from zendeploy.space.units import smart_round


def official_channels(c, upper):
    xs = [c * 2.5, c * 2, c * 1.5, c * 1.25, c, c / 1.25, c / 1.5, c / 2, c / 2.5]
    xs = [max(8, x) for x in xs] if upper is None else [min(upper, max(8, x)) for x in xs]
    out = list(set(smart_round(x, base=8) for x in xs))
    out.sort(reverse=True)
    return out


def official_sublayers(s):
    out = list(set(max(0, round(x)) for x in [s, s + 1, s + 2, s - 1, s - 2]))
    out.sort(reverse=True)
    return out


def official_candidates(block, groups, upper, fixfc):
    """``gen_search_space`` for one block: a list of candidate-string lists (aliasing of the appended lists
    included)."""
    result = []
    if BLOCK_TYPES.get(block.name).family == CONV:
        outs = [block.out_channels] if (fixfc and block.kernel == 1) else official_channels(block.out_channels, upper)
        lst = list(set(f"{block.name}({block.in_channels},{o},{block.stride},1)" for o in outs))
        result.append(lst)
        return result
    for group in groups:
        lst = []
        outs = official_channels(block.out_channels, upper)
        subs = official_sublayers(block.sub_layers)
        btns = official_channels(block.bottleneck, upper)
        for t in group:
            for o, s, b in itertools.product(outs, subs, btns):
                o, b = smart_round(o, 8), smart_round(b, 8)
                if o < 8 or b < 8 or s <= 0:
                    continue
                lst.append(f"{t}({block.in_channels},{o},{block.stride},{b},{s})")
            lst = list(set(lst))
            result.append(lst)
    return result
