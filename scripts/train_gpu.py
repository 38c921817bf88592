#!/usr/bin/env python3
"""Train an lmzip byte Transformer with PyTorch on a GPU and write it in the engine's format.

The Rust trainer (`lmzip train`, crates/train) is the reference that CI tests; this script is
the same model, loss and optimizer on a GPU, for training runs a 2-core CPU cannot do (on the
CPU it serves to continue a model, `--init`, as models/lmzip-800k-everyday was made). Its
data come from `lmzip dataset DIR` (the same preprocessing and held-out split as `lmzip
train`), optionally xz-compressed (`DIR/MODALITY.train[.xz]`, `DIR/MODALITY.held-out[.xz]`).

The model follows docs/ENGINE.md exactly: 257 input symbols (bytes + beginning-of-chunk),
pre-LN blocks with rotary positions on pairs (i, i + hd/2), causal softmax attention (with
`--window`, numerics 2's sliding window that keeps the start token), tanh-GELU
MLP, final LayerNorm and a biased head; tensors are stored in the engine's names and (in, out)
layouts, F32. Training runs in bf16 autocast; the held-out score is computed in f32, as the
engine computes.

Example (the recipe of models/lmzip-3.2m, see models/README.md):
    lmzip dataset data/
    python3 scripts/train_gpu.py --data data --out models/lmzip-3.2m --preset 3.2m --minutes 7
"""
import argparse
import csv
import json
import lzma
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

PRESETS = {"200k": (64, 4, 4), "800k": (128, 4, 4), "3.2m": (256, 4, 8)}
BOS = 256
CHUNK = 2048


def read_chunks(path):
    """A flat file of 2048-byte chunks (or its .xz) as a uint8 tensor [n, 2048], or None."""
    for p, opener in ((path, open), (path + ".xz", lzma.open)):
        if os.path.exists(p):
            with opener(p, "rb") as f:
                raw = f.read()
            return torch.from_numpy(np.frombuffer(raw, dtype=np.uint8).copy().reshape(-1, CHUNK))
    return None


def config_for(args):
    d, layers, heads = PRESETS[args.preset]
    d = args.d_model or d
    return {
        "architecture": "lmzip-byte-transformer",
        "d_model": d,
        "n_layers": args.layers or layers,
        "n_heads": args.heads or heads,
        "d_ff": 4 * d,
        "context": args.context,
        "norm": "pre",
        "norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "trained_on": "+".join(args.modality),
    }


def init_params(cfg, gen):
    """Weights in the engine's names and layouts: GPT-2-style normal(0, 0.02) matrices, the
    residual outputs scaled by 1/sqrt(2 layers), zero biases, unit norms."""
    d, f, L = cfg["d_model"], cfg["d_ff"], cfg["n_layers"]

    def normal(*shape, std=0.02):
        return torch.randn(*shape, generator=gen) * std

    p = {"embed": normal(257, d)}
    for l in range(L):
        b = f"blocks.{l}."
        p[b + "ln1.weight"], p[b + "ln1.bias"] = torch.ones(d), torch.zeros(d)
        p[b + "attn.wqkv"] = normal(d, 3 * d)
        p[b + "attn.wo"] = normal(d, d, std=0.02 / math.sqrt(2 * L))
        p[b + "ln2.weight"], p[b + "ln2.bias"] = torch.ones(d), torch.zeros(d)
        p[b + "mlp.w1"], p[b + "mlp.b1"] = normal(d, f), torch.zeros(f)
        p[b + "mlp.w2"], p[b + "mlp.b2"] = normal(f, d, std=0.02 / math.sqrt(2 * L)), torch.zeros(d)
    p["ln_f.weight"], p["ln_f.bias"] = torch.ones(d), torch.zeros(d)
    p["head.weight"], p["head.bias"] = normal(d, 256), torch.zeros(256)
    return p


def rope_tables(cfg, device):
    hd = cfg["d_model"] // cfg["n_heads"]
    half = hd // 2
    pos = torch.arange(cfg["context"], dtype=torch.float64)
    freq = cfg["rope_theta"] ** (-2.0 * torch.arange(half, dtype=torch.float64) / hd)
    ang = pos[:, None] * freq[None, :]
    return ang.cos().float().to(device), ang.sin().float().to(device)


