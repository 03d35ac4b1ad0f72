"""The same networks and measurements as model/benches/model.rs, in PyTorch, for the ratio.
BENCH_ARCH picks the network: cnn (1x28x28, ten classes) or resnet (3x32x32, four classes)."""
import json, os, time
import torch
import torch.nn as nn
import torch.nn.functional as F

threads = int(os.environ.get("BENCH_THREADS", "2"))
torch.set_num_threads(threads)
torch.set_num_interop_threads(1)
torch.manual_seed(0)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = x.view(-1, 1, 28, 28)
        x = F.relu(self.conv2(F.relu(self.conv1(x))))
        x = F.dropout(F.max_pool2d(x, 2), 0.25, self.training).flatten(1)
        x = F.dropout(F.relu(self.fc1(x)), 0.5, self.training)
        return self.fc2(x)


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if cin != cout or stride != 1:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + (x if self.down is None else self.down(x)))


class Resnet(nn.Module):
    """model/src/arch/resnet.rs: widths 16, 32, 64, one block each."""

    def __init__(self, classes=4, widths=(16, 32, 64)):
        super().__init__()
        self.stem = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.stem_bn = nn.BatchNorm2d(widths[0])
        blocks, cin = [], widths[0]
        for i, w in enumerate(widths):
            blocks.append(Block(cin, w, 2 if i > 0 else 1))
            cin = w
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = F.relu(self.stem_bn(self.stem(x.view(-1, 3, 32, 32))))
        return self.fc(F.adaptive_avg_pool2d(self.blocks(x), 1).flatten(1))


resnet = os.environ.get("BENCH_ARCH") == "resnet"
shape, classes = ((3, 32, 32), 4) if resnet else ((1, 28, 28), 10)
n = 6000
xs, ys = torch.randn(n, shape[0] * shape[1] * shape[2]), torch.randint(classes, (n,))
net = Resnet() if resnet else Net()
opt = torch.optim.Adam(net.parameters(), lr=1e-3)


def epoch():
    net.train()
    order = torch.randperm(n)
    for start in range(0, n, 64):
        idx = order[start:start + 64]
        x, y = xs.index_select(0, idx), ys.index_select(0, idx)
        logits = net(x)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()
        (logits.argmax(-1) == y).sum().item()


epoch()
t = time.perf_counter()
epoch(); epoch()
print(json.dumps({"figure": "train_images_per_s", "value": round(2 * n / (time.perf_counter() - t), 1)}))

net.eval()
for batch, iters in ((1, 3000), (64, 300)):
    x = torch.randn(batch, *shape)
    times = []
    with torch.inference_mode():
        for _ in range(iters // 10):
            net(x).softmax(-1)
        for _ in range(iters):
            t = time.perf_counter()
            out = net(x).softmax(-1)
            out[0, 0].item()
            times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    p50 = times[len(times) // 2]
    print(json.dumps({"figure": f"batch{batch}_p50_ms", "value": round(p50, 4)}))
    print(json.dumps({"figure": f"batch{batch}_images_per_s", "value": round(batch * 1e3 / p50, 1)}))
