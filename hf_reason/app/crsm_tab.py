# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""The CRSM tab: greedy decoding next to MCTS deliberation over the recurrent state.

The MCTS side is `generate(deliberation="mcts", return_dict_in_generate=True)`: the visit count and backed-up
value `Q` of each committed token, and the search tree behind the last committed token (`search_trees`), drawn
a few levels deep.
"""

import numpy as np
import torch

from .common import (
    LoadedModel,
    check_int_input,
    click_refilling_table,
    encode_prompt,
    figure_to_image,
    page_message,
    pyplot,
)


MAX_NEW_TOKENS = 64
MAX_SIMULATIONS = 256
TOKEN_TABLE_HEADERS = ["position", "token", "visits", "value Q", "prior"]


def _token_text(tokenizer, token: int) -> str:
    return tokenizer.decode([int(token)])


def _shown_tree(tree: dict, depth: int, width: int) -> dict:
    """`tree` cut to `depth` levels below its root and each node's `width` most visited children."""
    children = tree["children"][:width] if depth > 0 else []
    return {**tree, "children": [_shown_tree(child, depth - 1, width) for child in children]}


def _place(tree: dict, depth: int, next_x: list, places: list) -> float:
    """Lays the tree out left to right (a leaf per column, a parent above the middle of its children);
    appends `(node, x, depth)` to `places` and returns the node's x."""
    if tree["children"]:
        xs = [_place(child, depth + 1, next_x, places) for child in tree["children"]]
        x = (xs[0] + xs[-1]) / 2
    else:
        x = next_x[0]
        next_x[0] += 1
    places.append((tree, x, depth))
    return x


def draw_search_tree(tokenizer, tree: dict, chosen: int, step: int, depth: int = 3, width: int = 4):
    """The last step's search tree (`CRSMDeliberationOutput.search_trees`): the root, then up to `depth`
    levels of expanded nodes, each node's `width` most visited children; edge width: visits, the chosen
    token's node in blue."""
    plt = pyplot()
    shown = _shown_tree(tree, depth, width)
    places, next_x = [], [0]
    _place(shown, 0, next_x, places)
    columns = max(next_x[0], 1)
    levels = max(level for _, _, level in places) + 1
    fig, ax = plt.subplots(figsize=(min(max(4.0, 1.15 * columns), 16), 1.0 + 1.35 * levels))
    ax.axis("off")
    position = {id(node): (x, -level) for node, x, level in places}
    total = max(tree["visits"], 1)
    for node, x, level in places:
        for child in node["children"]:
            cx, cy = position[id(child)]
            ax.plot([x, cx], [-level, cy], color="#1f5fbf", lw=0.5 + 4.0 * child["visits"] / total, alpha=0.7,
                    zorder=1)  # fmt: skip
    for node, x, level in places:
        if level == 0:
            label, colour = f"root (step {step})\nN={node['visits']}", "#eeeeee"
        else:
            end = " (end)" if node["terminal"] else ""
            label = f"{_token_text(tokenizer, node['token'])!r}{end}\nN={node['visits']} Q={node['q']:.2f}"
            colour = "#cfe0f7" if level == 1 and node["token"] == chosen else "white"
        ax.text(x, -level, label, ha="center", va="center", fontsize=7, zorder=2,
                bbox=dict(boxstyle="round", fc=colour))  # fmt: skip
    ax.set_xlim(-0.7, columns - 0.3), ax.set_ylim(-levels + 0.5, 0.5)
    hidden = " (the most visited shown)" if _count(tree, depth) > len(places) else ""
    ax.set_title(f"Last step's search tree{hidden}; edge width: visits, blue: the chosen token", fontsize=8)
    fig.tight_layout()
    return figure_to_image(fig)


def _count(tree: dict, depth: int) -> int:
    """Nodes of `tree` down to `depth` levels below its root."""
    return 1 + (sum(_count(child, depth - 1) for child in tree["children"]) if depth > 0 else 0)


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
    tree = draw_search_tree(tokenizer, search.search_trees[0], stats[-1]["token"], len(stats))
    return greedy_text, mcts_text, table, tree, message


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
            parts["crsm_table"] = gr.Dataframe(
                headers=TOKEN_TABLE_HEADERS, label="Chosen tokens: visits and values", elem_id="crsm-table"
            )
            parts["crsm_tree"] = gr.Image(label="Search tree of the last step", type="pil", elem_id="crsm-tree")
    click_refilling_table(
        parts["crsm_run"],
        lambda prompt, tokens, simulations: crsm_generate_page(models.crsm, prompt, tokens, simulations),
        [parts["crsm_prompt"], parts["crsm_tokens"], parts["crsm_simulations"]],
        [parts["crsm_greedy"], parts["crsm_mcts"], parts["crsm_table"], parts["crsm_tree"], parts["crsm_message"]],
        parts["crsm_table"],
    )
    return parts