def rotate(x, cos, sin):
    """x [B, H, T, hd]: pairs (i, i + hd/2) turn by the position's angle."""
    half = x.shape[-1] // 2
    a, b = x[..., :half], x[..., half:]
    return torch.cat((a * cos - b * sin, b * cos + a * sin), dim=-1)


def window_mask(T, window, device):
    """The keys each position sees under numerics 2's sliding window (docs/ENGINE.md): position
    i sees j in max(0, i + 1 - window)..=i and, once the window has moved, j = 0 (the start
    token). None (full causal attention) when the window covers all T positions."""
    if not window or window >= T:
        return None
    i = torch.arange(T, device=device)[:, None]
    j = torch.arange(T, device=device)[None, :]
    return (j <= i) & ((j > i - window) | (j == 0))


def banded_attention(q, k, v, window):
    """Numerics 2's sliding-window attention (what `window_mask` allows) for q, k, v
    [B, H, T, hd] with T a multiple of `window`, computed block by block: the queries of block
    b see the keys of blocks b - 1 and b and the start token, a quarter of the dense work at
    T = 2048 and window 256."""
    B, H, T, hd = q.shape
    W, nb = window, T // window
    padded = lambda x: F.pad(x, (0, 0, W, 0)).unfold(2, 2 * W, W).transpose(-1, -2)
    sink = lambda x: x[:, :, :1, None].expand(B, H, nb, 1, hd)
    keys = torch.cat((sink(k), padded(k)), dim=3)  # [B, H, nb, 1 + 2W, hd]
    values = torch.cat((sink(v), padded(v)), dim=3)
    i = (torch.arange(nb, device=q.device)[:, None] * W + torch.arange(W, device=q.device))[:, :, None]
    j = (torch.arange(nb, device=q.device)[:, None] - 1) * W + torch.arange(2 * W, device=q.device)
    j = j[:, None, :]
    band = (j >= 0) & (j <= i) & (j > i - W)
    mask = torch.cat((i >= W, band), dim=2)  # [nb, W, 1 + 2W]
    out = F.scaled_dot_product_attention(q.reshape(B, H, nb, W, hd), keys, values, attn_mask=mask)
    return out.reshape(B, H, T, hd)


def forward(p, cfg, rope, inputs, window=None):
    """Logits [B, T, 256] for inputs [B, T] (BOS, then the chunk's bytes but the last), with
    full causal attention or, with `window`, numerics 2's sliding window."""
    d, H, eps = cfg["d_model"], cfg["n_heads"], cfg["norm_eps"]
    B, T = inputs.shape
    hd = d // H
    cos, sin = rope[0][:T], rope[1][:T]
    mask = window_mask(T, window, inputs.device)
    banded = mask is not None and T % window == 0
    x = p["embed"][inputs]
    for l in range(cfg["n_layers"]):
        b = f"blocks.{l}."
        h = F.layer_norm(x, (d,), p[b + "ln1.weight"], p[b + "ln1.bias"], eps)
        q, k, v = (h @ p[b + "attn.wqkv"]).split(d, dim=-1)
        q, k, v = (t.view(B, T, H, hd).transpose(1, 2) for t in (q, k, v))
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        if mask is None:
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        elif banded:
            a = banded_attention(q, k, v, window)
        else:
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + a.transpose(1, 2).reshape(B, T, d) @ p[b + "attn.wo"]
        h = F.layer_norm(x, (d,), p[b + "ln2.weight"], p[b + "ln2.bias"], eps)
        h = F.gelu(h @ p[b + "mlp.w1"] + p[b + "mlp.b1"], approximate="tanh")
        x = x + h @ p[b + "mlp.w2"] + p[b + "mlp.b2"]
    x = F.layer_norm(x, (d,), p["ln_f.weight"], p["ln_f.bias"], eps)
    return x @ p["head.weight"] + p["head.bias"]


