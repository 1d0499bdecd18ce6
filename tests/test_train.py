"""`python -m mnist_sum.train` runs end to end on a tiny IDX data set, and the seed fixes the weights."""

import json
import os

import pytest
import torch

from mnist_sum import evaluate, load_model
from mnist_sum.data import PEN_DIR
from mnist_sum.train import build_parser, cpu_has_fast_bf16, main, pick_precision
from mnist_sum.weights import SHIPPED_WEIGHTS, read_metadata


def test_smoke_run_writes_loadable_weights_curves_and_metadata(tiny_mnist, tmp_path, capsys):
    out = tmp_path / "run" / "w.safetensors"
    main(["--data-dir", tiny_mnist, "--epochs", "2", "--batch-size", "16", "--max-steps", "8",
          "--threads", "1", "--out", str(out)])
    printed = capsys.readouterr().out
    assert printed.startswith("config: {")
    assert "epoch: 0 train loss:" in printed and "epoch: 1 train loss:" in printed and "test digit:" in printed
    load_model(out)
    assert out.with_suffix(".curves.png").stat().st_size > 1000
    assert out.with_suffix(".train.log").read_text().splitlines()[1].startswith("epoch: 0 train loss:")
    meta = read_metadata(out)
    assert meta["train_args"]["max_steps"] == 8 and len(meta["metrics"]["history"]) == 2


def test_same_seed_and_threads_give_the_same_weights(tiny_mnist, tmp_path):
    paths = [tmp_path / f"{name}.safetensors" for name in ("a", "b", "c")]
    for path, seed in zip(paths, (0, 0, 1)):
        main(["--data-dir", tiny_mnist, "--max-steps", "3", "--batch-size", "16", "--threads", "1", "--no-eval",
              "--seed", str(seed), "--out", str(path)])
    a, b, c = (load_model(p).state_dict() for p in paths)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_help_lists_every_hyperparameter_with_its_default():
    out = " ".join(build_parser().format_help().split())  # argparse wraps lines
    for flag in ("--data-dir", "--epochs", "--batch-size", "--lr", "--seed", "--device", "--precision", "--out",
                 "--max-steps", "--pen", "--pen-dir", "--pen-holdout", "--redraw", "--outlier-weight", "--init"):
        assert flag in out
    for default in ("(default: 5, or 3 with --pen)", "(default: 128)", "(default: 0.002, or 0.001 with --pen)",
                    "(default: auto)", "(default: data)"):
        assert default in out


def test_init_starts_from_the_given_weights_and_records_them(tiny_mnist, tmp_path):
    start, same, moved = (tmp_path / f"{name}.safetensors" for name in ("start", "same", "moved"))
    common = ["--data-dir", tiny_mnist, "--batch-size", "16", "--threads", "1", "--no-eval"]
    main(common + ["--max-steps", "2", "--out", str(start)])
    main(common + ["--max-steps", "0", "--init", str(start), "--out", str(same)])  # no step: the weights as given
    main(common + ["--max-steps", "2", "--init", str(start), "--out", str(moved)])
    a, b, c = (load_model(p).state_dict() for p in (start, same, moved))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    assert read_metadata(moved)["train_args"]["init"] == os.path.relpath(start)


def test_a_default_run_never_touches_the_shipped_weights(tiny_mnist, tmp_path, monkeypatch, capsys):
    shipped = [SHIPPED_WEIGHTS, SHIPPED_WEIGHTS.with_suffix(".train.log"), SHIPPED_WEIGHTS.with_suffix(".curves.png")]
    before = [p.read_bytes() for p in shipped]
    monkeypatch.chdir(tmp_path)  # runs/ is created in the working folder
    main(["--data-dir", tiny_mnist, "--max-steps", "2", "--batch-size", "16", "--threads", "1"])
    assert [p.read_bytes() for p in shipped] == before
    (written,) = (tmp_path / "runs").glob("*/mnist_sum.safetensors")
    assert f"writing to {written.relative_to(tmp_path)}" in capsys.readouterr().out
    load_model(written)
    args = read_metadata(written)["train_args"]
    assert args["out"] == str(written.relative_to(tmp_path))
    paths = [v for v in args.values() if isinstance(v, str) and os.sep in v]
    assert paths and not any(os.path.isabs(v) for v in paths), args  # no machine's absolute paths recorded


