#!/usr/bin/env python3
"""Loads a run's TensorBoard events with TensorBoard's own reader and checks them against
the run's metrics.jsonl: every scalar of every log step present and equal (as float32),
each sample grid an image of the PNG's size. Exit status 0 when all match.

Needs the `tensorboard` package (pip install tensorboard; 2.21 was used):

    python3 scripts/tensorboard-check.py runs/wgan-gp-8gaussians
"""
import json
import struct
import sys
from pathlib import Path

from tensorboard.backend.event_processing import event_accumulator as ea


def main(run: Path) -> int:
    acc = ea.EventAccumulator(str(run / "tb"), size_guidance={ea.SCALARS: 0, ea.IMAGES: 0})
    acc.Reload()
    tags = acc.Tags()
    lines = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines() if l.strip()]
    # The ganzoo tags of the fields every line has (the rest appear where the family has them).
    fields = {"loss/critic": "d_loss", "loss/generator": "g_loss", "critic/wasserstein_estimate": "wasserstein",
              "critic/gradient_penalty": "penalty", "discriminator/D(x)": "d_real",
              "discriminator/D(G(z))": "d_fake", "progress/epoch": "epoch"}
    checked = 0
    for tag, field in fields.items():
        expected = {m["iteration"]: m[field] for m in lines if m.get(field) is not None}
        if not expected:
            continue
        got = {e.step: e.value for e in acc.Scalars(tag)}
        for step, value in expected.items():
            f32 = struct.unpack("f", struct.pack("f", value))[0]
            if got.get(step) != f32:
                print(f"{tag} at {step}: TensorBoard has {got.get(step)}, metrics.jsonl {value}")
                return 1
            checked += 1
    evals = [t for t in tags["scalars"] if t.startswith("eval/")]
    samples = sorted(p for p in (run / "samples").glob("iter-*.png"))
    images = acc.Images("samples") if "samples" in tags["images"] else []
    for img in images:
        png = (run / "samples" / f"iter-{img.step:08d}.png").read_bytes()
        width, height = struct.unpack(">II", png[16:24])
        if (img.width, img.height, img.encoded_image_string) != (width, height, png):
            print(f"image at step {img.step} differs from its PNG")
            return 1
    print(f"{run}: {checked} scalars match metrics.jsonl, {len(evals)} eval tags, "
          f"{len(images)} / {len(samples)} sample grids as images")
    return 0 if images and len(images) == len(samples) else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