def with_bos(windows):
    bos = torch.full((windows.shape[0], 1), BOS, dtype=torch.long, device=windows.device)
    return torch.cat((bos, windows[:, :-1].long()), dim=1)


@torch.no_grad()
def held_out_bits(p, cfg, rope, chunks, window=None, batch=32):
    """Bits per byte of f32 logits over whole chunks cut to the context, as the engine codes."""
    total, n = 0.0, 0
    for i in range(0, chunks.shape[0], batch):
        c = chunks[i : i + batch]
        for s in range(0, CHUNK, cfg["context"]):
            w = c[:, s : s + cfg["context"]].long()
            logits = forward(p, cfg, rope, with_bos(w), window).float()
            total += F.cross_entropy(logits.reshape(-1, 256), w.reshape(-1), reduction="sum").item()
            n += w.numel()
    return total / n / math.log(2)


def save_model(p, cfg, out):
    from safetensors.torch import save_file

    os.makedirs(out, exist_ok=True)
    tensors = {k: v.detach().float().cpu().contiguous() for k, v in p.items()}
    tmp = os.path.join(out, "model.safetensors.tmp")
    save_file(tensors, tmp)
    os.replace(tmp, os.path.join(out, "model.safetensors"))
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)


def plot(csv_path, svg_path):
    """Draw the held-out curves of a `train_gpu.csv` (bits per byte against tokens seen) as SVG,
    with no plotting library: one polyline per data set."""
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    sets = [k for k in rows[0] if k.startswith("held_")]
    xs = [int(r["tokens"]) for r in rows]
    ys = {k: [float(r[k]) for r in rows] for k in sets}
    top = math.ceil(max(max(v) for v in ys.values()))
    W, H, L, B = 760, 420, 60, 40
    px = lambda x: L + (W - L - 170) * x / max(max(xs), 1)
    py = lambda y: 20 + (H - B - 20) * (1 - y / top)
    colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{L}" y="14">held-out bits per byte against training tokens ({os.path.basename(csv_path)})</text>']
    for t in range(top + 1):
        out.append(f'<line x1="{L}" x2="{W - 170}" y1="{py(t):.1f}" y2="{py(t):.1f}" stroke="#ddd"/>'
                   f'<text x="{L - 8}" y="{py(t) + 4:.1f}" text-anchor="end">{t}</text>')
    for i in range(5):
        x = max(xs) * i / 4
        out.append(f'<text x="{px(x):.1f}" y="{H - B + 16}" text-anchor="middle">{x / 1e6:.0f}M</text>')
    for n, k in enumerate(sets):
        c = colours[n % len(colours)]
        pts = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(xs, ys[k]))
        out.append(f'<polyline fill="none" stroke="{c}" stroke-width="2" points="{pts}"/>')
        out.append(f'<text x="{W - 160}" y="{30 + 16 * n}" fill="{c}">{k[5:]} {ys[k][-1]:.3f}</text>')
    out.append("</svg>")
    with open(svg_path, "w") as f:
        f.write("\n".join(out) + "\n")


def interpolate(start_dir, end_dir, alpha, out):
    """Write the weights (1 - alpha) * start + alpha * end (a continued model pulled back toward
    where it started: it keeps more of what the start knew) with the end's config."""
    from safetensors.torch import load_file

    a = load_file(os.path.join(start_dir, "model.safetensors"))
    b = load_file(os.path.join(end_dir, "model.safetensors"))
    assert a.keys() == b.keys() and all(a[k].shape == b[k].shape for k in a), "different shapes"
    with open(os.path.join(end_dir, "config.json")) as f:
        cfg = json.load(f)
    save_model({k: (1 - alpha) * a[k].double() + alpha * b[k].double() for k in a}, cfg, out)


