"""Train MNISTSumNet on the 60,000 MNIST training images: `python -m mnist_sum.train`.

Defaults reproduce the shipped weights (see README for the epoch lines and curves). Each step: a batch
sliced from the tensors, batched augmentation (warp + stroke width), digit and sum cross-entropy summed,
AdamW with a one-cycle learning rate. After every epoch the test split is evaluated; the weights are
written once, atomically, at the end, with the arguments and metrics in their metadata.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from .curves import plot_curves
from .data import DataNotFoundError, MNISTSum, augment, one_hot, open_split
from .evaluate import evaluate_model
from .model import MNISTSumNet, normalize
from .weights import SHIPPED_WEIGHTS, save_weights, write_atomically


def build_parser() -> argparse.ArgumentParser:
    """All hyperparameters, with defaults and one line of help each."""
    p = argparse.ArgumentParser(prog="python -m mnist_sum.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default="data", help="folder holding MNIST/raw/ (downloaded there if missing)")
    p.add_argument("--epochs", type=int, default=5, help="passes over the training set")
    p.add_argument("--batch-size", type=int, default=128, help="images per step")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate of the one-cycle schedule")
    p.add_argument("--mix-lr-scale", type=float, default=10.0, help="the tiny mix (sum) head learns this much faster")
    p.add_argument("--weight-decay", type=float, default=1e-4, help="AdamW weight decay")
    p.add_argument("--no-augment", action="store_true", help="train on the plain images (no warp, no stroke width)")
    p.add_argument("--seed", type=int, default=0, help="seed for init, shuffling, numbers and augmentation")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's choice)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available, else CPU), cpu, cuda, cuda:1, ...")
    p.add_argument("--out", default=str(SHIPPED_WEIGHTS), help="where to write the weights (.safetensors)")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps in all (smoke tests)")
    p.add_argument("--no-eval", action="store_true", help="skip the per-epoch test evaluation")
    return p


def pick_device(name: str) -> torch.device:
    """'auto' -> CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def make_optimizer(model: MNISTSumNet, args, total_steps: int):
    """AdamW with a one-cycle schedule over total_steps; the tiny mix head at mix_lr_scale x the rate."""
    mix_lr = args.lr * args.mix_lr_scale
    body = [p for name, p in model.named_parameters() if not name.startswith("mix.")]
    optimizer = torch.optim.AdamW([{"params": body, "lr": args.lr}, {"params": model.mix.parameters(), "lr": mix_lr}],
                                  weight_decay=args.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[args.lr, mix_lr], total_steps=total_steps,
                                                    pct_start=0.15)
    return optimizer, scheduler


def train_epoch(model, optimizer, scheduler, train: MNISTSum, epoch: int, args, device, generator,
                steps_left: int | None) -> dict:
    """One pass over the shuffled training split; returns mean loss, accuracies, images and steps."""
    model.train()
    train.set_epoch(epoch)
    order = torch.randperm(len(train), generator=generator)
    n_batches = (len(train) + args.batch_size - 1) // args.batch_size
    if steps_left is not None:
        n_batches = min(n_batches, steps_left)
    totals = torch.zeros(3)  # loss * B, digit correct, sum correct
    seen = 0
    bar = tqdm(range(n_batches), desc=f"epoch {epoch}", leave=False, dynamic_ncols=True)
    for step in bar:
        idx = order[step * args.batch_size:(step + 1) * args.batch_size]
        pixels = train.pixels[idx]  # (B, 1, 28, 28) in [0, 1]
        if not args.no_augment:
            pixels = augment(pixels, generator)
        images = normalize(pixels).to(device, non_blocking=True)
        digits = train.targets[idx].to(device)
        numbers = train.numbers[idx].to(device)
        sums = digits + numbers

        digit_logits, sum_logits = model(images, one_hot(numbers))
        loss = F.cross_entropy(digit_logits, digits) + F.cross_entropy(sum_logits, sums)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()

        b = len(idx)
        with torch.no_grad():
            totals += torch.stack([loss.detach().cpu() * b,
                                   (digit_logits.argmax(1) == digits).sum().cpu(),
                                   (sum_logits.argmax(1) == sums).sum().cpu()])
        seen += b
        if step % 20 == 0 or step == n_batches - 1:
            bar.set_postfix(loss=f"{totals[0] / seen:.4f}", digit=f"{totals[1] / seen:.4f}", sum=f"{totals[2] / seen:.4f}")
    return {"loss": (totals[0] / seen).item(), "digit": (totals[1] / seen).item(), "sum": (totals[2] / seen).item(),
            "images": seen, "steps": n_batches}


