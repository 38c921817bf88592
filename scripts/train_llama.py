#!/usr/bin/env python3
"""Train a small Llama-shaped token model in PyTorch (CPU or GPU) for lmzip's engine.

The tokenization study's models: the same architecture the engine runs for foundation LLMs
(RMSNorm, SwiGLU, rotary positions, tied embeddings), trained on the token files that
`lmzip dataset --tokenizer` writes (the chunks cut exactly as `lmzip --model` cuts them), and
saved as a Hugging Face directory (config.json, model.safetensors, tokenizer.json) that
`lmzip --model DIR` and `lmzip bench --model DIR` load.

    lmzip dataset data --modality text --tokenizer tok.json
    scripts/train_llama.py --tokens data/text.train.tokens --tokenizer tok.json \
        --out models/study/bpe-1k --minutes 6

Every chunk is one sequence: the start token (0, `<|endoftext|>`), then the chunk's tokens; the
loss is the mean cross-entropy over the chunk's tokens, reported in bits per byte on
`--held-out` tokens (with `--held-out-bytes` bytes), which `lmzip bench` should reproduce.
"""
import argparse
import json
import math
import os
import shutil
import struct
import time

import numpy as np
import torch
import torch.nn.functional as F


def read_chunks(path):
    raw = np.fromfile(path, dtype="<u4")
    chunks, i = [], 0
    while i < len(raw):
        n = int(raw[i])
        chunks.append(raw[i + 1 : i + 1 + n].astype(np.int64))
        i += 1 + n
    return chunks


