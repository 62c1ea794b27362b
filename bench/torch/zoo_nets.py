"""The project's zoo nets rebuilt layer for layer in PyTorch, for bench/compute-vs-torch.ts.

Same layers, channel counts, strides, 'same' padding, batch-norm epsilon (1e-3), 128-D dense
embedding with bias and L2 normalisation, so parameter counts match the project's exactly
(the bench prints both). Runs as a child process speaking JSON lines on stdin/stdout:
  {"op": "setup", "model": "inception-small", "size": 64, "batch": 90, "threads": 1, "device": "cpu"}
  {"op": "train", "steps": 3}   -> {"seconds": [...]}   forward + semi-hard triplet loss + backward + Adam
  {"op": "embed", "reps": 3}    -> {"seconds": [...]}   inference forward of the batch
"device": "cuda" runs on the GPU (bench/gpu-probe.ts's bundle runs it beside the webgpu probe);
each timing then waits for the GPU (torch.cuda.synchronize) before reading the clock.
"""
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def ch(n, width):
    return max(4, round(n * width))


class ConvBnRelu(nn.Module):
    def __init__(self, cin, cout, k, stride=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, padding=k // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-3, momentum=0.1)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    def __init__(self, cin, c1, c3, c5, pool, stride, w):
        super().__init__()
        self.stride = stride
        self.b1 = ConvBnRelu(cin, ch(c1, w), 1, stride) if c1 > 0 else None
        self.r3 = ConvBnRelu(cin, ch(c3[0], w), 1)
        self.b3 = ConvBnRelu(ch(c3[0], w), ch(c3[1], w), 3, stride)
        self.r5 = ConvBnRelu(cin, ch(c5[0], w), 1) if c5[1] > 0 else None
        self.b5 = ConvBnRelu(ch(c5[0], w), ch(c5[1], w), 5, stride) if c5[1] > 0 else None
        self.proj = ConvBnRelu(cin, ch(pool, w), 1) if pool > 0 else None
        self.out = (ch(c1, w) if c1 > 0 else 0) + ch(c3[1], w) + (ch(c5[1], w) if c5[1] > 0 else 0) + (ch(pool, w) if pool > 0 else cin)

    def forward(self, x):
        outs = []
        if self.b1 is not None:
            outs.append(self.b1(x))
        outs.append(self.b3(self.r3(x)))
        if self.b5 is not None:
            outs.append(self.b5(self.r5(x)))
        p = F.max_pool2d(x, 3, self.stride, padding=1)
        outs.append(self.proj(p) if self.proj is not None else p)
        return torch.cat(outs, 1)


class InceptionSmall(nn.Module):
    def __init__(self, w=1.0, dim=128):
        super().__init__()
        self.conv1 = ConvBnRelu(3, ch(32, w), 7, 2)
        self.conv2r = ConvBnRelu(ch(32, w), ch(32, w), 1)
        self.conv2 = ConvBnRelu(ch(32, w), ch(96, w), 3)
        mods = []
        cin = ch(96, w)
        for c1, c3, c5, pool, stride in [
            (32, (48, 64), (8, 16), 16, 1),
            (32, (48, 64), (16, 32), 32, 1),
            (0, (64, 128), (16, 32), 0, 2),
            (128, (64, 128), (16, 32), 64, 1),
            (0, (96, 192), (32, 64), 0, 2),
            (192, (96, 192), (0, 0), 64, 1),
        ]:
            m = Inception(cin, c1, c3, c5, pool, stride, w)
            mods.append(m)
            cin = m.out
        self.mods = nn.Sequential(*mods)
        self.embedding = nn.Linear(cin, dim)

    def forward(self, x):
        h = F.max_pool2d(self.conv1(x), 3, 2, padding=1)
        h = F.max_pool2d(self.conv2(self.conv2r(h)), 3, 2, padding=1)
        h = self.mods(h).mean((2, 3))
        return F.normalize(self.embedding(h), dim=1, eps=1e-10)


class Tiny(nn.Module):
    def __init__(self, w=1.0, dim=128):
        super().__init__()
        self.body = nn.Sequential(ConvBnRelu(3, ch(16, w), 3, 2), ConvBnRelu(ch(16, w), ch(32, w), 3, 2), ConvBnRelu(ch(32, w), ch(64, w), 3, 2))
        self.embedding = nn.Linear(ch(64, w), dim)

    def forward(self, x):
        return F.normalize(self.embedding(self.body(x).mean((2, 3))), dim=1, eps=1e-10)


def semi_hard_triplet_loss(emb, labels, margin=0.2):
    """The paper's selection: every anchor-positive pair with the closest negative farther than
    the positive (the farthest negative where none is), hinge at the margin."""
    d = torch.cdist(emb, emb).pow(2)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    pos = same & ~eye
    neg = ~same
    a, p = pos.nonzero(as_tuple=True)
    dap = d[a, p]
    dan = d[a]
    big = torch.finfo(d.dtype).max
    farther = neg[a] & (dan > dap[:, None])
    semi = torch.where(farther, dan, torch.full_like(dan, big)).min(1).values
    hardest = torch.where(neg[a], dan, torch.full_like(dan, -big)).max(1).values
    chosen = torch.where(semi < big, semi, hardest)
    return F.relu(dap - chosen + margin).mean()


def main():
    model = opt = images = labels = None
    device = torch.device("cpu")

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "setup":
            torch.set_num_threads(int(cmd.get("threads", 1)))
            torch.manual_seed(1)
            device = torch.device(cmd.get("device", "cpu"))
            model = {"inception-small": InceptionSmall, "tiny": Tiny}[cmd["model"]](float(cmd.get("width", 1))).to(device)
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            n, s = int(cmd["batch"]), int(cmd["size"])
            images = (torch.rand(n, 3, s, s) * 2 - 1).to(device)
            labels = (torch.arange(n) // 10).to(device)
            params = sum(p.numel() for p in model.parameters())
            reply = {"parameters": params, "torch": torch.__version__, "threads": torch.get_num_threads(), "mkldnn": torch.backends.mkldnn.is_available(), "device": str(device), "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None}
        elif cmd["op"] == "train":
            model.train()
            seconds = []
            for _ in range(int(cmd["steps"])):
                sync()
                t0 = time.perf_counter()
                opt.zero_grad(set_to_none=True)
                loss = semi_hard_triplet_loss(model(images), labels)
                loss.backward()
                opt.step()
                sync()
                seconds.append(time.perf_counter() - t0)
            reply = {"seconds": seconds}
        elif cmd["op"] == "embed":
            model.eval()
            seconds = []
            with torch.no_grad():
                for _ in range(int(cmd["reps"])):
                    sync()
                    t0 = time.perf_counter()
                    model(images)
                    sync()
                    seconds.append(time.perf_counter() - t0)
            reply = {"seconds": seconds}
        else:
            reply = {"error": f"unknown op {cmd['op']}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
