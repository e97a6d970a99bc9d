#!/usr/bin/env python3
"""Runs the images of a probe file through pytorch-fid's own InceptionV3, loaded with the
random weights in the same file, and writes the inputs and their 2048-d features: the
fixture `tests/fixtures/inception-random.safetensors` that the Rust test
`inception_matches_pytorch_fid_on_random_weights` compares ganzoo's port with.

Needs torch, torchvision, pytorch-fid and safetensors (pip); nothing is downloaded:
pytorch-fid's weight download is replaced by the probe's weights.

    cargo run --release -p ganzoo-eval --example inception_probe -- /tmp/probe.safetensors
    python3 scripts/inception-fixture.py /tmp/probe.safetensors \
        tests/fixtures/inception-random.safetensors
    python3 scripts/inception-fixture.py --state-dicts tests/fixtures
"""
import sys

import torch
import pytorch_fid.inception as fid
from safetensors.torch import load_file, save_file


def main(probe_path, out_path):
    probe = load_file(probe_path)
    weights = {k: v for k, v in probe.items() if not k.startswith("input.")}

    def probe_weights(url, *args, **kwargs):
        # fid_inception_v3() builds its network, then loads this state dict strictly.
        state = fid._inception_v3(num_classes=1008, aux_logits=False, weights=None).state_dict()
        unknown = sorted(set(weights) - set(state))
        untouched = sorted(k for k in set(state) - set(weights)
                           if not k.endswith("num_batches_tracked") and not k.startswith("fc."))
        assert not unknown and not untouched, (unknown, untouched)
        state.update(weights)
        return state

    fid.load_state_dict_from_url = probe_weights
    net = fid.InceptionV3([fid.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    out = {}
    with torch.no_grad():
        for name, x in probe.items():
            if not name.startswith("input."):
                continue
            # pytorch-fid takes [0, 1]; gray images become RGB as its ImagePathDataset does.
            x01 = (x + 1) / 2
            if x01.shape[1] == 1:
                x01 = x01.repeat(1, 3, 1, 1)
            features = net(x01)[0].squeeze(3).squeeze(2)
            out[name] = x.contiguous()
            out["features." + name[len("input."):]] = features.contiguous()
            print(name, tuple(x.shape), "features", tuple(features.shape),
                  "mean %.4f std %.4f" % (features.mean(), features.std()))
    save_file(out, out_path, metadata={"torch": torch.__version__, "made_by": "scripts/inception-fixture.py"})


def state_dicts(out_dir):
    """Small state dicts in both torch.save formats for ganzoo's `.pth` reader: f32, f64
    and f16 tensors, two views of one storage (the second at an offset), and the
    `_metadata` attribute real state dicts carry."""
    import collections
    base = torch.arange(10, dtype=torch.float32) / 4
    sd = collections.OrderedDict([
        ("a.weight", torch.arange(6, dtype=torch.float32).reshape(2, 3) - 2.5),
        ("base", base),
        ("view", base[3:7]),
        ("double", torch.tensor([[1e-300, -3.0]], dtype=torch.float64)),
        ("half", torch.tensor([1.5, -2.25, 65504.0], dtype=torch.float16)),
    ])
    sd._metadata = {"": {"version": 1}}
    torch.save(sd, f"{out_dir}/state-dict-legacy.pth", _use_new_zipfile_serialization=False)
    torch.save(sd, f"{out_dir}/state-dict-zip.pth")


if __name__ == "__main__":
    if sys.argv[1] == "--state-dicts":
        state_dicts(sys.argv[2])
    else:
        main(*sys.argv[1:3])
