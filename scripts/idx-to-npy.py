#!/usr/bin/env python3
"""Writes the first N images of an MNIST-format IDX file (gzipped or raw), or of a CIFAR-10
binary batch (`*.bin`: a label byte, then 3×32×32 pixel bytes, R, G, B planes), as an
N×C×H×W float32 .npy in [-1, 1] (p / 127.5 - 1, as ganzoo's batches), or N uniform-noise
images of that shape with --uniform: real and noise baselines for `ganzoo eval --samples`.
Standard library only. Usage: idx-to-npy.py IMAGES.idx[.gz]|BATCH.bin N OUT.npy [--uniform SEED]"""
import gzip, random, struct, sys

src, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if src.endswith(".bin"):
    channels, rows, cols = 3, 32, 32
    record = 1 + channels * rows * cols
    data = open(src, "rb").read()
    assert len(data) % record == 0, f"{src}: not CIFAR-10 records of {record} bytes"
    n = min(n, len(data) // record)
    pixels = b"".join(data[i * record + 1 : (i + 1) * record] for i in range(n))
else:
    opener = gzip.open if open(src, "rb").read(2) == b"\x1f\x8b" else open
    with opener(src, "rb") as f:
        magic, count, rows, cols = struct.unpack(">4I", f.read(16))
        assert magic == 0x803, f"{src}: not IDX images"
        channels, n = 1, min(n, count)
        pixels = f.read(n * rows * cols)
if "--uniform" in sys.argv:
    rng = random.Random(int(sys.argv[sys.argv.index("--uniform") + 1]))
    values = [rng.uniform(-1, 1) for _ in range(n * channels * rows * cols)]
else:
    values = [p / 127.5 - 1 for p in pixels]
header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d, %d, %d), }" % (n, channels, rows, cols)
header += " " * (63 - (10 + len(header)) % 64) + "\n"
with open(out, "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
    f.write(struct.pack("<%df" % len(values), *values))
