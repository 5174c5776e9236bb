"""Transcoder files: our own format, and circuit-tracer 0.5.0's formats (read and write).

Ours: a directory with `config.json` (`{"format": "circuitmap-transcoder", "version": 1,
"config": TranscoderConfig, "metadata": {...}}`) and `transcoder.safetensors` (keys `W_enc`,
`b_enc`, `b_dec`, `threshold`?, `W_skip`?, `W_dec.{l}`).

circuit-tracer (a directory with `config.yaml`, `model_kind` and the two TransformerLens hook
names `feature_input_hook` / `feature_output_hook`):
- `transcoder_set`: per layer `layer_{i}.safetensors` with `W_enc [F, d]`, `b_enc [F]`,
  `W_dec [F, d]`, `b_dec [d]`, optional `activation_function.threshold [F]` (JumpReLU, else
  ReLU) and `W_skip [d, d]` (applied as `x @ W_skip.T`); or a `transcoders:` list of files,
  which may be GemmaScope `.npz` files (`W_enc [d, F]`, `W_dec [F, d]`, `b_enc`, `b_dec`,
  `threshold`).
- `cross_layer_transcoder`: `W_enc_{i}.safetensors` (`W_enc_{i} [F, d]`, `b_enc_{i} [F]`,
  `b_dec_{i} [d]`, optional `threshold_{i} [F]`) and `W_dec_{i}.safetensors`
  (`W_dec_{i} [F, L - i, d]`). The format has no skip connection.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from huggingface_hub import try_to_load_from_cache
from safetensors.torch import save_file

from circuitmap.transcoders.lazy import LazyTranscoder
from circuitmap.transcoders.ondisk import DiskTensor, SafetensorsFileError, open_safetensors
from circuitmap.transcoders.transcoder import Transcoder, TranscoderConfig, TranscoderFormatError

FORMAT_NAME = "circuitmap-transcoder"
FORMAT_VERSION = 1
CONFIG_JSON = "config.json"
WEIGHTS_FILE = "transcoder.safetensors"
CT_CONFIG = "config.yaml"
#: Transcoders whose weights on disk exceed this are loaded lazily unless asked otherwise.
LAZY_ABOVE_BYTES = 2 << 30

#: TransformerLens hook names (as circuit-tracer's configs use them) -> our sites.
INPUT_HOOKS = {
    "hook_resid_mid": "resid_mid",
    "mlp.hook_in": "mlp_in",
    "ln2.hook_normalized": "mlp_in_unweighted",
}
OUTPUT_HOOKS = {"mlp.hook_out": "mlp_out", "hook_mlp_out": "mlp_out_post_norm"}
_SITE_TO_INPUT_HOOK = {site: hook for hook, site in INPUT_HOOKS.items()}
_SITE_TO_OUTPUT_HOOK = {site: hook for hook, site in OUTPUT_HOOKS.items()}


# --- public entry points ---------------------------------------------------------------------


def save_transcoder(
    tc: Transcoder,
    path: str | Path,
    format: str = "circuitmap",
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Save to a directory, in our format (`circuitmap`) or circuit-tracer's (`circuit-tracer`:
    a cross-layer transcoder for a CLT, a transcoder set for a PLT)."""
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    if format == "circuitmap":
        _save_ours(tc, out, metadata or {})
    elif format == "circuit-tracer":
        save_circuit_tracer(tc, out)
    else:
        raise TranscoderFormatError(f"unknown format {format!r} (circuitmap | circuit-tracer)")
    return out


