# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""The meta-attention tab: a generated report, what the model attended to in the prompt while writing it
(`introspect()`), the report evaluator's scores and the self-critic's score."""

import numpy as np
import torch

from ..evaluation.reports import ReportEvaluator
from ..evaluation.self_critic import SelfCriticReward
from .common import (
    LoadedModel,
    check_int_input,
    click_refilling_table,
    encode_prompt,
    figure_to_image,
    page_message,
    pyplot,
)


MAX_REPORT_TOKENS = 128
SCORE_TABLE_HEADERS = ["score", "value"]


def prompt_attention(introspection, prompt_length: int) -> np.ndarray:
    """`(generated, prompt_length)`: for each written position, the summed weight of its top-k introspection
    entries on each prompt position (entries on generated positions are left out)."""
    positions = introspection.attended_positions[0]
    weights = introspection.weights[0]
    matrix = torch.zeros(positions.shape[0], prompt_length)
    on_prompt = positions < prompt_length
    rows = torch.arange(positions.shape[0])[:, None].expand_as(positions)
    matrix.index_put_((rows[on_prompt], positions[on_prompt]), weights[on_prompt].float(), accumulate=True)
    return matrix.numpy()


def draw_prompt_heatmap(matrix: np.ndarray, prompt_tokens: list[str], written_tokens: list[str]):
    """The heat-map: rows the written tokens, columns the prompt's tokens."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(min(3 + 0.3 * matrix.shape[1], 14), min(2 + 0.22 * matrix.shape[0], 12)))
    image = ax.imshow(matrix, aspect="auto", cmap="viridis", vmin=0.0)
    fig.colorbar(image, ax=ax, label="introspected attention weight")
    ax.set_xticks(range(len(prompt_tokens)), [repr(t)[:12] for t in prompt_tokens], rotation=90, fontsize=6)
    ax.set_yticks(range(len(written_tokens)), [repr(t)[:12] for t in written_tokens], fontsize=6)
    ax.set_xlabel("prompt token")
    ax.set_ylabel("written token")
    ax.set_title("introspect(): what each written token attended to in the prompt", fontsize=9)
    fig.tight_layout()
    return figure_to_image(fig)


def meta_report_page(loaded: LoadedModel, critic: LoadedModel, prompt, max_new_tokens):
    """The meta-attention tab's handler: `(report, heat-map, score table rows, message)`."""
    try:
        new_tokens = check_int_input(max_new_tokens, "the number of new tokens", 1, MAX_REPORT_TOKENS)
        tokenizer, model = loaded.tokenizer, loaded.model
        input_ids = encode_prompt(tokenizer, prompt)
        with torch.no_grad():
            sequences = torch.as_tensor(model.generate(input_ids, max_new_tokens=new_tokens, do_sample=False))
            # The ONNX Runtime wrapper decodes only; the attention maps come from the PyTorch model.
            introspection = (
                model.introspect(sequences, start=input_ids.shape[1]) if hasattr(model, "introspect") else None
            )
    except Exception as error:
        return "", None, [], page_message(error)
    prompt_length = input_ids.shape[1]
    report = tokenizer.decode(sequences[0, prompt_length:], skip_special_tokens=True)
    records = introspection.to_json(tokenizer) if introspection is not None else None
    scores = ReportEvaluator().score(report, prompt=prompt, introspection=records)
    critic_score = SelfCriticReward(critic.model, critic.tokenizer)([prompt], [report])[0]
    table = [
        [name, "n/a" if value is None else round(float(value), 4)]
        for name, value in scores.items()
        if name != "warnings"
    ]
    table.append(["self-critic", round(float(critic_score), 4)])
    heatmap, heatmap_note = None, ""
    if introspection is not None:
        prompt_tokens = [tokenizer.decode([int(t)]) for t in input_ids[0]]
        written = [tokenizer.decode([int(t)]) for t in introspection.token_ids[0]]
        heatmap = draw_prompt_heatmap(prompt_attention(introspection, prompt_length), prompt_tokens, written)
    else:
        heatmap_note = (
            f" No heat-map: {type(model).__name__} runs the ONNX graph without attention maps; start the app "
            "with the PyTorch checkpoint (--meta DIR of save_pretrained) to see introspect()."
        )
    critic_note = " (untrained critic)" if critic.untrained else ""
    warnings = "; ".join(scores["warnings"]) or "none"
    message = (
        f"Report of {sequences.shape[1] - prompt_length} tokens: evaluator overall {scores['overall']:.3f}, "
        f"self-critic {critic_score:.3f}{critic_note}. Evaluator warnings: {warnings}.{heatmap_note}"
    )
    return report, heatmap, table, message


def build_meta_tab(gr, models) -> dict:
    """The meta-attention tab inside the current `gr.Blocks`; returns its components by name."""
    parts = {}
    with gr.Tab("Meta-attention: report", id="meta"):
        gr.Markdown(models.meta_attention.describe("`hf-reason app --meta META_DIR [--critic CRITIC_DIR]`"))
        with gr.Row():
            parts["meta_prompt"] = gr.Textbox(label="Prompt", lines=2, elem_id="meta-prompt", scale=3)
            parts["meta_tokens"] = gr.Slider(1, MAX_REPORT_TOKENS, value=24, step=1, label="New tokens", scale=1)
        parts["meta_run"] = gr.Button("Generate report", variant="primary", elem_id="meta-generate")
        parts["meta_message"] = gr.Markdown(elem_id="meta-message")
        with gr.Row():
            with gr.Column():
                parts["meta_report"] = gr.Textbox(label="Report", lines=6, elem_id="meta-report")
                parts["meta_scores"] = gr.Dataframe(headers=SCORE_TABLE_HEADERS, label="Evaluator and self-critic")
            parts["meta_heatmap"] = gr.Image(label="introspect() over the prompt", type="pil", elem_id="meta-heatmap")
    click_refilling_table(
        parts["meta_run"],
        lambda prompt, tokens: meta_report_page(models.meta_attention, models.critic, prompt, tokens),
        [parts["meta_prompt"], parts["meta_tokens"]],
        [parts["meta_report"], parts["meta_heatmap"], parts["meta_scores"], parts["meta_message"]],
        parts["meta_scores"],
    )
    return parts
