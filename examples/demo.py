"""`make demo`: build a small TRM, solve a batch step by step, save it and reload it through Auto."""

import os
import tempfile

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import torch  # noqa: E402

from hf_reason import AutoModelForPuzzleSolving, TRMConfig, TRMForPuzzleSolving  # noqa: E402


def main() -> None:
    torch.manual_seed(0)
    config = TRMConfig(
        vocab_size=11, seq_len=81, hidden_size=64, num_heads=2, expansion=2.0, L_layers=2,
        H_cycles=3, L_cycles=6, halt_max_steps=8, mixer="mlp", pos_encodings="none",
    )
    model = TRMForPuzzleSolving(config).eval()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"TRM: hidden {config.hidden_size}, {config.L_layers} layers, H={config.H_cycles} L={config.L_cycles}, "
          f"{n_params / 1e3:.0f}k parameters")

    puzzles = torch.randint(1, 11, (4, 81))
    solved = model.solve(puzzles)
    changes = (solved.step_predictions[1:] != solved.step_predictions[:-1]).sum(-1).float().mean(-1)
    print(f"solve(): {solved.step_predictions.shape[0]} supervision steps, steps per puzzle {solved.steps.tolist()}")
    print("cells changed per step (untrained model):", [round(c, 1) for c in changes.tolist()])

    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        print("saved:", sorted(os.listdir(tmp)))
        reloaded = AutoModelForPuzzleSolving.from_pretrained(tmp).eval()
        same = torch.equal(reloaded.solve(puzzles).predictions, solved.predictions)
        print(f"reloaded with AutoModelForPuzzleSolving: {type(reloaded).__name__}, identical predictions: {same}")


if __name__ == "__main__":
    main()
