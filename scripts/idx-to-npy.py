#!/usr/bin/env python3
"""Writes the first N images of an MNIST-format IDX file (gzipped or raw) as an
N×1×28×28 float32 .npy in [-1, 1] (p / 127.5 - 1, as ganzoo's batches), or N uniform-noise
images with --uniform: real and noise baselines for `ganzoo eval --samples`.
Standard library only. Usage: idx-to-npy.py IMAGES.idx[.gz] N OUT.npy [--uniform SEED]"""
import gzip, random, struct, sys

src, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
opener = gzip.open if open(src, "rb").read(2) == b"\x1f\x8b" else open
with opener(src, "rb") as f:
    magic, count, rows, cols = struct.unpack(">4I", f.read(16))
    assert magic == 0x803, f"{src}: not IDX images"
    n = min(n, count)
    pixels = f.read(n * rows * cols)
if "--uniform" in sys.argv:
    rng = random.Random(int(sys.argv[sys.argv.index("--uniform") + 1]))
    values = [rng.uniform(-1, 1) for _ in range(n * rows * cols)]
else:
    values = [p / 127.5 - 1 for p in pixels]
header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, 1, %d, %d), }" % (n, rows, cols)
header += " " * (63 - (10 + len(header)) % 64) + "\n"
with open(out, "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
    f.write(struct.pack("<%df" % len(values), *values))
