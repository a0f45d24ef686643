"""Figures name methods as the papers do and colour each the same everywhere."""

from __future__ import annotations

from sb3_hypernet.experiments.labels import METHOD_COLOURS, METHOD_LABELS, method_colour, method_label


def test_methods_are_named_as_the_papers_write_them():
    assert [method_label(m) for m in ("rnn_hn", "ti_plus_plus_hn", "vi_hn", "ti_naive", "bi_plus_plus_hn")] == [
        "RNN+HN",
        "TI++HN",
        "VI+HN",
        "TI Naive",
        "BI++HN",
    ]
    assert method_label("rnn_hn_256") == "RNN+HN (state 256)"
    assert method_label("ti_plus_plus_hn_lr3e-4") == "TI++HN (lr3e-4)"  # a variant keeps its suffix
    assert method_label("unknown_method") == "unknown_method"


def test_every_label_has_one_colour_of_its_own():
    on_policy = {label for key, label in METHOD_LABELS.items() if not key.endswith("_hyper")}
    variants = {"RNN+HN (state 256)", "RNN+S (state 256)", "RNN+HN (SB3's loss)"}
    colours = [METHOD_COLOURS[label] for label in on_policy - variants]
    assert len(colours) == len(set(colours))
    assert method_colour("rnn_hn_256") == method_colour("RNN+HN") == method_colour("rnn_hn")
