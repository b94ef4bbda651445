"""Run an exported policy file: TorchScript (torch) or ONNX Runtime, raw observations in, actions out.

Both engines take a float32 array (B, input_size) and return float32 actions (B, joints); at batch 1
they run single-threaded, which is fastest for an MLP this small and leaves the other cores to the robot.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Protocol

import numpy as np

ENGINES = ("torchscript", "onnx")


class PolicyEngine(Protocol):
    """An exported policy: raw observations (B, input_size) float32 -> actions (B, joints) float32."""

    input_size: int
    output_size: int

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """Actions for a batch of observations."""
        ...


class TorchScriptPolicy:
    """`policy.pt` run with torch.jit."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        import torch

        if not path.is_file():
            raise FileNotFoundError(f"no TorchScript policy at {path}; export one with `train.py export`.")
        if threads:
            torch.set_num_threads(threads)
        self._torch = torch
        with warnings.catch_warnings():
            # Deprecated upstream in favour of torch.export, but TorchScript is what libtorch runtimes load.
            warnings.simplefilter("ignore", DeprecationWarning)
            self.module = torch.jit.load(str(path), map_location="cpu").eval()
        mean = self.module.mean
        self.input_size = int(mean.shape[0])
        with torch.inference_mode():
            self.output_size = int(self.module(torch.zeros(1, self.input_size)).shape[1])

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """Actions (B, J) for observations (B, D)."""
        with self._torch.inference_mode():
            out = self.module(self._torch.from_numpy(np.ascontiguousarray(obs, dtype=np.float32)))
        return out.numpy()


class OnnxPolicy:
    """`policy.onnx` run with ONNX Runtime on the CPU."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        import onnxruntime as ort

        if not path.is_file():
            raise FileNotFoundError(f"no ONNX policy at {path}; export one with `train.py export`.")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_size = int(self.session.get_inputs()[0].shape[1])
        self.output_size = int(self.session.get_outputs()[0].shape[1])

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """Actions (B, J) for observations (B, D)."""
        return self.session.run(None, {"obs": np.ascontiguousarray(obs, dtype=np.float32)})[0]


def load_engine(
    directory: Path, engine: str = "onnx", policy_files: dict[str, str] | None = None
) -> PolicyEngine:
    """The exported policy in `directory` run by `engine` ("torchscript" or "onnx")."""
    files = policy_files or {"torchscript": "policy.pt", "onnx": "policy.onnx"}
    if engine not in ENGINES:
        raise ValueError(f"unknown policy engine '{engine}'; choose from {', '.join(ENGINES)}.")
    path = directory / files[engine]
    return TorchScriptPolicy(path) if engine == "torchscript" else OnnxPolicy(path)