def test_precision_choice():
    cpu = torch.device("cpu")
    assert pick_precision("auto", cpu) == ("bf16" if cpu_has_fast_bf16() else "fp32")
    assert pick_precision("fp32", cpu) == "fp32" and pick_precision("bf16", cpu) == "bf16"
    with pytest.raises(ValueError, match="fp16 needs CUDA"):
        pick_precision("fp16", cpu)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_mixed_precision_keeps_float32_weights_and_records_what_ran(tiny_mnist, tmp_path, precision):
    out = tmp_path / f"{precision}.safetensors"
    main(["--data-dir", tiny_mnist, "--max-steps", "3", "--batch-size", "16", "--threads", "1", "--no-eval",
          "--precision", precision, "--out", str(out)])
    state = load_model(out).state_dict()  # load_model itself refuses any dtype but the model's own
    assert all(t.dtype in (torch.float32, torch.int64) for t in state.values())
    assert read_metadata(out)["train_args"]["precision"] == precision


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_run_with_automatic_precision_saves_loadable_weights(tiny_mnist, tmp_path):
    out = tmp_path / "cuda.safetensors"
    main(["--data-dir", tiny_mnist, "--max-steps", "3", "--batch-size", "16", "--device", "cuda",
          "--precision", "auto", "--out", str(out)])
    assert read_metadata(out)["train_args"]["precision"] in ("bf16", "fp16")
    load_model(out)


def test_evaluate_prints_the_json_figures_and_the_sketch_table(tiny_mnist, tmp_path, capsys):
    out = tmp_path / "w.safetensors"
    main(["--data-dir", tiny_mnist, "--max-steps", "2", "--batch-size", "16", "--threads", "1", "--no-eval",
          "--out", str(out)])
    capsys.readouterr()
    evaluate.main(["--weights", str(out), "--data-dir", tiny_mnist, "--json"])
    figures = json.loads(capsys.readouterr().out)
    assert set(figures) == {"digit_accuracy", "sum_accuracy", "consistency", "n"} and figures["n"] == 32
    assert all(0 <= figures[k] <= 1 for k in ("digit_accuracy", "sum_accuracy", "consistency"))
    evaluate.main(["--weights", str(out), "--data-dir", tiny_mnist, "--sketches", "--limit", "2"])
    table = capsys.readouterr().out.splitlines()
    assert [row.split()[0] for row in table] == ["format", "dark_on_light", "light_on_dark", "alpha", "colour", "all"]
    assert table[-1].split()[1] == "8"  # 2 digits x 4 formats


def test_evaluate_pen_reports_unseen_sources_with_the_naive_baseline(tiny_mnist, tmp_path, capsys):
    out = tmp_path / "w.safetensors"
    main(["--data-dir", tiny_mnist, "--max-steps", "2", "--batch-size", "16", "--threads", "1", "--no-eval",
          "--out", str(out)])
    capsys.readouterr()
    evaluate.main(["--weights", str(out), "--pen", str(PEN_DIR), "--limit", "12", "--workers", "1", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert report["sources"] == ["apa", "apb", "app", "ced", "syn", "val"]  # MNIST-only: every source is unseen
    digits = report["digits"]["all"]
    assert digits["n"] == 12 and report["letters"]["n"] == 12
    assert sum(s["n"] for s in report["digits"]["sources"].values()) == 12
    for key in ("digit_accuracy", "sum_accuracy", "naive_digit_accuracy", "flagged"):
        assert 0 <= digits[key] <= 1
    assert digits["flagged"] == 0  # weights without a threshold call every drawing a digit
    evaluate.main(["--weights", str(out), "--pen", str(PEN_DIR), "--sources", "val", "--limit", "3",
                   "--workers", "1"])
    table = capsys.readouterr().out
    assert "sources chosen with --sources" in table and "\nval " in table and "\napa " not in table


def test_held_out_sources_come_from_the_weights(tmp_path):
    from mnist_sum.model import MNISTSumNet
    from mnist_sum.weights import save_weights

    sources = ("apa", "apb", "app", "ced", "syn", "val")
    cases = {"apa,val": ("apa", "val"), "": sources}
    for holdout, expected in cases.items():
        path = save_weights(MNISTSumNet(), tmp_path / f"{holdout or 'all'}.safetensors",
                            train_args={"pen": True, "pen_holdout": holdout})
        chosen, only_kept_out, note = evaluate.unseen_sources(path, sources)
        assert chosen == expected
        assert only_kept_out == (holdout == "") == ("kept-out writers" in note)


def test_a_rotation_refuses_runs_without_or_with_overlapping_held_out_sources(tmp_path):
    from mnist_sum.model import MNISTSumNet
    from mnist_sum.weights import save_weights

    paths = {}
    for name, args in {"mnist": {}, "every": {"pen": True, "pen_holdout": ""},
                       "va": {"pen": True, "pen_holdout": "val,apa"}, "ap": {"pen": True, "pen_holdout": "apa"}}.items():
        paths[name] = str(save_weights(MNISTSumNet(), tmp_path / f"{name}.safetensors", train_args=args))
    for pair, why in ((("va", "mnist"), "held out no pen source"), (("va", "every"), "held out no pen source"),
                      (("va", "ap"), "overlapping sources")):
        with pytest.raises(SystemExit, match=why):  # refused at once, before any drawing
            evaluate.main(["--pen", str(PEN_DIR), "--weights", ",".join(paths[k] for k in pair)])
