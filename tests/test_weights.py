"""Weights round-trip exactly through safetensors, carry their metadata, and bad files fail clearly."""

import json

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from mnist_sum import MNISTSumNet, load_model
from mnist_sum.weights import (EXERCISE_WEIGHTS, HANDWRITING_WEIGHTS, SHIPPED_MODELS, SHIPPED_WEIGHTS, WEIGHTS_DIR,
                               WeightsError, read_metadata, save_weights)


def trained_looking_model(seed=0):
    """A model with non-default weights and BatchNorm statistics, in eval mode."""
    torch.manual_seed(seed)
    model = MNISTSumNet()
    model.train()
    model(torch.randn(32, 1, 28, 28), torch.eye(10)[torch.randint(0, 10, (32,))])  # moves running stats
    return model.eval()


def outputs(model):
    torch.manual_seed(123)
    x, n = torch.randn(8, 1, 28, 28), F.one_hot(torch.arange(8) % 10, 10).float()
    with torch.inference_mode():
        return model(x, n)


def test_save_then_load_gives_identical_outputs(tmp_path):
    model = trained_looking_model()
    path = save_weights(model, tmp_path / "w.safetensors", train_args={"epochs": 1}, metrics={"final": {"x": 1}})
    loaded = load_model(path)
    assert not loaded.training
    for a, b in zip(outputs(model), outputs(loaded)):
        assert torch.equal(a, b)


def test_metadata_records_config_args_metrics_version_and_date(tmp_path):
    path = save_weights(trained_looking_model(), tmp_path / "w.safetensors", train_args={"lr": 0.002},
                        metrics={"final": {"test_digit": 0.99}})
    meta = read_metadata(path)
    assert meta["train_args"] == {"lr": 0.002}
    assert meta["metrics"]["final"]["test_digit"] == 0.99
    assert meta["model_config"]["arch"] == "MNISTSumNet"
    assert meta["torch_version"] == torch.__version__ and meta["date"][:2] == "20"


def test_save_replaces_atomically_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "w.safetensors"
    save_weights(trained_looking_model(0), path)
    save_weights(trained_looking_model(1), path)
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]
    assert torch.equal(outputs(load_model(path))[0], outputs(trained_looking_model(1))[0])


def test_non_finite_values_are_refused(tmp_path):
    state = {k: v.clone() for k, v in MNISTSumNet().state_dict().items()}
    state["classifier.0.weight"][0, 0] = float("nan")
    save_file(state, tmp_path / "nan.safetensors")
    with pytest.raises(WeightsError, match=r"nan\.safetensors.*classifier\.0\.weight.*NaN"):
        load_model(tmp_path / "nan.safetensors")


def test_wrong_dtype_and_missing_keys_are_refused(tmp_path):
    state = {k: v.clone() for k, v in MNISTSumNet().state_dict().items()}
    save_file({**state, "mix.0.weight": state["mix.0.weight"].double()}, tmp_path / "f64.safetensors")
    with pytest.raises(WeightsError, match=r"f64\.safetensors.*mix\.0\.weight.*dtype"):
        load_model(tmp_path / "f64.safetensors")
    del state["mix.2.bias"]
    save_file(state, tmp_path / "short.safetensors")
    with pytest.raises(WeightsError, match=r"short\.safetensors.*missing keys \['mix\.2\.bias'\]"):
        load_model(tmp_path / "short.safetensors")


@pytest.mark.parametrize("name", SHIPPED_MODELS)
def test_shipped_weights_load_and_record_how_they_were_made(name):
    path = SHIPPED_MODELS[name]
    model = load_model(path)
    assert isinstance(model, MNISTSumNet) and not model.training
    meta = read_metadata(path)
    assert meta["train_args"]["epochs"] <= 5 and meta["train_args"]["out"] == f"mnist_sum/weights/{name}.safetensors"
    assert json.dumps(meta["metrics"]["final"])  # the figures the README and the app quote
    assert path.stat().st_size < 5e6
    log = path.with_suffix(".train.log").read_text()  # the run's own output, next to its weights
    assert log.startswith("config: ") and f'"out": "mnist_sum/weights/{name}.safetensors"' in log
    assert path.with_suffix(".curves.png").is_file()


def test_the_shipped_folder_holds_only_what_a_command_makes():
    made = {p.with_suffix(s).name for p in SHIPPED_MODELS.values() for s in (".safetensors", ".train.log", ".curves.png")}
    assert {p.name for p in WEIGHTS_DIR.iterdir() if not p.name.startswith(".")} == made


def test_the_app_and_predictor_use_the_handwriting_model_made_from_the_exercise():
    assert SHIPPED_WEIGHTS == HANDWRITING_WEIGHTS
    meta = read_metadata(HANDWRITING_WEIGHTS)
    assert meta["train_args"]["pen"] and meta["train_args"]["init"] == "mnist_sum/weights/exercise.safetensors"
    assert meta["train_args"]["pen_holdout"] == ""  # every site: the shipped run
    assert 0 < meta["not_a_digit"]["threshold"] < 1


def test_the_pen_run_starts_from_the_exercise_trained_on_mnist_only():
    args = read_metadata(EXERCISE_WEIGHTS)["train_args"]
    assert not args.get("pen") and not args.get("init") and args["epochs"] == 5
