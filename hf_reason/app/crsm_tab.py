# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""The CRSM tab: greedy decoding next to MCTS deliberation over the recurrent state.

The MCTS side is `generate(deliberation="mcts", return_dict_in_generate=True)`: the visit count and backed-up
value `Q` of each committed token, and the last step's search root with every child it expanded (the search
statistics record the root's children at each step, so that is the tree the page draws).
"""

import numpy as np
import torch

from .common import LoadedModel, check_int_input, encode_prompt, figure_to_image, page_message, pyplot


MAX_NEW_TOKENS = 64
MAX_SIMULATIONS = 256
TOKEN_TABLE_HEADERS = ["position", "token", "visits", "value Q", "prior"]


def _token_text(tokenizer, token: int) -> str:
    return tokenizer.decode([int(token)])


def draw_search_tree(tokenizer, step_stats: dict, step: int):
    """The last step's search: the root and each expanded child with its visits and `Q` (the chosen one bold)."""
    plt = pyplot()
    children = sorted(step_stats["children"], key=lambda child: -child[1])
    fig, ax = plt.subplots(figsize=(max(4.0, 1.25 * len(children)), 3.2))
    ax.axis("off")
    total = max(sum(child[1] for child in children), 1)
    ax.text(0.5, 0.9, f"root (step {step})\n{total} visits", ha="center", va="center", fontsize=9,
            bbox=dict(boxstyle="round", fc="#eeeeee"))  # fmt: skip
    for i, (token, visits, q, prior) in enumerate(children):
        x = (i + 0.5) / len(children)
        chosen = token == step_stats["token"]
        ax.plot([0.5, x], [0.82, 0.38], color="#1f5fbf", lw=0.5 + 4.0 * visits / total, alpha=0.8)
        label = f"{_token_text(tokenizer, token)!r}\nN={visits}\nQ={q:.2f}\nP={prior:.2f}"
        ax.text(x, 0.25, label, ha="center", va="center", fontsize=7, fontweight="bold" if chosen else "normal",
                bbox=dict(boxstyle="round", fc="#cfe0f7" if chosen else "white"))  # fmt: skip
    ax.set_xlim(0, 1), ax.set_ylim(0, 1)
    ax.set_title("Last step's search: root and children\n(edge width: visits; bold: chosen)", fontsize=8)
    fig.tight_layout()
    return figure_to_image(fig)


def crsm_generate_page(loaded: LoadedModel, prompt, max_new_tokens, num_simulations):
    """The CRSM tab's handler: `(greedy text, MCTS text, token table rows, tree image, message)`."""
    try:
        new_tokens = check_int_input(max_new_tokens, "the number of new tokens", 1, MAX_NEW_TOKENS)
        simulations = check_int_input(num_simulations, "the number of simulations", 1, MAX_SIMULATIONS)
        tokenizer, model = loaded.tokenizer, loaded.model
        input_ids = encode_prompt(tokenizer, prompt)
        with torch.no_grad():
            greedy = model.generate(input_ids, max_new_tokens=new_tokens, do_sample=False)
            search = model.generate(
                input_ids,
                deliberation="mcts",
                max_new_tokens=new_tokens,
                num_simulations=simulations,
                return_dict_in_generate=True,
            )
    except Exception as error:
        return "", "", [], None, page_message(error)
    prompt_length = input_ids.shape[1]
    greedy_text = tokenizer.decode(greedy[0, prompt_length:], skip_special_tokens=True)
    mcts_tokens = search.sequences[0, prompt_length:]
    mcts_text = tokenizer.decode(mcts_tokens, skip_special_tokens=True)
    stats = search.search_stats[0]
    table = [
        [i + 1, _token_text(tokenizer, s["token"]), int(s["visits"]), round(float(s["q"]), 4), round(s["prior"], 4)]
        for i, s in enumerate(stats)
    ]
    same = int(np.sum(greedy[0, prompt_length:].numpy()[: len(mcts_tokens)] == mcts_tokens.numpy()))
    message = (
        f"MCTS committed {len(stats)} tokens with {simulations} simulations each; {same} of them agree with "
        "greedy decoding at the same position."
    )
    return greedy_text, mcts_text, table, draw_search_tree(tokenizer, stats[-1], len(stats)), message


def build_crsm_tab(gr, models) -> dict:
    """The CRSM tab inside the current `gr.Blocks`; returns its components by name."""
    parts = {}
    with gr.Tab("CRSM: greedy vs MCTS", id="crsm"):
        gr.Markdown(models.crsm.describe("`hf-reason app --crsm CRSM_DIR`"))
        with gr.Row():
            parts["crsm_prompt"] = gr.Textbox(label="Prompt", lines=2, elem_id="crsm-prompt", scale=3)
            with gr.Column(scale=1):
                parts["crsm_tokens"] = gr.Slider(1, MAX_NEW_TOKENS, value=8, step=1, label="New tokens")
                parts["crsm_simulations"] = gr.Slider(1, 64, value=8, step=1, label="MCTS simulations per token")
        parts["crsm_run"] = gr.Button("Generate", variant="primary", elem_id="crsm-generate")
        parts["crsm_message"] = gr.Markdown(elem_id="crsm-message")
        with gr.Row():
            parts["crsm_greedy"] = gr.Textbox(label="Greedy", lines=3, elem_id="crsm-greedy")
            parts["crsm_mcts"] = gr.Textbox(label="MCTS deliberation", lines=3, elem_id="crsm-mcts")
        with gr.Row():
            parts["crsm_table"] = gr.Dataframe(headers=TOKEN_TABLE_HEADERS, label="Chosen tokens: visits and values")
            parts["crsm_tree"] = gr.Image(label="Search tree of the last step", type="pil", elem_id="crsm-tree")
    parts["crsm_run"].click(
        lambda prompt, tokens, simulations: crsm_generate_page(models.crsm, prompt, tokens, simulations),
        [parts["crsm_prompt"], parts["crsm_tokens"], parts["crsm_simulations"]],
        [parts["crsm_greedy"], parts["crsm_mcts"], parts["crsm_table"], parts["crsm_tree"], parts["crsm_message"]],
    )
    return parts