def load_transcoder(
    path: str | Path,
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype = torch.float32,
    lazy: bool | None = None,
) -> Transcoder:
    """Load a transcoder from a directory in our format or circuit-tracer's (detected), reading
    every tensor straight into `dtype` (no float32 copy first).

    `lazy`: leave encoders and decoders on disk (`LazyTranscoder`: encoders are read a chunk at
    a time, decoder rows for active features only); None decides by size: lazy when the
    weights on disk exceed `LAZY_ABOVE_BYTES`."""
    root = Path(path)
    if root.is_file() and root.name in (CONFIG_JSON, CT_CONFIG):
        root = root.parent
    if not root.exists():
        raise TranscoderFormatError(f"{root}: no such transcoder directory")
    if not root.is_dir():
        raise TranscoderFormatError(
            f"{root}: expected a directory with {CONFIG_JSON} or {CT_CONFIG}"
        )
    if (root / CONFIG_JSON).exists():
        parts = _load_ours(root)
    elif (root / CT_CONFIG).exists():
        parts = load_circuit_tracer(root, lazy)
    else:
        raise TranscoderFormatError(
            f"{root}: neither {CONFIG_JSON} (circuitmap) nor {CT_CONFIG} (circuit-tracer) found"
        )
    dtype = _resolve_dtype(dtype)
    if lazy is None:
        lazy = parts.weight_bytes() > LAZY_ABOVE_BYTES
    tc = parts.lazy(dtype) if lazy else parts.eager(dtype)
    return tc.to(device=device)


def _resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    names = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if dtype not in names:
        raise TranscoderFormatError(f"unknown dtype {dtype!r}; expected one of {', '.join(names)}")
    return names[dtype]


def read_config(path: str | Path) -> dict[str, Any]:
    """Our `config.json` as a dict (config + metadata) without reading the weights."""
    file = Path(path)
    file = file / CONFIG_JSON if file.is_dir() else file
    try:
        data = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise TranscoderFormatError(f"{file}: unreadable transcoder config ({e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise TranscoderFormatError(f"{file}: not a {FORMAT_NAME} config")
    return data


# --- our format --------------------------------------------------------------------------------


def _save_ours(tc: Transcoder, out: Path, metadata: dict[str, Any]) -> None:
    tensors = {"W_enc": tc.W_enc, "b_enc": tc.b_enc, "b_dec": tc.b_dec}
    if tc.threshold is not None:
        tensors["threshold"] = tc.threshold
    if tc.W_skip is not None:
        tensors["W_skip"] = tc.W_skip
    tensors.update({f"W_dec.{layer}": w for layer, w in enumerate(tc.W_dec)})
    _write_safetensors(out / WEIGHTS_FILE, tensors)
    doc = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "config": tc.config.to_dict(),
        "metadata": metadata,
    }
    (out / CONFIG_JSON).write_text(json.dumps(doc, indent=2) + "\n")


def _load_ours(root: Path) -> _Parts:
    data = read_config(root)
    if data.get("version", 0) > FORMAT_VERSION:
        raise TranscoderFormatError(
            f"{root / CONFIG_JSON}: format version {data['version']} is newer than this "
            f"circuitmap reads ({FORMAT_VERSION})"
        )
    config = TranscoderConfig.from_dict(data.get("config") or {})
    tensors = _read_safetensors(root / WEIGHTS_FILE)
    if "W_enc" in tensors:
        w_enc = tensors.pop("W_enc")
        if w_enc.dim() != 3 or w_enc.shape[0] != config.n_layers:
            raise TranscoderFormatError(
                f"{root / WEIGHTS_FILE}: W_enc has shape {list(w_enc.shape)}, expected "
                f"{[config.n_layers, config.n_features, config.d_model]}"
            )
        tensors.update({f"W_enc.{layer}": w for layer, w in enumerate(w_enc)})
    return _Parts(config, tensors, root / WEIGHTS_FILE)


# --- circuit-tracer formats --------------------------------------------------------------------


