"""A tiny random-weight llama-architecture GGUF for tests of the LLM generators (real llama.cpp, no download).

The vocabulary is SentencePiece-style: the three special tokens, all 256 byte-fallback tokens and one
token per printable ASCII character, so any text tokenizes and any JSON grammar can always be satisfied
(every byte is reachable). A small chat template lets `create_chat_completion` format messages.
`llama_server` serves such a model with the real `python -m llama_cpp.server`.
"""

from __future__ import annotations

import os
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# llama.cpp's OpenMP workers spin while idle by default, which starves a busy two-core test machine
# (a 10-token prompt took 0.5 s instead of 2 ms). OpenMP reads the policy when the library is loaded,
# so it is set for the import only (and for server subprocesses), not for the rest of the session.
QUIET_OPENMP = {"OMP_WAIT_POLICY": "passive"}


def import_llama_cpp_quietly() -> None:
    """Import llama_cpp with OpenMP's passive wait policy, or skip the calling test module with the reason."""
    import pytest

    saved = os.environ.get("OMP_WAIT_POLICY")
    os.environ.update(QUIET_OPENMP)
    try:
        pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed: pip install 'clinqa[llm]'")
    finally:
        if saved is None:
            del os.environ["OMP_WAIT_POLICY"]
        else:
            os.environ["OMP_WAIT_POLICY"] = saved


N_EMBD = 32
N_HEAD = 4
N_LAYERS = 2
N_FF = 64
N_CTX = 4096

# SentencePiece token types as llama.cpp reads them (tokenizer.ggml.token_type).
_NORMAL, _UNKNOWN, _CONTROL, _BYTE = 1, 2, 3, 6

CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def _vocabulary() -> tuple[list[str], list[float], list[int]]:
    tokens = ["<unk>", "<s>", "</s>"]
    types = [_UNKNOWN, _CONTROL, _CONTROL]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [_BYTE] * 256
    # SentencePiece writes a space as U+2581; the other printable characters are themselves.
    chars = ["\u2581" if c == " " else c for c in string.printable if c.isprintable()]
    tokens += chars
    types += [_NORMAL] * len(chars)
    scores = [0.0] * 3 + [0.0] * 256 + [-float(i) for i in range(len(chars))]
    return tokens, scores, types


def write_tiny_gguf(path: Path, seed: int = 0) -> Path:
    """Write a ~0.2 MB llama GGUF with random float32 weights to `path` and return it."""
    import gguf

    rng = np.random.default_rng(seed)
    tokens, scores, types = _vocabulary()
    n_vocab = len(tokens)
    head_dim = N_EMBD // N_HEAD

    def weight(*shape: int) -> np.ndarray:
        # numpy shapes are the reverse of ggml's: (rows = output features, columns = input features)
        return (rng.standard_normal(shape) * 0.2).astype(np.float32)

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("clinqa-tiny-random")
    writer.add_context_length(N_CTX)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(N_LAYERS)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD)
    writer.add_rope_dimension_count(head_dim)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(True)
    writer.add_chat_template(CHAT_TEMPLATE)

    writer.add_tensor("token_embd.weight", weight(n_vocab, N_EMBD))
    writer.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    writer.add_tensor("output.weight", weight(n_vocab, N_EMBD))
    for i in range(N_LAYERS):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"blk.{i}.{name}.weight", weight(N_EMBD, N_EMBD))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", weight(N_FF, N_EMBD))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", weight(N_FF, N_EMBD))
        writer.add_tensor(f"blk.{i}.ffn_down.weight", weight(N_EMBD, N_FF))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@dataclass(frozen=True)
class LlamaServer:
    url: str  # the OpenAI-compatible base URL, ending in /v1
    proc: subprocess.Popen


@contextmanager
def llama_server(model: Path, n_ctx: int = N_CTX, api_key: str | None = None) -> Iterator[LlamaServer]:
    """A real `python -m llama_cpp.server` on a free loopback port serving `model` with one thread; yields
    its OpenAI base URL and process (tests may kill it) once it answers, and stops it afterwards."""
    import httpx

    from tests.helpers import free_port

    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", "1"]
    command += ["--api_key", api_key] if api_key else []
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    # Its log goes to a file, not a pipe nobody reads: a full pipe would block the server mid-test.
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(command, env=os.environ | QUIET_OPENMP, stdout=log, stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"llama_cpp.server exited early:\n{log.read()}")
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/v1/models", headers=headers, timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("llama_cpp.server did not become ready in 60 s")
                time.sleep(0.2)
            yield LlamaServer(f"http://127.0.0.1:{port}/v1", proc)
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
