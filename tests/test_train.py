"""`python -m mnist_sum.train` runs end to end on a tiny IDX data set, and the seed fixes the weights."""

import torch

from mnist_sum import load_model
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
