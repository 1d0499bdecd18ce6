"""`python -m mnist_sum.train` runs end to end on a tiny IDX data set, and the seed fixes the weights."""

import json
import os

import pytest
import torch

from mnist_sum import evaluate, load_model
from mnist_sum.data import one_hot
from mnist_sum.pen import PEN_DIR
from mnist_sum.model import MNISTSumNet
from mnist_sum.train import (batches_per_epoch, build_parser, calibrate, cpu_has_fast_bf16, distill_loss, main,
                             pick_precision, resolve_defaults)
from mnist_sum.weights import EXERCISE_WEIGHTS, SHIPPED_MODELS, read_metadata


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


def test_an_epoch_whose_last_batch_would_hold_one_image_leaves_it_out(tiny_mnist, tmp_path):
    """96 images in batches of 19: five full batches and one image, which BatchNorm cannot train on alone."""
    assert [batches_per_epoch(n, 19) for n in (95, 96, 97, 19, 1)] == [5, 5, 6, 1, 0]
    out = tmp_path / "w.safetensors"
    main(["--data-dir", tiny_mnist, "--epochs", "1", "--batch-size", "19", "--threads", "1", "--no-eval",
          "--out", str(out)])
    load_model(out)


def test_help_lists_every_hyperparameter_with_its_default():
    out = " ".join(build_parser().format_help().split())  # argparse wraps lines
    for flag in ("--data-dir", "--epochs", "--batch-size", "--lr", "--seed", "--device", "--precision", "--out",
                 "--max-steps", "--pen", "--pen-dir", "--pen-holdout", "--redraw", "--outlier-weight", "--init",
                 "--distill", "--pen-jitter", "--ema"):
        assert flag in out
    for default in ("(default: 5, or 3 with --pen)", "(default: 128)", "(default: 0.002, or 0.001 with --pen)",
                    "(default: auto)", "(default: data)", "(default: 0, or 0.5 with --pen)",
                    "with --pen the exercise's mnist_sum/weights/exercise.safetensors"):
        assert default in out


def test_the_pen_run_continues_the_exercise_and_distils_only_from_weights_it_starts_from():
    pen = resolve_defaults(build_parser().parse_args(["--pen"]))
    assert (pen.epochs, pen.lr, pen.redraw, pen.distill, pen.pen_jitter, pen.ema) == (3, 1e-3, 20_000, 0.5, 1, 0.998)
    assert pen.init == str(EXERCISE_WEIGHTS) and EXERCISE_WEIGHTS.is_file()
    scratch = resolve_defaults(build_parser().parse_args(["--pen", "--init", "none"]))
    assert scratch.init is None and scratch.distill == 0
    exercise = resolve_defaults(build_parser().parse_args([]))
    assert (exercise.epochs, exercise.lr, exercise.redraw, exercise.init, exercise.distill, exercise.ema) == \
        (5, 2e-3, 0, None, 0, 0)
    with pytest.raises(ValueError, match="--distill needs --init"):
        resolve_defaults(build_parser().parse_args(["--distill", "1"]))


