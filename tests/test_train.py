"""`python -m mnist_sum.train` runs end to end on a tiny IDX data set, and the seed fixes the weights."""

import json

import torch

from mnist_sum import load_model
from mnist_sum import evaluate
from mnist_sum.train import build_parser, main
from mnist_sum.weights import read_metadata


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


def test_help_lists_every_hyperparameter():
    out = build_parser().format_help()
    for flag in ("--data-dir", "--epochs", "--batch-size", "--lr", "--seed", "--device", "--out", "--max-steps"):
        assert flag in out


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