def train(args) -> dict:
    """Run the whole training described by args; returns the final metrics and history."""
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = pick_device(args.device)
    config = dict(vars(args))
    config.update(device=str(device), threads=torch.get_num_threads(), torch=torch.__version__)
    log = ["config: " + json.dumps(config)]
    print(log[0])

    train_ds = open_split(args.data_dir, train=True, seed=args.seed)
    test_ds = None if args.no_eval else open_split(args.data_dir, train=False)

    model = MNISTSumNet().to(device)
    generator = torch.Generator().manual_seed(args.seed)
    steps_per_epoch = (len(train_ds) + args.batch_size - 1) // args.batch_size
    total_steps = steps_per_epoch * args.epochs
    if args.max_steps is not None:
        total_steps = min(total_steps, args.max_steps)
    optimizer, scheduler = make_optimizer(model, args, max(total_steps, 1))

    out = Path(args.out)
    history, steps_done, started = [], 0, time.perf_counter()
    for epoch in range(args.epochs):
        if steps_done >= total_steps:
            break
        t0 = time.perf_counter()
        stats = train_epoch(model, optimizer, scheduler, train_ds, epoch, args, device, generator,
                            total_steps - steps_done)
        train_seconds = time.perf_counter() - t0
        steps_done += stats["steps"]
        row = {"epoch": epoch, "train_loss": stats["loss"], "train_digit": stats["digit"], "train_sum": stats["sum"],
               "images_per_s": stats["images"] / train_seconds}
        if test_ds is not None:
            metrics = evaluate_model(model, test_ds, device=device)
            row.update(test_digit=metrics["digit_accuracy"], test_sum=metrics["sum_accuracy"],
                       consistency=metrics["consistency"])
        row["elapsed_s"] = time.perf_counter() - started
        history.append(row)
        log.append(format_epoch(row))
        print(log[-1], flush=True)
        if test_ds is not None:
            plot_curves(history, out.with_suffix(".curves.png"))

    final = history[-1] if history else {}
    save_weights(model.cpu(), out, train_args=config, metrics={"final": final, "history": history})
    log.append(f"saved {out} ({out.stat().st_size / 1e6:.1f} MB) after {final.get('elapsed_s', 0):.0f} s")
    print(log[-1])
    write_atomically(out.with_suffix(".train.log"), ("\n".join(log) + "\n").encode())  # the run, no progress bars
    return {"final": final, "history": history}


def format_epoch(row: dict) -> str:
    """The per-epoch line, in the original's format followed by test figures, speed and time."""
    line = (f"epoch: {row['epoch']} train loss: {row['train_loss']:.4f} mnist_accuracy: {row['train_digit']:.4f} "
            f"sum_accuracy: {row['train_sum']:.4f}")
    if "test_digit" in row:
        line += f" | test digit: {row['test_digit']:.4f} sum: {row['test_sum']:.4f} consistency: {row['consistency']:.4f}"
    return line + f" | {row['images_per_s']:,.0f} img/s | {row['elapsed_s']:.0f} s"


def main(argv=None) -> int:
    """Entry point of `python -m mnist_sum.train`."""
    args = build_parser().parse_args(argv)
    try:
        train(args)
    except DataNotFoundError as e:
        sys.exit(f"error: {e}")
    except KeyboardInterrupt:
        sys.exit(f"interrupted: {args.out} is left as it was (weights are only replaced, atomically, at the end)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