def check(model_dir, chunk_file, engine_logits_file, window=None):
    """Compare the engine's logits (from `cargo run --example logits`) with this forward."""
    from safetensors.torch import load_file

    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    p = load_file(os.path.join(model_dir, "model.safetensors"))
    chunk = torch.frombuffer(bytearray(open(chunk_file, "rb").read()), dtype=torch.uint8)[None]
    ours = forward(p, cfg, rope_tables(cfg, "cpu"), with_bos(chunk), window)[0]
    engine = torch.from_numpy(np.fromfile(engine_logits_file, dtype="<f4")).view(-1, 256)
    diff = (ours - engine).abs().max().item()
    print(f"max |logit difference| engine vs PyTorch: {diff:.3g} over {engine.numel()} logits")
    return diff


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="folder written by `lmzip dataset`")
    ap.add_argument("--out", help="model directory to write")
    ap.add_argument("--preset", default="3.2m", choices=PRESETS)
    ap.add_argument("--d-model", type=int)
    ap.add_argument("--layers", type=int)
    ap.add_argument("--heads", type=int)
    ap.add_argument("--context", type=int, default=2048)
    ap.add_argument("--window", type=int, default=0,
                    help="train for a sliding attention window with the start token kept (numerics 2: 256); 0: full")
    ap.add_argument("--init", metavar="MODEL",
                    help="start from this model directory's weights and shape (continued training)")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads for PyTorch (0: its default)")
    ap.add_argument("--modality", default="text,images,audio8", type=lambda s: s.split(","),
                    help="also corpus-source, corpus-markup, corpus-data, corpus-log, corpus-binary")
    ap.add_argument("--weights", type=lambda s: [int(w) for w in s.split(",")],
                    help="windows per step in proportion to these integers, one per modality (default: equal)")
    ap.add_argument("--minutes", type=float, default=7.0, help="training time; the schedule follows the clock")
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: clock only)")
    ap.add_argument("--batch", type=int, default=128, help="windows per step")
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--min-lr-ratio", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--eval-every", type=float, default=60.0, help="seconds between held-out scores")
    ap.add_argument("--eval-chunks", type=int, default=256, help="held-out chunks per modality")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--compile", action="store_true", help="torch.compile the training step")
    ap.add_argument("--interpolate", nargs=3, metavar=("START", "END", "ALPHA"),
                    help="only write (1 - ALPHA) START + ALPHA END into --out (model directories)")
    ap.add_argument("--plot", nargs=2, metavar=("CSV", "SVG"), help="only draw a train_gpu.csv's held-out curves")
    ap.add_argument("--check", nargs=3, metavar=("MODEL", "CHUNK", "ENGINE_LOGITS"),
                    help="only compare the engine's logits of CHUNK with this forward; exit 1 above 1e-4")
    args = ap.parse_args()
    if args.plot:
        return plot(*args.plot)
    if args.interpolate:
        start, end, alpha = args.interpolate
        return interpolate(start, end, float(alpha), args.out)
    if args.check:
        raise SystemExit(0 if check(*args.check, window=args.window) <= 1e-4 else 1)
    if args.threads:
        torch.set_num_threads(args.threads)

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    cfg = config_for(args)
    if args.init:
        from safetensors.torch import load_file

        with open(os.path.join(args.init, "config.json")) as f:
            cfg = {**json.load(f), "trained_on": cfg["trained_on"], "context": cfg["context"]}
    assert cfg["context"] <= CHUNK and CHUNK % cfg["context"] == 0
    assert cfg["d_model"] % cfg["n_heads"] == 0 and (cfg["d_model"] // cfg["n_heads"]) % 2 == 0

    train, held = [], []
    for m in args.modality:
        t = read_chunks(os.path.join(args.data, m + ".train"))
        h = read_chunks(os.path.join(args.data, m + ".held-out"))
        assert t is not None and h is not None, f"{m}: data missing in {args.data}"
        hsel = torch.randperm(h.shape[0], generator=gen)[: args.eval_chunks].sort().values
        train.append(t.to(dev))
        held.append(h[hsel].to(dev))
        print(f"{m}: {t.shape[0]} training chunks, {h.shape[0]} held out ({len(hsel)} scored)", flush=True)

    start_weights = load_file(os.path.join(args.init, "model.safetensors")) if args.init else init_params(cfg, gen)
    params = {k: v.float().to(dev).requires_grad_() for k, v in start_weights.items()}
    n_params = sum(v.numel() for v in params.values())
    print(f"{n_params} parameters, config {json.dumps(cfg)}", flush=True)
    rope = rope_tables(cfg, dev)
    decay = [v for k, v in params.items() if v.dim() == 2]
    no_decay = [v for k, v in params.items() if v.dim() != 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr, betas=(0.9, 0.95), eps=1e-8, **({"fused": True} if dev == "cuda" else {}),
    )
    weights = args.weights or [1] * len(train)
    assert len(weights) == len(train) and sum(weights) > 0, "one weight per modality"
    per_mod = [args.batch * w // sum(weights) for w in weights]
    per_mod[0] += args.batch - sum(per_mod)

    def batch():
        rows = []
        for data, n in zip(train, per_mod):
            idx = torch.randint(data.shape[0], (n,), device=dev)
            off = torch.randint(CHUNK - cfg["context"] + 1, (1,)).item()
            rows.append(data[idx, off : off + cfg["context"]])
        return torch.cat(rows)

    def loss_of(windows):
        with torch.autocast(device_type=dev, dtype=torch.bfloat16, enabled=dev == "cuda"):
            logits = forward(params, cfg, rope, with_bos(windows), args.window)
        return F.cross_entropy(logits.float().reshape(-1, 256), windows.long().reshape(-1))

    step_loss = torch.compile(loss_of) if args.compile else loss_of
    os.makedirs(args.out, exist_ok=True)
    log = open(os.path.join(args.out, "train_gpu.csv"), "w", newline="")
    writer = csv.writer(log)
    writer.writerow(["step", "seconds", "tokens", "lr", "train_bits", *[f"held_{m}" for m in args.modality]])

    def evaluate(step, seconds, tokens, lr, train_bits):
        scores = [held_out_bits(params, cfg, rope, h, args.window) for h in held]
        writer.writerow([step, f"{seconds:.1f}", tokens, f"{lr:.3g}", f"{train_bits:.4f}", *[f"{s:.4f}" for s in scores]])
        log.flush()
        print(f"step {step} {seconds:.0f}s {tokens/1e6:.0f}M tokens lr {lr:.2e} train {train_bits:.3f} bits/byte; held out "
              + ", ".join(f"{m} {s:.3f} ({100*s/8:.1f} %)" for m, s in zip(args.modality, scores)), flush=True)
        save_model(params, cfg, args.out)

    budget = args.minutes * 60.0
    if args.init:  # the starting point's held-out scores, on the same chunks
        evaluate(0, 0.0, 0, 0.0, float("nan"))
    start = time.time()
    step, tokens, next_eval, lr, running = 0, 0, args.eval_every, args.lr, float("nan")
    while True:
        elapsed = time.time() - start
        if elapsed >= budget or (args.max_steps and step >= args.max_steps):
            break
        frac = elapsed / budget if not args.max_steps else step / args.max_steps
        warm = min(1.0, (step + 1) / args.warmup)
        lr = args.lr * warm * (args.min_lr_ratio + (1 - args.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        windows = batch()
        try:
            loss = step_loss(windows)
        except Exception as e:  # a compile failure falls back to eager mode
            if step_loss is loss_of:
                raise
            print(f"torch.compile failed ({type(e).__name__}: {e}); running eagerly", flush=True)
            step_loss = loss_of
            loss = step_loss(windows)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(params.values()), args.clip)
        opt.step()
        step += 1
        tokens += windows.numel()
        if step % 50 == 0 or step == 1:
            running = loss.item() / math.log(2)
            print(f"step {step} {time.time()-start:.0f}s loss {running:.3f} bits/byte, "
                  f"{tokens/(time.time()-start)/1e6:.2f}M tokens/s", flush=True)
        if time.time() - start >= next_eval:
            evaluate(step, time.time() - start, tokens, lr, running)
            next_eval += args.eval_every
    evaluate(step, time.time() - start, tokens, lr, running)
    print(f"trained {step} steps, {tokens} tokens in {time.time()-start:.0f} s; model in {args.out}", flush=True)


if __name__ == "__main__":
    main()
