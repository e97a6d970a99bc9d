"""PyTorch's side of `ganzoo bench --ops-only --torch PY`: times convolution and
batch-norm layers the way ganzoo's per-layer benchmarks (ops.rs, norms.rs) time their
own. For each layer, the forward pass, then the backward pass of that output seeded
with ones (the input's and the parameters' gradients), each the median of at least 3
runs over about `budget_s` seconds, after one warm-up run. NCHW tensors, no bias, f32,
like ganzoo's; on CUDA each run ends with the device synchronized.

argv[1] is a JSON object: {"threads": N, "budget_s": S, "device": "cpu", "cuda" or "cuda:N",
"layers": [{"name", "kind" ("conv" or "transpose"), "batch", "cin", "cout", "h", "w",
"kh", "kw", "stride", "padding", "dilation", "output_padding": [h, w]} or {"name",
"kind": "batchnorm", "batch", "cin", "h", "w", "slope"} (training-mode BatchNorm2d,
then ReLU for slope 0, else LeakyReLU(slope))]}. One JSON line per layer and pass:
{"layer", "pass", "ms"}.
"""
import json
import sys
import time

import torch


def median_ms(budget_s, run, device):
    def f():
        run()
        if device.type == "cuda":
            torch.cuda.synchronize()

    f()
    times = []
    start = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < budget_s and len(times) < 50):
        t = time.perf_counter()
        f()
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    return times[len(times) // 2]


def module(layer):
    if layer["kind"] == "batchnorm":
        act = torch.nn.ReLU() if layer["slope"] == 0 else torch.nn.LeakyReLU(layer["slope"])
        return torch.nn.Sequential(torch.nn.BatchNorm2d(layer["cin"]), act)
    common = dict(stride=layer["stride"], padding=layer["padding"], dilation=layer["dilation"], bias=False)
    size = (layer["kh"], layer["kw"])
    if layer["kind"] == "conv":
        return torch.nn.Conv2d(layer["cin"], layer["cout"], size, **common)
    return torch.nn.ConvTranspose2d(
        layer["cin"], layer["cout"], size, output_padding=tuple(layer["output_padding"]), **common
    )


def main():
    spec = json.loads(sys.argv[1])
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    device = torch.device(spec.get("device", "cpu"))
    if device.index is not None:
        torch.cuda.set_device(device)  # the one synchronize() waits for
    for layer in spec["layers"]:
        m = module(layer).to(device)
        x = torch.randn(layer["batch"], layer["cin"], layer["h"], layer["w"], device=device, requires_grad=True)
        forward = median_ms(spec["budget_s"], lambda: m(x), device)
        y = m(x)
        ones = torch.ones_like(y)

        def backward():
            x.grad = None
            m.zero_grad(set_to_none=True)
            y.backward(ones, retain_graph=True)

        back = median_ms(spec["budget_s"], backward, device)
        for name, ms in (("forward", forward), ("backward", back)):
            print(json.dumps({"layer": layer["name"], "pass": name, "ms": ms}), flush=True)


main()
