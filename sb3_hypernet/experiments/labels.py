"""How figures and tables name and colour the methods: as the papers write them (RNN+HN, TI++HN, VI+HN), with one
colour per method in every figure."""

from __future__ import annotations

#: Method key (zoo config name) -> the papers' label.
METHOD_LABELS = {
    "rnn": "RNN",
    "rnn_s": "RNN+S",
    "rnn_hn": "RNN+HN",
    "rnn_film": "FiLM",
    "film": "FiLM",
    "rnn_hn_task_inference": "RNN+HN+TI",
    "ti_naive": "TI Naive",
    "ti": "TI",
    "ti_plus_plus": "TI++",
    "ti_hn": "TI+HN",
    "ti_plus_plus_hn": "TI++HN",
    "bi_plus_plus_hn": "BI++HN",
    "multi_hn": "Multi+HN",
    "vi": "VI",
    "vi_hn": "VI+HN",
    "sac_hyper": "SAC, Hyper critic",
    # Variants measured by the benchmarks.
    "rnn_hn_256": "RNN+HN (state 256)",
    "rnn_s_256": "RNN+S (state 256)",
    "rnn_hn_sb3": "RNN+HN (SB3's loss)",
    "td3_hyper": "TD3, Hyper critic",
}

#: The papers' label -> its colour (matplotlib's tab10 and tab20 colours), the same in every figure.
METHOD_COLOURS = {
    "RNN": "#7f7f7f",
    "RNN+S": "#bcbd22",
    "RNN+HN": "#d62728",
    "FiLM": "#ff9896",
    "RNN+HN+TI": "#9467bd",
    "TI Naive": "#17becf",
    "TI": "#1f77b4",
    "TI++": "#aec7e8",
    "TI+HN": "#2ca02c",
    "TI++HN": "#ff7f0e",
    "BI++HN": "#8c564b",
    "Multi+HN": "#000000",
    "VI": "#c5b0d5",
    "VI+HN": "#e377c2",
    "SAC, Hyper critic": "#d62728",
    "TD3, Hyper critic": "#ff7f0e",
}


def method_label(method: str) -> str:
    """The papers' label of a method key (``"ti_plus_plus_hn"`` -> ``"TI++HN"``); a variant's suffix after the key
    (``"rnn_hn_256"``) is kept, and an unknown key is returned as it is."""
    for key in sorted(METHOD_LABELS, key=len, reverse=True):
        if method == key:
            return METHOD_LABELS[key]
        if method.startswith(key + "_"):
            return f"{METHOD_LABELS[key]} ({method[len(key) + 1 :].replace('_', ' ')})"
    return method


def method_colour(method: str) -> str | None:
    """The colour of a method key or label in every figure (None: matplotlib's next colour)."""
    label = METHOD_LABELS.get(method, method)
    return METHOD_COLOURS.get(label) or METHOD_COLOURS.get(method_label(method).split(" (")[0])
