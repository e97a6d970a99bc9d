#!/usr/bin/env python3
"""Images per second through pytorch-fid's InceptionV3 on the CPU, as
`cargo run --release -p ganzoo-eval --example inception_throughput` times ganzoo's port:
random weights (pytorch-fid's download replaced by its untrained network's own), batches
of 28x28 gray images repeated to RGB and resized to 299x299 by pytorch-fid itself.

Needs torch, torchvision and pytorch-fid (pip). Threads: 2, or TORCH_THREADS.

    python3 scripts/inception-throughput.py [BATCH] [ROUNDS]
"""
import os
import sys
import time

import torch
import pytorch_fid.inception as fid


def main(batch, rounds):
    torch.set_num_threads(int(os.environ.get("TORCH_THREADS", "2")))
    untrained = fid._inception_v3(num_classes=1008, aux_logits=False, weights=None).state_dict()
    fid.load_state_dict_from_url = lambda *args, **kwargs: untrained
    net = fid.InceptionV3([fid.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    images = torch.rand(batch, 1, 28, 28, generator=torch.Generator().manual_seed(1)).repeat(1, 3, 1, 1)
    with torch.no_grad():
        net(images)
        for _ in range(rounds):
            start = time.perf_counter()
            net(images)
            s = time.perf_counter() - start
            print(f"pytorch-fid batch {batch}: {s:.3f} s, {batch / s:.2f} images/s "
                  f"(torch {torch.__version__}, {torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 16, int(sys.argv[2]) if len(sys.argv) > 2 else 3)