def test_distill_loss_is_zero_against_itself_and_pulls_towards_the_teacher():
    torch.manual_seed(0)
    teacher, student = MNISTSumNet().eval(), MNISTSumNet()
    images, numbers = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    mask = torch.tensor([True] * 5 + [False] * 3)
    with torch.no_grad():
        own = teacher(images, one_hot(numbers))[0]
        assert distill_loss(teacher, images, numbers, own, mask, "cpu", "fp32").abs() < 1e-5
        assert distill_loss(teacher, images, numbers, own, torch.zeros(8, dtype=torch.bool), "cpu", "fp32") == 0
    student_logits = student(images, one_hot(numbers))[0]
    loss = distill_loss(teacher, images, numbers, student_logits, mask, "cpu", "fp32")
    assert loss > 0
    loss.backward()
    assert all(p.grad is None for p in teacher.parameters())  # the teacher stays as it is
    assert sum(float(p.grad.abs().sum()) for p in student.parameters() if p.grad is not None) > 0


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
    shipped = [path.with_suffix(suffix) for path in SHIPPED_MODELS.values()
               for suffix in (".safetensors", ".train.log", ".curves.png")]
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
    from mnist_sum.weights import save_weights

    paths = {}
    for name, args in {"mnist": {}, "every": {"pen": True, "pen_holdout": ""},
                       "va": {"pen": True, "pen_holdout": "val,apa"}, "ap": {"pen": True, "pen_holdout": "apa"}}.items():
        paths[name] = str(save_weights(MNISTSumNet(), tmp_path / f"{name}.safetensors", train_args=args))
    for pair, why in ((("va", "mnist"), "held out no pen source"), (("va", "every"), "held out no pen source"),
                      (("va", "ap"), "overlapping sources")):
        with pytest.raises(SystemExit, match=why):  # refused at once, before any drawing
            evaluate.main(["--pen", str(PEN_DIR), "--weights", ",".join(paths[k] for k in pair)])


def test_ema_saves_the_moving_average_of_the_steps_weights(tiny_mnist, tmp_path):
    """Training is the same with or without --ema; only what is saved differs. After two steps w1, w2, decay d
    saves d * w1 + (1 - d) * w2, so the runs at 0.5 and 0.25 and the plain one (w2) must satisfy
    ema(0.25) = (ema(0.5) + w2) / 2."""
    common = ["--data-dir", tiny_mnist, "--batch-size", "16", "--threads", "1", "--no-eval", "--max-steps", "2",
              "--precision", "fp32"]
    paths = {d: tmp_path / f"ema{d}.safetensors" for d in ("0", "0.5", "0.25")}
    for decay, path in paths.items():
        main(common + ["--ema", decay, "--out", str(path)])
    plain, half, quarter = (load_model(paths[d]).state_dict() for d in ("0", "0.5", "0.25"))
    floats = [k for k in plain if plain[k].is_floating_point()]
    assert not all(torch.equal(plain[k], half[k]) for k in floats)
    for k in floats:
        torch.testing.assert_close(quarter[k], (half[k] + plain[k]) / 2, atol=1e-6, rtol=1e-5)


def test_threshold_is_the_lower_quantile_of_kept_out_pen_and_unseen_redrawn_digits(tiny_mnist):
    from mnist_sum.data import open_split
    from mnist_sum.pen_training import redrawn_mnist

    pixels = open_split(tiny_mnist, train=True, seed=0).pixels
    _, trained = redrawn_mnist(pixels, 40, seed=0, workers=1)
    _, unseen = redrawn_mnist(pixels, 40, seed=0, workers=1, skip=40)
    assert len(unseen) and not set(trained.tolist()) & set(unseen.tolist())  # skip: other digits than training's
    torch.manual_seed(0)
    rate = 0.1
    r = calibrate(MNISTSumNet().eval(), PEN_DIR, ("apa", "apb", "app", "ced", "syn"), rate, 0, pixels, 40, skip=40)
    assert r["threshold"] == min(r["quantiles"].values())
    assert r["n"]["redrawn"] == len(unseen) and r["n"]["pen"] > 100  # the val site's calibration writers
    for kind, n in r["n"].items():  # neither set has more than the flag rate flagged (to one item)
        assert r["flagged"][kind] <= rate + 1 / n
    lower = min(r["quantiles"], key=r["quantiles"].get)
    assert r["flagged"][lower] >= rate - 1 / r["n"][lower]  # the set that sets the threshold has its full share


def test_too_few_mnist_digits_left_to_calibrate_on_is_refused_before_training(tiny_mnist, tmp_path):
    out = tmp_path / "w.safetensors"
    with pytest.raises(SystemExit, match="--calibration-redrawn 10 must be 1 to the 6 training digits"):
        main(["--data-dir", tiny_mnist, "--pen", "--init", "none", "--redraw", "90", "--calibration-redrawn", "10",
              "--out", str(out)])
    assert not out.exists()
