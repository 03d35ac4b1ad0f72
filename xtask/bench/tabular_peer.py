"""FastAPI + uvicorn + PyTorch server of the same MLP model-server serves for a tabular task
(the benchmark peer of `cargo xtask bench rows`).

It loads the very model files a pipeline repo holds: the sidecar (the task's schema and the
network's hidden sizes) and the safetensors weights (`standardize_mean`, `standardize_std`,
`fc<i>.weight`/`.bias`, `out.weight`/`.bias`), and answers as model-server does.

Endpoints
  POST /predict   {"features": {name: value, ...}} -> {"label", "index", "confidence", "probabilities"}
                  (422 naming the field for a missing, extra, non-numeric or unknown value)
  GET  /healthz   -> {"status": "ok"}

Environment
  PEER_MODEL          path to the model's .safetensors (its sidecar is the same path with .json)
  PEER_TORCH_THREADS  torch intra-op threads per worker process (default 1)
"""
import json
import math
import os

import torch
from fastapi import FastAPI, HTTPException, Request
from safetensors.torch import load_file

MODEL_PATH = os.environ["PEER_MODEL"]
torch.set_num_threads(int(os.environ.get("PEER_TORCH_THREADS", "1")))

with open(os.path.splitext(MODEL_PATH)[0] + ".json") as f:
    SIDECAR = json.load(f)
TASK = SIDECAR["task"]
FEATURES = TASK["table"]["features"]
CLASSES = TASK["classes"]
WEIGHTS = load_file(MODEL_PATH)
NUMBERS = [i for i, f in enumerate(FEATURES) if f["type"] == "number"]
CATEGORIES = [(i, len(f["values"])) for i, f in enumerate(FEATURES) if f["type"] == "category"]


class Mlp(torch.nn.Module):
    """model::arch::mlp in PyTorch: standardise numbers, one-hot categories, dense layers."""

    def __init__(self):
        super().__init__()
        self.numbers = torch.tensor(NUMBERS, dtype=torch.long)
        self.mean = WEIGHTS.get("standardize_mean")
        self.std = WEIGHTS.get("standardize_std")
        hidden = sorted(k for k in WEIGHTS if k.startswith("fc") and k.endswith(".weight"))
        self.layers = torch.nn.ModuleList()
        for name in hidden + ["out.weight"]:
            w = WEIGHTS[name]
            layer = torch.nn.Linear(w.shape[1], w.shape[0])
            layer.weight.data.copy_(w)
            layer.bias.data.copy_(WEIGHTS[name.replace(".weight", ".bias")])
            self.layers.append(layer)

    def forward(self, x):
        parts = []
        if len(NUMBERS):
            parts.append((x.index_select(1, self.numbers) - self.mean) / self.std)
        for column, count in CATEGORIES:
            index = x[:, column].long().clamp(0, count - 1)
            parts.append(torch.nn.functional.one_hot(index, count).float())
        y = torch.cat(parts, 1)
        for layer in self.layers[:-1]:
            y = torch.relu(layer(y))
        return self.layers[-1](y)


MODEL = Mlp().eval()
with torch.inference_mode():
    MODEL(torch.zeros(1, len(FEATURES)))

app = FastAPI()


def encode(features):
    if not isinstance(features, dict):
        raise HTTPException(422, "`features` must be an object")
    extra = set(features) - {f["name"] for f in FEATURES}
    if extra:
        raise HTTPException(422, f"feature `{sorted(extra)[0]}`: is not a feature of the schema")
    row = []
    for f in FEATURES:
        if f["name"] not in features:
            raise HTTPException(422, f"feature `{f['name']}`: is missing")
        value = features[f["name"]]
        if f["type"] == "number":
            try:
                x = float(value)
            except (TypeError, ValueError):
                raise HTTPException(422, f"feature `{f['name']}`: {value!r} is not a number")
            if not math.isfinite(x):
                raise HTTPException(422, f"feature `{f['name']}`: {x} is not a finite number")
            if ("min" in f and x < f["min"]) or ("max" in f and x > f["max"]):
                raise HTTPException(422, f"feature `{f['name']}`: {x} is out of range")
            row.append(x)
        else:
            if str(value) not in f["values"]:
                raise HTTPException(422, f"feature `{f['name']}`: `{value}` is not a known value")
            row.append(float(f["values"].index(str(value))))
    return row


@app.post("/predict")
async def predict(request: Request):
    body = await request.json()
    row = encode(body.get("features"))
    with torch.inference_mode():
        probs = torch.softmax(MODEL(torch.tensor([row])), 1)[0].tolist()
    index = max(range(len(probs)), key=probs.__getitem__)
    return {
        "label": CLASSES[index],
        "index": index,
        "confidence": probs[index],
        "probabilities": dict(zip(CLASSES, probs)),
    }


@app.get("/healthz")
def healthz():
    return {"status": "ok"}