def save_circuit_tracer(tc: Transcoder, out: str | Path) -> Path:
    """Write `tc` as circuit-tracer 0.5.0 reads it (CLT -> cross_layer_transcoder files,
    PLT -> transcoder_set files), with a `config.yaml` naming the hooks."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = tc.config
    if cfg.activation == "topk":
        raise TranscoderFormatError("circuit-tracer's formats cannot express a TopK activation")
    if cfg.kind == "clt" and tc.W_skip is not None:
        raise TranscoderFormatError("circuit-tracer's CLT format has no skip connection")
    for layer in range(tc.n_layers):
        if cfg.kind == "clt":
            enc = {
                f"W_enc_{layer}": tc.W_enc[layer],
                f"b_enc_{layer}": tc.b_enc[layer],
                f"b_dec_{layer}": tc.b_dec[layer],
            }
            if tc.threshold is not None:
                enc[f"threshold_{layer}"] = tc.threshold[layer]
            _write_safetensors(out / f"W_enc_{layer}.safetensors", enc)
            _write_safetensors(
                out / f"W_dec_{layer}.safetensors", {f"W_dec_{layer}": tc.W_dec[layer]}
            )
        else:
            single = {
                "W_enc": tc.W_enc[layer],
                "W_dec": tc.W_dec[layer][:, 0],
                "b_enc": tc.b_enc[layer],
                "b_dec": tc.b_dec[layer],
            }
            if tc.threshold is not None:
                single["activation_function.threshold"] = tc.threshold[layer]
            if tc.W_skip is not None:
                single["W_skip"] = tc.W_skip[layer].T
            _write_safetensors(out / f"layer_{layer}.safetensors", single)
    config = {
        "model_kind": "cross_layer_transcoder" if cfg.kind == "clt" else "transcoder_set",
        "feature_input_hook": _SITE_TO_INPUT_HOOK[cfg.input_site],
        "feature_output_hook": _SITE_TO_OUTPUT_HOOK[cfg.output_site],
        "scan": cfg.name or cfg.model_name or out.name,
    }
    if cfg.model_name:
        config["model_name"] = cfg.model_name
    (out / CT_CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))
    return out


def load_circuit_tracer(root: str | Path, lazy: bool | None = None) -> _Parts:
    """Read a circuit-tracer transcoder directory (`config.yaml` + weight files), big tensors
    left on disk. With `lazy` (None: by size), GemmaScope `.npz` files are read through their
    row-readable cache."""
    root = Path(root)
    config_file = root / CT_CONFIG
    try:
        config = yaml.safe_load(config_file.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise TranscoderFormatError(f"{config_file}: unreadable ({e})") from None
    if not isinstance(config, dict):
        raise TranscoderFormatError(f"{config_file}: expected a mapping")
    kind = config.get("model_kind")
    input_site = _site(config, "feature_input_hook", INPUT_HOOKS, config_file)
    output_site = _site(config, "feature_output_hook", OUTPUT_HOOKS, config_file)
    scan = config.get("scan")
    meta = {
        "input_site": input_site,
        "output_site": output_site,
        "model_name": str(config.get("model_name", "")),
        "name": str(scan if isinstance(scan, str) else root.name),
    }
    if kind == "cross_layer_transcoder":
        return _load_ct_clt(root, meta)
    if kind == "transcoder_set":
        return _load_ct_set(_layer_files(root, config), meta, lazy)
    raise TranscoderFormatError(
        f"{config_file}: model_kind must be transcoder_set or cross_layer_transcoder, got {kind!r}"
    )


def _site(config: dict, key: str, table: dict[str, str], file: Path) -> str:
    hook = config.get(key)
    if hook not in table:
        raise TranscoderFormatError(f"{file}: {key} {hook!r} is not one of {sorted(table)}")
    return table[hook]


def _numbered(root: Path, pattern: str) -> list[Path]:
    """Files `pattern` (with one `{i}`) in `root`, checked to be numbered 0..n-1."""
    regex = re.compile(re.escape(pattern).replace(r"\{i\}", r"(\d+)") + "$")
    found = {int(m.group(1)): p for p in root.iterdir() if (m := regex.match(p.name))}
    if not found:
        raise TranscoderFormatError(f"{root}: no {pattern.format(i='*')} files")
    missing = sorted(set(range(max(found) + 1)) - found.keys())
    if missing:
        raise TranscoderFormatError(f"{root}: missing {pattern.format(i=missing[0])}")
    return [found[i] for i in range(len(found))]


def _layer_files(root: Path, config: dict) -> list[Path]:
    listed = [str(entry) for entry in config.get("transcoders") or []]
    if not listed:
        return _numbered(root, "layer_{i}.safetensors")
    unique_names = len({Path(e).name for e in listed}) == len(listed)
    return [_resolve_listed(root, entry, unique_names) for entry in listed]


def _resolve_listed(root: Path, entry: str, by_name: bool) -> Path:
    """A `transcoders:` entry: a local path (absolute or relative to the directory) or an
    `hf://repo/file` URI, found next to the config (as `file`, or by its base name when the
    base names are unique) or in the Hugging Face cache. Nothing is downloaded."""
    if entry.startswith("hf://"):
        parts = entry[len("hf://") :].split("?", 1)[0].split("/", 2)
        if len(parts) < 3:
            raise TranscoderFormatError(f"{root / CT_CONFIG}: malformed transcoder URI {entry}")
        repo_id, file_path = "/".join(parts[:2]), parts[2]
        candidates = [root / file_path] + ([root / Path(file_path).name] if by_name else [])
        cached = try_to_load_from_cache(repo_id, file_path)
        if isinstance(cached, str):
            candidates.append(Path(cached))
    else:
        candidates = [Path(entry), root / entry]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise TranscoderFormatError(
        f"{root / CT_CONFIG}: transcoder file {entry} not found (looked for "
        f"{', '.join(str(c) for c in candidates)} and the Hugging Face cache; nothing is "
        "downloaded)"
    )


def _load_ct_clt(root: Path, meta: dict[str, str]) -> _Parts:
    enc_files = _numbered(root, "W_enc_{i}.safetensors")
    n_layers = len(enc_files)
    parts: dict[str, list[torch.Tensor]] = {"b_enc": [], "b_dec": [], "threshold": []}
    tensors: dict[str, torch.Tensor] = {}
    for layer, enc_file in enumerate(enc_files):
        enc = _read_safetensors(enc_file)
        tensors[f"W_enc.{layer}"] = _need(enc, f"W_enc_{layer}", enc_file)
        for key in ("b_enc", "b_dec"):
            parts[key].append(_need(enc, f"{key}_{layer}", enc_file).load())
        if f"threshold_{layer}" in enc:
            parts["threshold"].append(enc[f"threshold_{layer}"].load().reshape(-1))
        elif parts["threshold"]:
            raise TranscoderFormatError(f"{enc_file}: missing threshold_{layer}")
        dec_file = root / f"W_dec_{layer}.safetensors"
        if not dec_file.exists():
            raise TranscoderFormatError(f"{root}: missing {dec_file.name}")
        tensors[f"W_dec.{layer}"] = _need(_read_safetensors(dec_file), f"W_dec_{layer}", dec_file)
    if parts["threshold"] and len(parts["threshold"]) != n_layers:
        raise TranscoderFormatError(
            f"{enc_files[0]}: threshold_0 missing but later layers have one"
        )
    first = enc_files[0]
    tensors.update({k: _stack(v, k, first) for k, v in parts.items() if v})
    F, d = _shape2(tensors["W_enc.0"], "W_enc_0", first)
    config = TranscoderConfig(
        kind="clt",
        n_layers=n_layers,
        d_model=d,
        n_features=F,
        activation="jumprelu" if "threshold" in tensors else "relu",
        **meta,
    )
    return _Parts(config, tensors, root)


def _load_ct_set(files: list[Path], meta: dict[str, str], lazy: bool | None) -> _Parts:
    npz = [f for f in files if f.suffix == ".npz"]
    if npz and (lazy or (lazy is None and sum(f.stat().st_size for f in npz) > LAZY_ABOVE_BYTES)):
        files = [npz_cache_file(f) if f.suffix == ".npz" else f for f in files]
    per_layer = [_read_npz(f) if f.suffix == ".npz" else _read_ct_layer(f) for f in files]
    keys = [set(layer) for layer in per_layer]
    for layer, (f, k) in enumerate(zip(files, keys, strict=True)):
        if k != keys[0]:
            diff = sorted(k ^ keys[0])
            raise TranscoderFormatError(
                f"{f}: layer {layer} has different parameters than layer 0 ({', '.join(diff)})"
            )
    tensors: dict[str, torch.Tensor] = {}
    for key in keys[0]:
        if key in ("W_enc", "W_dec"):
            for layer, t in enumerate(per_layer):
                w = t[key]
                tensors[f"{key}.{layer}"] = w.unsqueeze(1) if key == "W_dec" and w.dim() == 2 else w
        else:
            tensors[key] = _stack([t[key] for t in per_layer], key, files[0])
    F, d = _shape2(tensors["W_enc.0"], "W_enc", files[0])
    config = TranscoderConfig(
        kind="plt",
        n_layers=len(files),
        d_model=d,
        n_features=F,
        activation="jumprelu" if "threshold" in tensors else "relu",
        skip="W_skip" in tensors,
        **meta,
    )
    return _Parts(config, tensors, files[0].parent)


def _read_ct_layer(file: Path) -> dict[str, torch.Tensor | DiskTensor]:
    """One circuit-tracer per-layer file, renamed to our per-layer keys (encoder and decoder
    left on disk, the rest read). GemmaScope-2 files (lower-case `w_enc [d, F]`, `w_dec [F, d]`,
    `affine_skip_connection`) are read too; their `[d, F]` encoder is read whole."""
    raw: dict = _read_safetensors(file)
    on_disk = ("W_enc", "W_dec", "w_dec")  # row-major [F, ...]: read by rows when lazy
    raw = {k: v if k in on_disk else v.load() for k, v in raw.items()}
    if "w_enc" in raw:
        raw = {
            "W_enc": raw["w_enc"].T,
            "W_dec": _need(raw, "w_dec", file),
            "b_enc": _need(raw, "b_enc", file),
            "b_dec": _need(raw, "b_dec", file),
            "activation_function.threshold": _need(raw, "threshold", file),
        } | ({"W_skip": raw["affine_skip_connection"].T} if "affine_skip_connection" in raw else {})
    out = {key: _need(raw, key, file) for key in ("W_enc", "W_dec", "b_enc", "b_dec")}
    if "activation_function.threshold" in raw:
        out["threshold"] = raw["activation_function.threshold"].reshape(-1)
    if "W_skip" in raw:
        out["W_skip"] = raw["W_skip"].T
    if "log_thresholds" in raw:
        raise TranscoderFormatError(f"{file}: log_thresholds is not supported by circuit-tracer")
    return out


def _read_npz(file: Path) -> dict[str, torch.Tensor]:
    """A GemmaScope transcoder `.npz` (`W_enc [d, F]`, `W_dec [F, d]`, `threshold [F]`)."""
    try:
        with np.load(file) as data:
            raw = {k: torch.from_numpy(np.asarray(data[k], dtype=np.float32)) for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise TranscoderFormatError(f"{file}: not a readable .npz file ({e})") from None
    out = {key: _need(raw, key, file) for key in ("W_enc", "W_dec", "b_enc", "b_dec")}
    out["W_enc"] = out["W_enc"].T
    if "threshold" in raw:
        out["threshold"] = raw["threshold"].reshape(-1)
    return out


# --- shared ------------------------------------------------------------------------------------


@dataclass
class _Parts:
    """A transcoder's config and tensors as read (big ones still on disk, all in the file's
    dtype): per layer `W_enc.{l} [F, d]` and `W_dec.{l} [F, n_out, d]`, stacked `b_enc`,
    `b_dec`, `threshold`?, `W_skip`?. Becomes an eager `Transcoder` or a `LazyTranscoder`."""

    config: TranscoderConfig
    tensors: dict[str, torch.Tensor | DiskTensor]
    where: Path

    def __post_init__(self) -> None:
        c = self.config
        L, F, d = c.n_layers, c.n_features, c.d_model
        n_out = [L - layer if c.kind == "clt" else 1 for layer in range(L)]
        expected = {"b_enc": (L, F), "b_dec": (L, d)}
        expected |= {f"W_enc.{layer}": (F, d) for layer in range(L)}
        expected |= {f"W_dec.{layer}": (F, n_out[layer], d) for layer in range(L)}
        if c.activation == "jumprelu":
            expected["threshold"] = (L, F)
        if c.skip:
            expected["W_skip"] = (L, d, d)
        missing = sorted(expected.keys() - self.tensors.keys())
        if missing:
            raise TranscoderFormatError(f"{self.where}: missing tensor {missing[0]}")
        unexpected = sorted(self.tensors.keys() - expected.keys())
        if unexpected:
            raise TranscoderFormatError(
                f"{self.where}: unexpected tensor {unexpected[0]} for this config"
            )
        for name, shape in expected.items():
            if tuple(self.tensors[name].shape) != shape:
                raise TranscoderFormatError(
                    f"{self.where}: {name} has shape {list(self.tensors[name].shape)}, "
                    f"expected {list(shape)}"
                )

    def weight_bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors.values())

    def _layers(self, key: str) -> list[torch.Tensor | DiskTensor]:
        return [self.tensors[f"{key}.{layer}"] for layer in range(self.config.n_layers)]

    def eager(self, dtype: torch.dtype) -> Transcoder:
        """A Transcoder holding one copy of the weights, in `dtype` (read and cast tensor by
        tensor, W_enc layer by layer)."""
        with torch.device("meta"):
            tc = Transcoder(self.config, dtype=dtype)
        params: dict[str, torch.Tensor] = {}
        for name, p in tc.named_parameters():
            if name == "W_enc":
                params[name] = torch.empty(p.shape, dtype=dtype)
                for layer, w in enumerate(self._layers("W_enc")):
                    params[name][layer].copy_(_in_memory(w))
            else:
                params[name] = _in_memory(self.tensors[name]).to(dtype).contiguous()
        tc.load_state_dict(params, assign=True)
        return tc

    def lazy(self, dtype: torch.dtype) -> LazyTranscoder:
        small = {k: _in_memory(v) for k, v in self.tensors.items() if "." not in k}
        return LazyTranscoder(
            self.config, self._layers("W_enc"), self._layers("W_dec"), small, dtype=dtype
        )


def _in_memory(t: torch.Tensor | DiskTensor) -> torch.Tensor:
    return t.load() if isinstance(t, DiskTensor) else t


def npz_cache_file(file: Path) -> Path:
    """A GemmaScope `.npz` layer converted once into a row-readable safetensors file (per-layer
    circuit-tracer keys, `W_enc` as `[F, d]`) under `$CIRCUITMAP_HOME/cache/npz/`, keyed by
    the file's path, size and modification time. npz members cannot be read by rows."""
    stat = file.stat()
    key = hashlib.sha256(f"{file.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    home = Path(os.environ.get("CIRCUITMAP_HOME", "~/.circuitmap")).expanduser()
    out = home / "cache" / "npz" / f"{key.hexdigest()[:24]}.safetensors"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    layer = _read_npz(file)
    tensors = {
        "W_enc": layer["W_enc"],
        "W_dec": layer["W_dec"],
        "b_enc": layer["b_enc"],
        "b_dec": layer["b_dec"],
    }
    if "threshold" in layer:
        tensors["activation_function.threshold"] = layer["threshold"]
    partial = out.with_suffix(f".{os.getpid()}.partial")
    _write_safetensors(partial, tensors)
    partial.replace(out)
    return out


def _need(tensors: dict[str, torch.Tensor], key: str, file: Path) -> torch.Tensor:
    if key not in tensors:
        raise TranscoderFormatError(f"{file}: missing tensor {key}")
    return tensors[key]


def _stack(ts: list[torch.Tensor], key: str, file: Path) -> torch.Tensor:
    if any(t.shape != ts[0].shape for t in ts):
        shapes = sorted({tuple(t.shape) for t in ts})
        raise TranscoderFormatError(f"{file}: {key} differs in shape between layers {shapes}")
    return torch.stack(ts)


def _shape2(t: torch.Tensor, key: str, file: Path) -> tuple[int, int]:
    if t.dim() != 2:
        raise TranscoderFormatError(f"{file}: {key} should be [F, d], got {list(t.shape)}")
    return int(t.shape[0]), int(t.shape[1])


def _read_safetensors(file: Path) -> dict[str, DiskTensor]:
    """Every tensor of the file as a `DiskTensor` (read from disk only when used)."""
    if not file.exists():
        raise TranscoderFormatError(f"{file}: file not found")
    try:
        return open_safetensors(file)
    except (SafetensorsFileError, OSError, KeyError, TypeError, ValueError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise TranscoderFormatError(
            f"{file}: corrupt or truncated safetensors file ({reason})"
        ) from None


def _write_safetensors(file: Path, tensors: dict[str, torch.Tensor]) -> None:
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(file))
