"""Training step time per mixed-precision plan, side by side in one process (``--amp`` choices).

A Johnson transform net with the VGG16 perceptual loss and Adam, as ``rtstyle train johnson`` runs it;
the plans are interleaved step by step so that load on a shared machine hits all of them alike.

    python tools/bench_amp.py --width 8 --batch 2 --size 192 --steps 5
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

import torch

from rtstyle.eval import LossWeights
from rtstyle.host import detect_host
from rtstyle.models.johnson import TransformerNet
from rtstyle.nn import content_loss, gram, gram_style_loss, load_vgg16
from rtstyle.training import Amp, resolve_amp


def make_step(plan: Amp, vgg: torch.nn.Module, width: int, batch: int, size: int):
    torch.manual_seed(0)
    net = plan.module(TransformerNet(width, 5))
    vgg = plan.module(copy.deepcopy(vgg))  # Module.to() works in place: each plan its own copy
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    x0, style = torch.rand(batch, 3, size, size), torch.rand(1, 3, 256, 256)
    w = LossWeights()  # the training loss's weights, as `rtstyle train johnson` uses them
    with torch.no_grad():
        with plan.autocast():
            sf = vgg(plan.batch(style))
        grams = {k: gram(v) for k, v in sf.items()}

    def step() -> None:
        x = plan.batch(x0)
        with plan.autocast():
            y = net(x * 255) / 255
            fy = vgg(y)
            with torch.no_grad():
                fx = vgg(x)
        loss = w.content * content_loss(fy[w.content_layer], fx[w.content_layer]) + w.style * gram_style_loss(fy, grams)
        opt.zero_grad(set_to_none=True)
        plan.backward(loss)
        plan.step(opt)

    return step


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--size", type=int, default=192)
    ap.add_argument("--steps", type=int, default=5, help="timed steps per plan (after 2 warm-up steps)")
    ap.add_argument("--vgg", default=None, help="VGG16 weights (default: as rtstyle train finds them)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    vgg = load_vgg16(args.vgg)
    auto = resolve_amp("auto", "cpu")
    plans = {"fp32 NCHW": Amp("fp32", False, "cpu"), "fp32 channels-last": Amp("fp32", True, "cpu"),
             "bf16 NCHW": Amp("bf16", False, "cpu"), "bf16 channels-last": Amp("bf16", True, "cpu")}
    steps = {k: make_step(p, vgg, args.width, args.batch, args.size) for k, p in plans.items()}
    for s in steps.values():
        s()
        s()
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(args.steps):
        for k, s in steps.items():
            t = time.perf_counter()
            s()
            times[k].append(time.perf_counter() - t)
    base = statistics.median(times["fp32 NCHW"])
    host = detect_host()
    print(f"{host.describe()}; auto = {auto.mode}{' channels-last' if auto.channels_last else ''}")
    rows = {}
    for k, ts in times.items():
        med = statistics.median(ts)
        rows[k] = {"step_s_median": med, "vs_fp32": base / med, "steps_s": ts}
        print(f"{k:<20} {1000 * med:8.0f} ms/step  {base / med:5.2f}x fp32")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"host": host.to_dict(), "auto": auto.to_dict(), "args": vars(args), "results": rows}, f, indent=2)


if __name__ == "__main__":
    main()
