"""The reference-checkout loader the fidelity scripts share, and the pieces of CSMPN's curve mode
that run without the reference code (the checkout itself is not available in CI)."""

import math
import sys

import pytest

from examples.reference import import_checkout, import_checkout_file


def test_missing_checkout_names_the_file_and_the_repository(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        import_checkout(tmp_path, "pkg.models.net", "Net", "CSMPN", "https://example.org/csmpn")
    message = str(err.value)
    assert str(tmp_path) in message
    assert "holds no pkg/models/net.py: not a CSMPN checkout" in message
    assert "https://example.org/csmpn" in message
    with pytest.raises(FileNotFoundError, match=r"holds no engineer/schedulers/cosine\.py"):
        import_checkout_file(tmp_path, "engineer/schedulers/cosine.py", "CSMPN", "https://example.org/csmpn")


def test_checkout_import_stubs_the_training_framework(tmp_path, monkeypatch):
    """A model module that builds ``engineer``'s metrics imports without the framework installed."""
    pkg = tmp_path / "fakeref_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "model.py").write_text(
        "from engineer.metrics.metrics import Loss, MetricCollection\n"
        "class Net:\n"
        "    def __init__(self):\n"
        "        self.metrics = MetricCollection({'loss': Loss()})\n"
    )
    monkeypatch.setattr(sys, "path", list(sys.path))
    stubbed = ("engineer", "engineer.metrics", "engineer.metrics.metrics")
    for name in (*stubbed, "fakeref_pkg", "fakeref_pkg.model"):  # sys.modules as it was afterwards
        monkeypatch.setitem(sys.modules, name, None)
        monkeypatch.delitem(sys.modules, name)
    net_class = import_checkout(tmp_path, "fakeref_pkg.model", "Net", "fake", "https://example.org")
    assert net_class().metrics == {}
    sched = import_checkout_file(tmp_path, "fakeref_pkg/model.py", "fake", "https://example.org")
    assert sched.Net is not net_class  # imported on its own, not through the package


def test_both_fidelity_scripts_report_a_missing_checkout(tmp_path):
    from examples.nbody import compare_cgenn
    from examples.zoo import compare_csmpn

    with pytest.raises(FileNotFoundError, match="not a CGENN checkout"):
        compare_cgenn.main(["--cgenn-dir", str(tmp_path)])
    with pytest.raises(FileNotFoundError, match="not a CSMPN checkout"):
        compare_csmpn.main(["--csmpn-dir", str(tmp_path), "--curve", "--steps", "2"])


def test_curve_schedule_is_the_reference_warmup_and_cosine_decay():
    """``csmpn/hulls.py``: warm-up steps // 64, decay steps // 4 (half cosines), full rate between."""
    from examples.zoo.compare_csmpn import lr_factor

    steps = 256  # warm-up 4 steps, decay from step 192 to 256
    assert lr_factor(0, steps) == 0.0
    assert lr_factor(2, steps) == pytest.approx(0.5)
    assert [lr_factor(t, steps) for t in (4, 100, 191)] == [1.0, 1.0, 1.0]
    assert lr_factor(192, steps) == 1.0
    assert lr_factor(224, steps) == pytest.approx(0.5)
    assert lr_factor(255, steps) == pytest.approx(0.5 + 0.5 * math.cos(math.pi * 63 / 64))
    assert [lr_factor(t, 16) for t in range(12)] == [1.0] * 12  # too short to warm up
    assert lr_factor(14, 16) == pytest.approx(0.5)


def test_curve_summary_and_plot(tmp_path):
    from examples.harness import write_csv
    from examples.zoo.compare_csmpn import plot_curves, read_curves, summarise

    for seed, ours in ((0, [1.0, 0.5, 0.25]), (1, [1.0, 0.6, 0.3])):
        rows = [
            {"seed": seed, "step": 4 * i, "val_mse_reference": ref, "val_mse_gatorch": mine}
            for i, (ref, mine) in enumerate(zip([1.0, 0.5, 0.26], ours, strict=True))
        ]
        write_csv(rows, tmp_path / f"curve_seed{seed}.csv")
    rows = read_curves(tmp_path)
    better, total, excess = summarise(rows)
    assert (better, total) == (4, 6)  # seed 1 is above at steps 4 and 8
    assert excess == pytest.approx(0.2)
    png = plot_curves(rows, tmp_path / "curve.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
