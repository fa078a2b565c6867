"""False-belief stories in the style of ToMi, with first- and second-order questions.

Each story is simulated, so every answer is exact. The observation model (ToMi's): an agent
in the room sees every move made there and sees who else is present; entering a room does
not reveal where an object is. From that we track, per agent, where they believe the object
is (first order) and where they believe each other agent believes it is (second order).

Question orders: 0 = reality (``Where is the apple really?``), 1 = first-order
(``Where will Sally look for the apple?``), 2 = second-order (``Where does Anne think that
Sally searches for the apple?``).
"""

from __future__ import annotations

import random

import datasets


__all__ = ["generate_tom_stories", "simulate_story"]

_NAMES = ["Sally", "Anne", "Oliver", "Mia", "Jack", "Chloe", "Noah", "Emma", "Liam", "Ava"]
_OBJECTS = ["apple", "ball", "key", "hat", "book", "coin", "scarf", "toy car"]
_CONTAINERS = ["basket", "box", "drawer", "cupboard", "suitcase", "bucket", "envelope", "bag"]
_ROOMS = ["kitchen", "garden", "hallway", "office", "bedroom"]


def simulate_story(events: list[tuple], agents: list[str]) -> dict:
    """Replays `events` and returns the reality, first- and second-order beliefs.

    Events: ``("enter", a)``, ``("exit", a)``, ``("place", container)`` (the object appears,
    seen by those present), ``("move", a, container)``.
    """
    present, location = set(), None
    first = dict.fromkeys(agents)
    second = {a: dict.fromkeys(agents) for a in agents}
    for event in events:
        if event[0] == "enter":
            present.add(event[1])
        elif event[0] == "exit":
            present.discard(event[1])
        else:
            location = event[-1]
            for a in present:
                first[a] = location
                for b in present:
                    second[a][b] = location  # a saw b see it
    return {"reality": location, "first": first, "second": second}


def _story_events(rng: random.Random, a: str, b: str, c1: str, c2: str) -> list[tuple]:
    # a and b meet, the object appears in c1; someone may leave before and/or after the move.
    events = [("enter", a), ("enter", b), ("place", c1)]
    pattern = rng.choice(["true_belief", "first_order", "second_order"])
    if pattern == "true_belief":
        events += [("move", b, c2), ("exit", b), ("exit", a)]
    elif pattern == "first_order":
        events += [("exit", a), ("move", b, c2), ("exit", b)]
    else:
        # b moves it with a present, b leaves, then a moves it back secretly: b's model of a is stale.
        events += [("move", b, c2), ("exit", b), ("move", a, c1), ("exit", a)]
    return events


def _narrate(event: tuple, obj: str, room: str) -> str:
    if event[0] == "enter":
        return f"{event[1]} entered the {room}."
    if event[0] == "exit":
        return f"{event[1]} exited the {room}."
    if event[0] == "place":
        return f"The {obj} is in the {event[1]}."
    return f"{event[1]} moved the {obj} to the {event[2]}."


def generate_tom_stories(num_examples: int, seed: int = 0) -> datasets.Dataset:
    """ToMi-style stories, each with one question of order 0, 1 or 2 and its exact answer.

    Args:
        num_examples (`int`): number of rows (>= 1).
        seed (`int`, defaults to 0): the same seed gives the same stories.

    Returns:
        `datasets.Dataset` with columns `story` (one sentence per line), `question`, `answer`
        (a container), `order` (0/1/2), `distractors` (the other container), `agents`,
        `object`, `trace` (the sentences that decide the answer, for gold reports).
    """
    if not isinstance(num_examples, int) or num_examples < 1:
        raise ValueError(f"`num_examples` must be an int >= 1, got {num_examples!r}")
    rng = random.Random(seed)
    rows = {k: [] for k in ("story", "question", "answer", "order", "distractors", "agents", "object", "trace")}
    for _ in range(num_examples):
        a, b = rng.sample(_NAMES, 2)
        c1, c2 = rng.sample(_CONTAINERS, 2)
        obj, room = rng.choice(_OBJECTS), rng.choice(_ROOMS)
        events = _story_events(rng, a, b, c1, c2)
        beliefs = simulate_story(events, [a, b])
        order = rng.choice([0, 1, 1, 2, 2])
        if order == 0:
            question, answer = f"Where is the {obj} really?", beliefs["reality"]
        elif order == 1:
            who = rng.choice([a, b])
            question, answer = f"Where will {who} look for the {obj}?", beliefs["first"][who]
        else:
            question = f"Where does {b} think that {a} searches for the {obj}?"
            answer = beliefs["second"][b][a]
        sentences = [_narrate(e, obj, room) for e in events]
        rows["story"].append("\n".join(f"{i}. {s}" for i, s in enumerate(sentences, 1)))
        rows["question"].append(question)
        rows["answer"].append(answer)
        rows["order"].append(order)
        rows["distractors"].append([c for c in (c1, c2) if c != answer])
        rows["agents"].append([a, b])
        rows["object"].append(obj)
        rows["trace"].append(sentences)
    return datasets.Dataset.from_dict(rows)
