"""ONNX Runtime CPU kernels behind the CRSM graphs' formulation (hf_reason/export/crsm.py).

The CRSM decode step spent a third of its time in two kinds of nodes that ONNX Runtime's CPU
kernels run far slower than their size suggests: `Softplus` (scalar, where `Exp` and `Log` are
vectorized) and a `Mul` that broadcasts a last axis of 1 against a longer one (Mamba's
discretization `dt[..., None] * A`, the outer product `dt * x` x `B`, the read-out by `C`). This
script times each pattern as the export writes it against the plain formulation, at the 50M
CRSM's sizes (intermediate 1024, state 16; 32 tokens for the prefill chunk), 16 copies per graph
(one per layer) whose outputs one `Sum` node adds, so per-call overhead is shared alike. One line
per pattern: ours (the exported form) vs the reference (the plain form), median of interleaved
rounds, 2 intra-op threads.

    python bench/ort_cpu_kernels.py            # ~30 s on 2 quiet cores
    python bench/ort_cpu_kernels.py --tokens 32   # the prefill chunk's shapes
"""

import argparse
import statistics
import sys
import time

import numpy as np
from onnx import TensorProto, helper, numpy_helper


COPIES = 16


def make_session(nodes, inputs, initializers, threads: int):
    import onnxruntime as ort

    outputs = [node.output[0] for node in nodes if node.output[0].startswith("out")]
    graph = helper.make_graph(
        nodes + [helper.make_node("Sum", outputs, ["total"])],
        "pattern",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, list(array.shape)) for name, array in inputs.items()],
        [helper.make_tensor_value_info("total", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(array, name) for name, array in initializers.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # The copies read the same inputs: without this, common-subexpression elimination keeps one.
    return ort.InferenceSession(
        model.SerializeToString(),
        options,
        providers=["CPUExecutionProvider"],
        disabled_optimizers=["CommonSubexpressionElimination"],
    )


def patterns(tokens: int, intermediate: int, state: int):
    """name -> (ours, reference): each a function of copy index i returning its nodes (output `out{i}`)."""
    rng = np.random.default_rng(0)
    lead = [1, tokens]
    inputs = {
        "z": rng.standard_normal(lead + [intermediate]).astype(np.float32),  # dt_proj's output
        "dt": np.abs(rng.standard_normal(lead + [intermediate, 1])).astype(np.float32) * 0.1,
        "u": rng.standard_normal(lead + [intermediate, 1]).astype(np.float32),  # dt * x, as a column
        "B": rng.standard_normal(lead + [1, state]).astype(np.float32),
        "C": rng.standard_normal(lead + [state, 1]).astype(np.float32),
        "h": rng.standard_normal(lead + [intermediate, state]).astype(np.float32),  # SSM states
    }
    initializers = {
        "A": -np.tile(np.arange(1, state + 1, dtype=np.float32), (intermediate, 1)),
        "ones": np.ones((1, state), np.float32),
        "twenty": np.array(20, np.float32),
        "one": np.array(1, np.float32),
        "last": np.array([-1], np.int64),
    }

    def node(op, ins, out, **kw):
        return helper.make_node(op, ins, [out], **kw)

    table = {
        "softplus (dt)": (
            lambda i: [
                node("Exp", ["z"], f"e{i}"),
                node("Add", [f"e{i}", "one"], f"p{i}"),
                node("Log", [f"p{i}"], f"l{i}"),
                node("Greater", ["z", "twenty"], f"g{i}"),
                node("Where", [f"g{i}", "z", f"l{i}"], f"out{i}"),
            ],
            lambda i: [node("Softplus", ["z"], f"out{i}")],
        ),
        "exp(A * dt): dt @ ones, then * A": (
            lambda i: [
                node("MatMul", ["dt", "ones"], f"d{i}"),
                node("Mul", [f"d{i}", "A"], f"m{i}"),
                node("Exp", [f"m{i}"], f"out{i}"),
            ],
            lambda i: [node("Mul", ["dt", "A"], f"m{i}"), node("Exp", [f"m{i}"], f"out{i}")],
        ),
        "outer product (dt * x) x B: MatMul": (
            lambda i: [node("MatMul", ["u", "B"], f"out{i}")],
            lambda i: [node("Mul", ["u", "B"], f"out{i}")],
        ),
        "read-out by C: MatMul": (
            lambda i: [node("MatMul", ["h", "C"], f"out{i}")],
            lambda i: [
                node("Transpose", ["C"], f"t{i}", perm=[0, 1, 3, 2]),
                node("Mul", ["h", f"t{i}"], f"m{i}"),
                node("ReduceSum", [f"m{i}", "last"], f"out{i}", keepdims=1),
            ],
        ),
    }
    return table, inputs, initializers


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=1, help="Tokens per row (1: decode step; 32: a prefill chunk).")
    parser.add_argument("--intermediate", type=int, default=1024)
    parser.add_argument("--state", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    for name in ("tokens", "intermediate", "state", "threads", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    table, inputs, initializers = patterns(args.tokens, args.intermediate, args.state)
    calls = max(1, 200 // args.tokens)
    for name, (ours, reference) in table.items():
        sessions = {}
        for side, build in (("ours", ours), ("reference", reference)):
            nodes = [n for i in range(COPIES) for n in build(i)]
            used = {x for n in nodes for x in n.input}
            sessions[side] = make_session(
                nodes,
                {k: v for k, v in inputs.items() if k in used},
                {k: v for k, v in initializers.items() if k in used},
                args.threads,
            )
        feeds = {side: {i.name: inputs[i.name] for i in s.get_inputs()} for side, s in sessions.items()}
        results = {side: s.run(None, feeds[side])[0] for side, s in sessions.items()}
        np.testing.assert_allclose(results["ours"].squeeze(), results["reference"].squeeze(), rtol=1e-4, atol=1e-4)
        times = {side: [] for side in sessions}
        for round_ in range(args.rounds):
            for side in ("ours", "reference") if round_ % 2 == 0 else ("reference", "ours"):
                session, feed = sessions[side], feeds[side]
                session.run(None, feed)
                start = time.perf_counter()
                for _ in range(calls):
                    session.run(None, feed)
                times[side].append((time.perf_counter() - start) / calls * 1e6)
        ours_us, ref_us = statistics.median(times["ours"]), statistics.median(times["reference"])
        print(
            f"{name}, {COPIES} copies at tokens={args.tokens} (us per call, lower is better): ours {ours_us:.1f} us, "
            f"reference {ref_us:.1f} us, ratio {ref_us / ours_us:.2f}x",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
