"""The command-line tools' shared help: every option that takes a value shows its default, flags show none."""

import argparse

import pytest

from mnist_sum.cli import HelpFormatter
from mnist_sum.evaluate import build_parser as evaluate_parser
from mnist_sum.explain import build_parser as explain_parser
from mnist_sum.sketches import main as sketches_main
from mnist_sum.train import build_parser as train_parser


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    """A terminal wide enough that argparse wraps no help line (it would break "not-a-digit" after "not-")."""
    monkeypatch.setenv("COLUMNS", "1000")


def flat_help(parser: argparse.ArgumentParser) -> str:
    """The help text with its layout's whitespace runs as single spaces."""
    return " ".join(parser.format_help().split())


def test_defaults_that_compare_equal_to_false_are_shown_and_an_empty_one_reads_none():
    p = argparse.ArgumentParser(formatter_class=HelpFormatter)
    p.add_argument("--seed", type=int, default=0, help="seed")
    p.add_argument("--rate", type=float, default=0.0, help="rate")
    p.add_argument("--skip", default="", help="names to skip")
    p.add_argument("--verbose", action="store_true", help="say more")
    p.add_argument("--quiet", action="store_false", help="say less")
    p.add_argument("--out", default=None, help="where")
    p.add_argument("--mode", default="fast", help="how (default: fast unless --slow)")
    p.add_argument("--target", required=True, help="where to")
    p.add_argument("image", help="the picture")
    out = flat_help(p)
    assert "seed (default: 0)" in out and "rate (default: 0.0)" in out
    assert "names to skip (default: none)" in out and "(default: )" not in out
    # flags and a help text that words its own default get nothing appended
    assert "say more --quiet" in out and "say less --out" in out
    assert "where (default: none)" in out  # an option left unset
    assert out.count("(default: fast") == 1 and "--slow) (default" not in out
    # required arguments can't be left out: they have no default to show
    assert "where to (default" not in out and "the picture (default" not in out


@pytest.mark.parametrize("build_parser", [train_parser, evaluate_parser, explain_parser],
                         ids=["train", "evaluate", "explain"])
def test_every_option_of_a_command_that_takes_a_value_says_its_default(build_parser):
    parser = build_parser()
    out = flat_help(parser)
    assert "(default: )" not in out
    for action in parser._actions:
        if action.nargs == 0 or action.required:  # flags (--help, --pen, --json ...); required: no default
            continue
        text = " ".join((action.help or "").split())
        assert "default" in text or f"{text} (default: " in out, action.option_strings


def test_train_help_shows_the_seed_and_the_empty_holdout():
    out = flat_help(train_parser())
    assert "seed for init, shuffling, numbers and augmentation (default: 0)" in out
    assert "to leave out (e.g. apa,ced) (default: none)" in out


def test_the_sketches_command_help_shows_its_data_dir_default(capsys):
    with pytest.raises(SystemExit) as exit_info:
        sketches_main(["--help"])
    assert exit_info.value.code == 0
    assert "(default: data)" in " ".join(capsys.readouterr().out.split())