class Llama(torch.nn.Module):
    def __init__(self, vocab, d, layers, heads, ff, context, theta=10000.0, eps=1e-5):
        super().__init__()
        self.heads, self.hd, self.eps = heads, d // heads, eps
        self.embed = torch.nn.Embedding(vocab, d)
        self.blocks = torch.nn.ModuleList()
        for _ in range(layers):
            b = torch.nn.Module()
            b.n1 = torch.nn.Parameter(torch.ones(d))
            b.q, b.k, b.v, b.o = (torch.nn.Linear(d, d, bias=False) for _ in range(4))
            b.n2 = torch.nn.Parameter(torch.ones(d))
            b.gate = torch.nn.Linear(d, ff, bias=False)
            b.up = torch.nn.Linear(d, ff, bias=False)
            b.down = torch.nn.Linear(ff, d, bias=False)
            self.blocks.append(b)
        self.norm = torch.nn.Parameter(torch.ones(d))
        inv = 1.0 / theta ** (torch.arange(0, self.hd, 2, dtype=torch.float64) / self.hd)
        ang = torch.arange(context, dtype=torch.float64)[:, None] * inv[None, :]
        self.register_buffer("cos", torch.cos(ang).float(), persistent=False)
        self.register_buffer("sin", torch.sin(ang).float(), persistent=False)
        torch.nn.init.normal_(self.embed.weight, std=0.02)
        for b in self.blocks:
            for lin in (b.q, b.k, b.v, b.gate, b.up):
                torch.nn.init.normal_(lin.weight, std=0.02)
            for lin in (b.o, b.down):
                torch.nn.init.normal_(lin.weight, std=0.02 / math.sqrt(2 * layers))

    def rms(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * w

    def rotate(self, x):  # x: B, H, T, hd; pairs (i, i + hd/2) as Hugging Face's Llama
        t = x.shape[2]
        c, s = self.cos[:t], self.sin[:t]
        a, b = x[..., : self.hd // 2], x[..., self.hd // 2 :]
        return torch.cat([a * c - b * s, b * c + a * s], dim=-1)

    def forward(self, tokens):
        B, T = tokens.shape
        x = self.embed(tokens)
        for b in self.blocks:
            h = self.rms(x, b.n1)
            q, k, v = (m(h).view(B, T, self.heads, self.hd).transpose(1, 2) for m in (b.q, b.k, b.v))
            att = F.scaled_dot_product_attention(self.rotate(q), self.rotate(k), v, is_causal=True)
            x = x + b.o(att.transpose(1, 2).reshape(B, T, -1))
            h = self.rms(x, b.n2)
            x = x + b.down(F.silu(b.gate(h)) * b.up(h))
        return self.rms(x, self.norm) @ self.embed.weight.T


def batch(chunks, idx, start, device):
    seqs = [chunks[i] for i in idx]
    t = max(len(s) for s in seqs)
    inp = np.full((len(seqs), t), start, dtype=np.int64)
    tgt = np.full((len(seqs), t), -100, dtype=np.int64)
    for r, s in enumerate(seqs):
        inp[r, 1 : len(s)] = s[:-1]
        tgt[r, : len(s)] = s
    return torch.from_numpy(inp).to(device), torch.from_numpy(tgt).to(device)


def evaluate(model, chunks, start, device, n_bytes):
    model.eval()
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(chunks), 16):
            inp, tgt = batch(chunks, range(i, min(i + 16, len(chunks))), start, device)
            logits = model(inp)
            total += F.cross_entropy(logits.flatten(0, 1), tgt.flatten(), ignore_index=-100, reduction="sum").item()
    model.train()
    return total / math.log(2) / n_bytes


def save(model, args, vocab, context):
    os.makedirs(args.out, exist_ok=True)
    b0 = model.blocks[0]
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": args.d, "intermediate_size": b0.gate.out_features,
        "num_hidden_layers": args.layers, "num_attention_heads": args.heads,
        "num_key_value_heads": args.heads, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "vocab_size": vocab, "tie_word_embeddings": True, "max_position_embeddings": context,
        "bos_token_id": 0, "eos_token_id": 0, "torch_dtype": "float32",
        "lmzip_trained": f"scripts/train_llama.py, {args.minutes} min, seed {args.seed}",
    }
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    tensors = {"model.embed_tokens.weight": model.embed.weight, "model.norm.weight": model.norm}
    for l, b in enumerate(model.blocks):
        p = f"model.layers.{l}."
        tensors.update({
            p + "input_layernorm.weight": b.n1, p + "self_attn.q_proj.weight": b.q.weight,
            p + "self_attn.k_proj.weight": b.k.weight, p + "self_attn.v_proj.weight": b.v.weight,
            p + "self_attn.o_proj.weight": b.o.weight, p + "post_attention_layernorm.weight": b.n2,
            p + "mlp.gate_proj.weight": b.gate.weight, p + "mlp.up_proj.weight": b.up.weight,
            p + "mlp.down_proj.weight": b.down.weight,
        })
    # safetensors by hand: a JSON header, then the raw little-endian f32 data.
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        data = tensors[name].detach().float().cpu().contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    with open(os.path.join(args.out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head + b"".join(blobs))
    shutil.copy(args.tokenizer, os.path.join(args.out, "tokenizer.json"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--held-out")
    ap.add_argument("--held-out-bytes", type=int)
    ap.add_argument("--minutes", type=float, default=6.0)
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    vocab = json.load(open(args.tokenizer))
    vocab = len(vocab["model"]["vocab"]) + sum(1 for t in vocab["added_tokens"] if t["content"] not in vocab["model"]["vocab"])
    chunks = read_chunks(args.tokens)
    context = 2048
    device = "cuda" if torch.cuda.is_available() else "cpu"
    ff = (8 * args.d // 3 + 63) // 64 * 64
    model = Llama(vocab, args.d, args.layers, args.heads, ff, context).to(device)
    decay = [p for n, p in model.named_parameters() if p.dim() == 2]
    other = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.95))
    params = sum(p.numel() for p in model.parameters())
    print(f"vocab {vocab}, {params} parameters, {len(chunks)} chunks, {sum(map(len, chunks))} tokens, {device}", flush=True)
    budget = args.minutes * 60
    t0, step, seen = time.time(), 0, 0
    while (elapsed := time.time() - t0) < budget:
        frac = elapsed / budget
        lr = args.lr * min(1.0, (step + 1) / 50) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        inp, tgt = batch(chunks, rng.integers(0, len(chunks), args.batch), 0, device)
        loss = F.cross_entropy(model(inp).flatten(0, 1), tgt.flatten(), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        seen += int((tgt >= 0).sum())
        if step % 50 == 0:
            print(f"step {step} {elapsed:.0f}s loss {loss.item():.3f} nats/token, {seen} tokens", flush=True)
    print(f"trained {step} steps, {seen} tokens in {time.time() - t0:.0f}s", flush=True)
    if args.held_out:
        bpb = evaluate(model, read_chunks(args.held_out), 0, device, args.held_out_bytes)
        print(f"held-out: {bpb:.4f} bits/byte ({100 * bpb / 8:.2f} % rate, PyTorch f32)", flush=True)
    save(model, args, vocab, context)


if __name__ == "__main__":
    main()
