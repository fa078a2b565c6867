"""Rebuilds tasks.jsonl: the hand-written core below plus a smaller generated share (seeded).

    python hf_reason/data/curated/build_tasks.py      # rewrites tasks.jsonl next to this file

Every entry is schema-checked and its gold completion validated before the file is replaced;
for hand-written entries every introspection hint must also be cited, with the same layer and
head, in the gold report's Reflection (so the report and the introspection prior agree).
"""

import json
import os
import tempfile
from collections import Counter

from hf_reason.data.curated_tasks import CATEGORIES, build_report, check_entry, generated_entries
from hf_reason.evaluation.reports import parse_report
from hf_reason.evaluation.validators import validate


# The hand-written core must hold at least this many entries per category (tests assert it too).
MIN_HAND_WRITTEN_PER_CATEGORY = 8
# Generated entries per generatable category: a minority, so the set stays mostly hand-curated.
GENERATED = {"math": 5, "theory_of_mind": 6, "planning": 6}


def hint(token, layer, why, head=None):
    return {"token": token, "layer": layer, "head": head, "why": why}


def entry(
    id, category, prompt, plan, steps, monitor, diagnosis, reflection, answer, validator, focus, hints, memo, code=None
):
    names = [f"Step {i}" for i in range(1, len(steps) + 1)]
    if len(memo) != len(steps):
        raise SystemExit(f"entry {id}: the reflection memo needs one verdict per step ({len(steps)}), got {len(memo)}")
    return {
        "id": id,
        "category": category,
        "source": "hand-written",
        "prompt": prompt,
        "completion": build_report(plan, steps, monitor, diagnosis, reflection, answer, code=code),
        "answer": answer,
        "validator": validator,
        "introspection": {"focus_terms": focus, "hints": hints},
        "reflection_memo": [{"section": n, "verdict": v, "note": note} for n, (v, note) in zip(names, memo)],
    }


def citation(h):
    layer = h["layer"] if isinstance(h["layer"], str) else f"L{h['layer']}"
    return f"[focus: {h['token']} @ {layer}" + (f" H{h['head']}]" if h["head"] is not None else "]")


def mc(choices, answer):
    return {"kind": "multiple_choice", "config": {"choices": choices, "answer": answer}}


def num(value):
    return {"kind": "numeric", "config": {"answer": value}}


def tom(answer, distractors, order):
    return {"kind": "tom_answer", "config": {"answer": answer, "distractors": distractors, "order": order}}


def story(answer, aliases, facts, contradictions):
    return {
        "kind": "story_consistency",
        "config": {"answer": answer, "aliases": aliases, "required_facts": facts, "contradictions": contradictions},
    }


def tests(entry_point, *asserts):
    return {"kind": "python_tests", "config": {"entry_point": entry_point, "tests": "\n".join(asserts)}}


def plan_check(puzzle, optimal=False):
    config = {"puzzle": puzzle}
    if optimal:
        config["require_optimal"] = True
    return {"kind": "plan_check", "config": config}


C, K = "confirmed", "critique"

MATH = [
    entry(
        "math-train-meet",
        "math",
        "Two trains start 300 km apart and drive toward each other at 70 km/h and 80 km/h. After how many hours do they meet?",
        "Add the speeds to get the closing speed, then divide the distance by it.",
        ["The closing speed is 70 + 80 = 150 km/h.", "Time = 300 / 150 = 2 hours."],
        "Units: km divided by km/h gives hours; in 2 hours the trains cover 140 + 160 = 300 km together.",
        "Subtracting the speeds would be the error for trains moving apart or chasing.",
        "The key cue is [focus: toward @ middle H1]: it makes speeds add; [focus: 300 @ late] is divided last.",
        "2",
        num(2),
        ["toward", "300"],
        [
            hint("toward", "middle", "direction decides add vs subtract", 1),
            hint("300", "late", "used in the final division"),
        ],
        [
            (C, "Adding the speeds is right because the trains approach each other."),
            (C, "300 / 150 = 2, and the distance check in the monitor confirms it."),
        ],
    ),
    entry(
        "math-percent-discount",
        "math",
        "A jacket costs 80 dollars. It is discounted by 25 percent, then a 10 percent tax is added to the discounted price. What is the final price in dollars?",
        "Apply the discount first, then the tax on the discounted price.",
        [
            "25 percent of 80 is 20, so the discounted price is 60.",
            "10 percent tax on 60 is 6, so the final price is 66.",
        ],
        "Checked that the tax uses the discounted base, as the prompt says; as one factor, 80 x 0.75 x 1.10 = 66.",
        "Adding and subtracting percentages directly (80 * 0.85 = 68) would be wrong.",
        "Order comes from [focus: discounted @ middle]; the [focus: tax @ late H0] applies to the new base of 60, not to 80.",
        "66",
        num(66),
        ["discounted", "tax"],
        [hint("discounted", "middle", "fixes the base of the tax"), hint("tax", "late", "the last operation", 0)],
        [
            (C, "A quarter of 80 is 20; 60 is the discounted price."),
            (C, "The tax is computed on 60 as the prompt demands, giving 66."),
        ],
    ),
    entry(
        "math-sequence",
        "math",
        "What is the next number in the sequence 2, 6, 12, 20, 30, ...?",
        "Look at the differences between consecutive terms.",
        ["The differences are 4, 6, 8, 10.", "The next difference is 12, so the next term is 30 + 12 = 42."],
        "The pattern n * (n + 1) gives 2, 6, 12, 20, 30, 42: consistent.",
        "Guessing a geometric pattern would fail: the ratios are not constant.",
        "The last difference comes from [focus: 30 @ late H2] and [focus: 20 @ late]; the closed form n(n + 1) backs up the extrapolation.",
        "42",
        num(42),
        ["30", "20"],
        [hint("30", "late", "last term, base of the next", 2), hint("20", "late", "gives the last difference")],
        [
            (C, "Differences of consecutive terms grow by 2 each time."),
            (
                K,
                "Extrapolating a difference pattern is a guess on its own; the closed form in the monitor is what makes 42 safe.",
            ),
        ],
    ),
    entry(
        "math-work-rate",
        "math",
        "One pipe fills a tank in 6 hours; a second pipe fills the same tank in 3 hours. If both pipes are opened together on the empty tank, how many hours does filling it take?",
        "Convert each pipe to a rate in tanks per hour, add the rates, and invert the sum.",
        [
            "The first pipe fills 1/6 of the tank per hour.",
            "The second pipe fills 1/3 = 2/6 of the tank per hour.",
            "Together they fill 3/6 = 1/2 tank per hour, so the tank needs 1 / (1/2) = 2 hours.",
        ],
        "The result must be shorter than the faster pipe alone (3 hours): 2 < 3 holds.",
        "Averaging the times ((6 + 3) / 2 = 4.5) or adding them (9) is the classic error: times do not add, rates do.",
        "Step 3 hinges on [focus: both @ middle H2], which licenses adding rates; [focus: 3 hours @ late] sets the upper bound I checked against.",
        "2",
        num(2),
        ["both", "3 hours"],
        [
            hint("both", "middle", "working together means the rates add", 2),
            hint("3 hours", "late", "the faster pipe bounds the answer from above"),
        ],
        [
            (C, "1/6 per hour is the right reading of 'fills in 6 hours'."),
            (C, "Writing 1/3 as 2/6 prepares the addition."),
            (C, "Inverting the summed rate gives the time, and 2 h passes the bound check."),
        ],
    ),
    entry(
        "math-average-needed",
        "math",
        "Lucia scored 72, 85 and 90 on her first three tests. What must she score on the fourth test so that the average of all four tests is exactly 84?",
        "Turn the target average into a target total, then subtract what she already has.",
        [
            "Four tests averaging 84 need a total of 4 x 84 = 336 points.",
            "Her three scores sum to 72 + 85 + 90 = 247.",
            "She needs 336 - 247 = 89 on the fourth test.",
        ],
        "Check: (72 + 85 + 90 + 89) / 4 = 336 / 4 = 84.",
        "Multiplying by 3 instead of 4 would give 252 - 247 = 5, an absurd score that signals the slip.",
        "The count in [focus: fourth @ middle] makes the multiplier 4, and [focus: 84 @ late H0] is the target that fixes the total.",
        "89",
        num(89),
        ["fourth", "84"],
        [hint("fourth", "middle", "how many tests the average spans"), hint("84", "late", "the target average", 0)],
        [
            (C, "4 x 84 = 336: the multiplier counts the fourth test."),
            (C, "72 + 85 = 157, plus 90 = 247; re-added in the check."),
            (C, "336 - 247 = 89, verified by recomputing the mean."),
        ],
    ),
    entry(
        "math-remainder-power",
        "math",
        "What is the remainder when 7^100 is divided by 5?",
        "Reduce the base modulo 5, find the cycle of its powers, and place the exponent in the cycle.",
        [
            "7 leaves remainder 2 when divided by 5, so 7^100 has the same remainder as 2^100.",
            "Powers of 2 modulo 5 cycle through 2, 4, 3, 1, with period 4.",
            "100 is divisible by 4, so 2^100 = (2^4)^25 leaves remainder 1^25 = 1.",
        ],
        "Spot check: 7^4 = 2401, which leaves remainder 1 modulo 5, as the cycle predicts.",
        "Computing 7^100 directly is hopeless by hand; mixing up the cycle of 7 mod 10 (7, 9, 3, 1) with the cycle mod 5 is the likely slip.",
        "Step 1 depends on the divisor [focus: 5 @ early H1]; step 3 depends on the exponent [focus: 100 @ late] being a multiple of the period.",
        "1",
        num(1),
        ["5", "100"],
        [
            hint("5", "early", "the modulus every reduction uses", 1),
            hint("100", "late", "placed in the cycle at the end"),
        ],
        [
            (C, "7 = 5 + 2, so the base reduces to 2."),
            (C, "2, 4, 8 -> 3, 16 -> 1: the cycle has length 4."),
            (C, "100 = 4 x 25 lands at the end of the cycle; the 2401 check agrees."),
        ],
    ),
    entry(
        "math-age-equation",
        "math",
        "Ravi is three times as old as his daughter. In 12 years he will be twice as old as she will be then. How old is Ravi now?",
        "Call the daughter's age d, write both conditions as equations, solve for d, then multiply by three.",
        [
            "Now: Ravi is 3d years old.",
            "In 12 years: 3d + 12 = 2(d + 12) = 2d + 24.",
            "So d = 12, and Ravi is 3 x 12 = 36.",
        ],
        "In 12 years Ravi is 48 and his daughter 24: 48 = 2 x 24 holds.",
        "Forgetting that the daughter ages too (3d + 12 = 2d) gives a negative age, a clear sign of the slip.",
        "The word [focus: then @ middle H3] means both ages move by [focus: 12 @ late]; step 3 answers for Ravi, not for d.",
        "36",
        num(36),
        ["then", "12"],
        [
            hint("then", "middle", "both ages are measured at the same future time", 3),
            hint("12", "late", "the shift applied to both sides"),
        ],
        [
            (C, "The present-tense condition becomes Ravi = 3d."),
            (C, "Both ages are shifted by 12, as 'then' requires."),
            (K, "d = 12 alone would answer the wrong person; the step rightly multiplies back to Ravi's 36."),
        ],
    ),
    entry(
        "math-marbles-probability",
        "math",
        "A bag holds 3 red and 2 blue marbles. Two marbles are drawn one after another without replacement. What is the probability that both are red? Give a decimal.",
        "Multiply the first draw's probability of red by the conditional probability of red once one red is gone.",
        [
            "First draw: 3 red out of 5, probability 3/5.",
            "Second draw after a red is removed: 2 red out of 4, probability 2/4.",
            "Both: 3/5 x 2/4 = 6/20 = 0.3.",
        ],
        "Cross-check by counting pairs: C(3,2) / C(5,2) = 3 / 10 = 0.3.",
        "With replacement the answer would be 9/25 = 0.36; overlooking the removal is the main risk.",
        "Step 2 changes the denominator because of [focus: without replacement @ middle H1]; the counts come from [focus: 3 red @ early].",
        "0.3",
        num(0.3),
        ["without replacement", "3 red"],
        [
            hint("without replacement", "middle", "changes the second draw's odds", 1),
            hint("3 red", "early", "the counts every fraction is built from"),
        ],
        [
            (C, "3/5 is the plain first-draw chance."),
            (C, "The conditional 2/4 reflects the removed red marble."),
            (C, "6/20 reduces to 0.3 and matches the pair count."),
        ],
    ),
    entry(
        "math-share-price",
        "math",
        "A share costs 50 dollars. On Monday its price rises by 20 percent; on Tuesday the new price falls by 20 percent. What does the share cost after Tuesday, in dollars?",
        "Apply the two percentage changes one after another, each to the price of its own day.",
        ["Monday: 50 x 1.20 = 60 dollars.", "Tuesday: 20 percent of 60 is 12, so the price falls to 48 dollars."],
        "Equivalent single factor: 1.2 x 0.8 = 0.96, and 50 x 0.96 = 48.",
        "Assuming +20 and -20 percent cancel would give 50; the fall is taken from a larger base.",
        "The phrase [focus: new price @ middle H2] sets Tuesday's base to 60; [focus: falls @ late] gives the sign of the second change.",
        "48",
        num(48),
        ["new price", "falls"],
        [
            hint("new price", "middle", "the base of the second percentage", 2),
            hint("falls", "late", "direction of the last change"),
        ],
        [
            (C, "The rise is applied to the original 50."),
            (C, "The fall is applied to the new base 60, not to 50; the single-factor check agrees."),
        ],
    ),
    entry(
        "math-path-area",
        "math",
        "A rectangular garden is 12 m long and 8 m wide. A path 1 m wide runs all around the outside of the garden. What is the area of the path in square metres?",
        "Subtract the garden's area from the area of the garden plus path.",
        [
            "With the path the outer rectangle is (12 + 2) by (8 + 2) = 14 m by 10 m, area 140 square metres.",
            "The garden itself is 12 x 8 = 96 square metres.",
            "The path is 140 - 96 = 44 square metres.",
        ],
        "Strip check: two long strips of 14 x 1 and two short strips of 8 x 1 give 28 + 16 = 44.",
        "Adding the width on one side only (13 by 9 = 117) would give 21.",
        "Step 1 adds 2, not 1, because of [focus: around @ middle H0]; [focus: outside @ late] says the path is outside the garden, not carved from it.",
        "44",
        num(44),
        ["around", "outside"],
        [
            hint("around", "middle", "the path lies on both sides of each dimension", 0),
            hint("outside", "late", "the path adds to the garden instead of replacing part of it"),
        ],
        [
            (C, "The width is added on both sides of each dimension."),
            (C, "The inner area is right."),
            (C, "The difference matches the independent strip count."),
        ],
    ),
]

DIAGNOSTICS = [
    entry(
        "diagnostics-car-wont-start",
        "diagnostics",
        "A car makes a rapid clicking sound when the key is turned, the dashboard lights dim, and the engine does not crank. What is the most likely cause?\nA) empty fuel tank\nB) weak battery\nC) broken timing belt\nD) clogged air filter",
        "Match each symptom to the components that could cause it, and keep the cause that explains all of them.",
        [
            "Clicking without cranking means the starter solenoid gets too little current.",
            "Dimming lights point to low voltage across the whole system.",
            "Fuel, timing belt and air filter would let the engine crank.",
        ],
        "Every symptom is explained by option B; none by A, C or D.",
        "Choosing fuel would ignore that the engine does not even crank.",
        "Key evidence: [focus: clicking @ middle H1] for the starter and [focus: dim @ late] for the voltage; together they single out the battery.",
        "B",
        mc({"A": "empty fuel tank", "B": "weak battery", "C": "broken timing belt", "D": "clogged air filter"}, "B"),
        ["clicking", "dim"],
        [hint("clicking", "middle", "starter symptom", 1), hint("dim", "late", "electrical symptom")],
        [
            (C, "A clicking solenoid with no crank is the textbook low-current sign."),
            (C, "Dimming lights show the whole electrical system sags, not just the starter."),
            (C, "Each remaining option fails the 'does not crank' symptom."),
        ],
    ),
    entry(
        "diagnostics-server-latency",
        "diagnostics",
        "A web service becomes slow every day at 02:00 for ten minutes. CPU is normal, but disk I/O wait jumps to 90 percent at that time. A nightly backup job is scheduled at 02:00. What is the most likely cause?\nA) a memory leak\nB) the backup job saturating the disk\nC) a DNS outage\nD) too many logged-in users",
        "Correlate the timing and the saturated resource with the candidate causes.",
        [
            "The slowdown is periodic at 02:00, like a scheduled job.",
            "I/O wait is high while CPU is normal: the disk is the bottleneck.",
            "The backup at 02:00 reads the whole disk.",
        ],
        "Timing and resource both point to the same job.",
        "A memory leak would grow over time, not recur for ten minutes daily.",
        "Evidence: [focus: backup @ late H3], [focus: 02:00 @ middle] and [focus: disk @ middle]; timing and resource agree, so no step rests on one clue alone.",
        "B",
        mc(
            {
                "A": "a memory leak",
                "B": "the backup job saturating the disk",
                "C": "a DNS outage",
                "D": "too many logged-in users",
            },
            "B",
        ),
        ["backup", "02:00", "disk"],
        [
            hint("backup", "late", "the cause", 3),
            hint("02:00", "middle", "timing match"),
            hint("disk", "middle", "saturated resource"),
        ],
        [
            (C, "A fixed daily time points to a scheduler, not to load."),
            (C, "High I/O wait with idle CPU isolates the disk."),
            (
                K,
                "'Reads the whole disk' is assumed, not given; a full backup usually does, and the conclusion holds either way.",
            ),
        ],
    ),
    entry(
        "diagnostics-plant-yellow",
        "diagnostics",
        "A potted plant's lower leaves turn yellow and soft, the soil smells sour, and water pools in the saucer for days. The plant sits in a bright window. What is the most likely problem?",
        "Separate symptoms of too much water from symptoms of light or nutrients.",
        [
            "Standing water for days means the pot does not drain.",
            "A sour smell means the roots lack oxygen and rot.",
            "Bright light rules out low light as the cause.",
        ],
        "Yellow and soft (not dry and crisp) leaves fit overwatering.",
        "Nitrogen deficiency also yellows lower leaves, but would not make them soft or the soil sour.",
        "Decisive: [focus: sour @ late H0] for rot and [focus: pools @ middle] for drainage; step 3 only removes a competing cause.",
        "overwatering",
        {
            "kind": "exact_answer",
            "config": {
                "answer": "overwatering",
                "aliases": ["root rot", "overwatering causing root rot", "too much water"],
            },
        },
        ["sour", "pools"],
        [hint("sour", "late", "root rot sign", 0), hint("pools", "middle", "poor drainage")],
        [
            (C, "Water sitting for days shows the soil stays saturated."),
            (C, "Sour soil is the smell of anaerobic rot."),
            (C, "The bright window correctly rules out low light."),
        ],
    ),
    entry(
        "diagnostics-test-flaky",
        "diagnostics",
        "A unit test passes when run alone but fails when the whole suite runs. The failing assertion reads a module-level cache that another test fills with different data. What is the root cause?\nA) a race condition in the CPU\nB) shared mutable state between tests\nC) a wrong assertion\nD) a slow disk",
        "Find what differs between running alone and in the suite.",
        [
            "Alone, the cache is empty at the start of the test.",
            "In the suite, another test fills the module-level cache first.",
            "The assertion then reads stale data from the other test.",
        ],
        "The failure depends only on test order, which shared state explains.",
        "Calling the assertion wrong would miss that it passes alone.",
        "Evidence: [focus: cache @ late H2] is the shared state and [focus: alone @ middle] the controlled contrast.",
        "B",
        mc(
            {
                "A": "a race condition in the CPU",
                "B": "shared mutable state between tests",
                "C": "a wrong assertion",
                "D": "a slow disk",
            },
            "B",
        ),
        ["cache", "alone"],
        [hint("cache", "late", "shared state", 2), hint("alone", "middle", "the contrast")],
        [
            (C, "The solo run is the baseline in which nothing pre-fills the cache."),
            (C, "Module-level state survives across tests in one process."),
            (C, "Stale data from another test is exactly the order-dependent failure."),
        ],
    ),
    entry(
        "diagnostics-breaker-trips",
        "diagnostics",
        "A kitchen circuit breaker trips only when the kettle and the microwave run at the same time; each appliance alone runs for hours without a trip. What is the most likely cause?\nA) a short circuit inside the kettle\nB) the combined load exceeds the circuit's rating\nC) a faulty light switch\nD) a loose oven door",
        "Ask which cause depends on the two appliances running together rather than on either one.",
        [
            "A short in the kettle would trip the breaker with the kettle alone, which never happens.",
            "Each appliance alone stays below the breaker's rating; together their currents add.",
            "A light switch or the oven door plays no part in the condition that triggers the trip.",
        ],
        "The trip condition (both at once) is exactly the overload condition, and nothing else in the options changes with it.",
        "Replacing the kettle would be the costly mistake: it works fine on its own.",
        "The decisive words are [focus: same time @ middle H1] and [focus: alone @ late]; step 1 uses the solo runs to rule out A, step 2 uses the joint run for B.",
        "B",
        mc(
            {
                "A": "a short circuit inside the kettle",
                "B": "the combined load exceeds the circuit's rating",
                "C": "a faulty light switch",
                "D": "a loose oven door",
            },
            "B",
        ),
        ["same time", "alone"],
        [
            hint("same time", "middle", "the only condition under which the trip happens", 1),
            hint("alone", "late", "rules out a fault in a single appliance"),
        ],
        [
            (C, "A is eliminated by the hours of solo running."),
            (C, "Currents on one circuit add: the overload mechanism."),
            (
                K,
                "C and D are dismissed in one line; enough here, but it would be better to say why they cannot depend on the kettle.",
            ),
        ],
    ),
    entry(
        "diagnostics-slow-evenings",
        "diagnostics",
        "Home internet is fast in the morning but crawls every evening from 19:00 to 23:00. A laptop plugged into the router by cable is just as slow at those hours, and neighbours with the same provider report the same pattern. What is the most likely cause?\nA) microwave interference with the Wi-Fi\nB) congestion in the provider's network at peak hours\nC) a failing Wi-Fi antenna in the router\nD) a virus on one phone",
        "Use each observation to cut away one layer: the wireless link, the home, then the provider.",
        [
            "The cabled laptop is slow too, so the Wi-Fi link (A, C) is not the bottleneck.",
            "Neighbours see the same pattern, so the cause lies outside this home (D is ruled out).",
            "The evening hours are peak usage, which points at the provider's shared capacity.",
        ],
        "Each eliminated option was removed by a different observation; B is the only one left that explains all three.",
        "Buying a new router would fix nothing: the cable test already shows the wireless part is fine.",
        "Step 1 rests on [focus: cable @ middle H2], step 2 on [focus: neighbours @ late], step 3 on the time window [focus: 19:00 @ middle].",
        "B",
        mc(
            {
                "A": "microwave interference with the Wi-Fi",
                "B": "congestion in the provider's network at peak hours",
                "C": "a failing Wi-Fi antenna in the router",
                "D": "a virus on one phone",
            },
            "B",
        ),
        ["cable", "neighbours", "19:00"],
        [
            hint("cable", "middle", "the wired test isolates the wireless link", 2),
            hint("neighbours", "late", "shared symptom outside the home"),
            hint("19:00", "middle", "peak-hour timing"),
        ],
        [
            (C, "The cable test removes both Wi-Fi explanations at once."),
            (C, "A problem shared across homes cannot be one phone."),
            (C, "Peak-hour timing is positive evidence for congestion, not just elimination."),
        ],
    ),
    entry(
        "diagnostics-bike-chain-skips",
        "diagnostics",
        "A bicycle chain skips under hard pedalling but runs smoothly when pedalling gently. The chain was replaced last week; the rear cassette is five years old and its teeth are hooked like shark fins. What part most likely needs replacing?",
        "Separate what is new from what is old, and match the tooth shape to the load-dependent symptom.",
        [
            "The chain is a week old, so a stretched chain is unlikely.",
            "Hooked, shark-fin teeth are the sign of a worn cassette.",
            "A new chain does not seat on worn teeth under load, so it skips only when pedalling hard.",
        ],
        "The symptom depends on load, which matches tooth wear rather than a misadjusted derailleur (that would skip at any effort).",
        "Replacing the chain again would not help; a new chain on an old cassette is the usual cause of this exact skip.",
        "Steps 2 and 3 rest on [focus: shark fins @ late H0] and [focus: hard @ middle]; step 1 uses [focus: last week @ early] to rule out the chain.",
        "the cassette",
        {
            "kind": "exact_answer",
            "config": {
                "answer": "the cassette",
                "aliases": ["cassette", "the rear cassette", "rear cassette", "worn cassette", "the worn cassette"],
            },
        },
        ["shark fins", "hard", "last week"],
        [
            hint("shark fins", "late", "visual evidence of tooth wear", 0),
            hint("hard", "middle", "the load-dependent symptom"),
            hint("last week", "early", "excludes the chain"),
        ],
        [
            (C, "The chain's age correctly excludes it."),
            (C, "The tooth shape is read correctly."),
            (C, "Explains why only hard pedalling skips, which the alternatives do not."),
        ],
    ),
    entry(
        "diagnostics-memory-growth",
        "diagnostics",
        "A Python web service's memory grows in step with the number of requests served and never shrinks, even after traffic stops; a restart resets it. The code appends each request's result to a module-level list called debug_log that nothing ever clears. What is the most likely cause?\nA) the operating system's file cache\nB) the unbounded debug_log list keeps every result alive\nC) a slow database\nD) too few worker threads",
        "Find an object whose size grows per request and whose lifetime is the process's lifetime.",
        [
            "Memory tracks the request count, so something is kept per request.",
            "debug_log is module-level, so it lives as long as the process and its items are never freed.",
            "Nothing clears it, and a restart empties it: exactly the observed reset.",
        ],
        "A file cache (A) would be released under pressure and not follow the request count; C and D affect speed, not memory.",
        "Calling gc.collect() would not help: the list still references every result.",
        "[focus: requests @ middle] carries step 1; [focus: debug_log @ late H3] and [focus: never @ middle] carry steps 2 and 3.",
        "B",
        mc(
            {
                "A": "the operating system's file cache",
                "B": "the unbounded debug_log list keeps every result alive",
                "C": "a slow database",
                "D": "too few worker threads",
            },
            "B",
        ),
        ["requests", "debug_log", "never"],
        [
            hint("requests", "middle", "growth per request"),
            hint("debug_log", "late", "the object that holds the references", 3),
            hint("never", "middle", "no release, so not a cache"),
        ],
        [
            (C, "Per-request growth is correctly inferred."),
            (C, "Module lifetime explains why nothing is freed."),
            (C, "The restart reset is the confirming evidence."),
        ],
    ),
    entry(
        "diagnostics-dense-bread",
        "diagnostics",
        "A home-baked loaf came out dense and flat: the dough did not rise at all during two hours in a warm kitchen. The yeast packet expired a year ago; flour, water and salt were measured as usual and the oven temperature was checked with a thermometer. What is the most likely cause?",
        "Rule out every ingredient and condition that was checked, and keep the one that was not.",
        [
            "Flour, water and salt were measured as usual, so the recipe is not the difference.",
            "The oven was checked, and the dough failed before baking anyway.",
            "The expired yeast is the one unchecked ingredient, and dead yeast makes no gas, so no rise.",
        ],
        "'Did not rise at all' points at no fermentation, not weak fermentation; dead yeast fits, a cold room would not (it was warm).",
        "Blaming the oven would ignore that the failure happened during proofing.",
        "Step 3 rests on [focus: expired @ late H1]; step 2 on [focus: rise @ middle], which places the failure before baking.",
        "dead yeast",
        {
            "kind": "exact_answer",
            "config": {
                "answer": "dead yeast",
                "aliases": ["expired yeast", "the yeast was dead", "inactive yeast", "the expired yeast", "the yeast"],
            },
        },
        ["expired", "rise"],
        [
            hint("expired", "late", "the only unchecked ingredient", 1),
            hint("rise", "middle", "fermentation failed before baking"),
        ],
        [
            (C, "The recipe is excluded by the usual measurements."),
            (K, "Checking the oven was unnecessary once the dough did not rise, but it does no harm."),
            (C, "The only unverified ingredient explains the total absence of rise."),
        ],
    ),
    entry(
        "diagnostics-ci-missing-module",
        "diagnostics",
        "A project's tests pass on the developer's laptop but fail in CI with ModuleNotFoundError: No module named 'yaml'. Months ago the developer installed PyYAML by hand; requirements.txt does not list it, and CI installs only what requirements.txt lists. What is the root cause?\nA) CI runs a different operating system\nB) a dependency missing from requirements.txt\nC) a typo in the import statement\nD) a full CI cache",
        "Compare how each environment got its packages.",
        [
            "The laptop has PyYAML only because it was installed by hand.",
            "CI builds its environment from requirements.txt, which omits PyYAML.",
            "The same import works on the laptop, so it is not a typo (C).",
        ],
        "The error names exactly the missing module; the OS (A) or the cache (D) would not make one specific package vanish.",
        "Adding pip install pyyaml to the CI script would hide the problem; the fix belongs in requirements.txt.",
        "Step 2 rests on [focus: requirements.txt @ late H2], step 1 on [focus: by hand @ middle]; step 3 is an elimination.",
        "B",
        mc(
            {
                "A": "CI runs a different operating system",
                "B": "a dependency missing from requirements.txt",
                "C": "a typo in the import statement",
                "D": "a full CI cache",
            },
            "B",
        ),
        ["requirements.txt", "by hand"],
        [
            hint("requirements.txt", "late", "what CI installs from", 2),
            hint("by hand", "middle", "why the laptop works"),
        ],
        [
            (C, "Explains the laptop's success."),
            (C, "Explains the CI failure."),
            (C, "C is eliminated by the working local import."),
        ],
    ),
]

PLANNING = [
    entry(
        "planning-schedule-chores",
        "planning",
        "Schedule tasks W, C, G, B one at a time. Rules: G needs B first; C needs G first; W needs B first. Give an order; when several tasks are ready, take the alphabetically first.",
        "Find tasks with no pending prerequisite and take the alphabetically first each time.",
        ["Only B is ready: take B.", "G and W are ready: take G.", "C and W are ready: take C.", "Take W."],
        "Each task appeared once and after its prerequisites.",
        "Taking W second would be valid but breaks the alphabetical tie rule.",
        "Ties were decided by [focus: alphabetically @ middle H0]; B comes first as every [focus: needs @ late] rule points back to it.",
        "B, G, C, W",
        plan_check({"type": "schedule", "tasks": {"W": ["B"], "C": ["G"], "G": ["B"], "B": []}}),
        ["alphabetically", "needs"],
        [hint("alphabetically", "middle", "tie rule", 0), hint("needs", "late", "prerequisite relation")],
        [
            (C, "B has no prerequisite and everything else waits on it."),
            (C, "G < W alphabetically."),
            (C, "C < W alphabetically, and G is done."),
            (C, "W is the last task left."),
        ],
    ),
    entry(
        "planning-tower-swap",
        "planning",
        "Blocks world. Now: A is on the table, B is on A, C is on B. Goal: C is on the table, B is on C, A is on B. Only a block with nothing on it can move, one at a time. Give the shortest list of moves.",
        "Invert the tower: unstack onto the table, then rebuild in reverse.",
        ["move C onto table.", "move B onto C.", "move A onto B."],
        "After each move the moved block was clear and its target was clear.",
        "Putting B on the table first would add a move; three moves is the minimum since each block must move once.",
        "The order follows [focus: Goal @ middle]; [focus: C @ late H1] must be the new base, and it is already on top.",
        "move C onto table; move B onto C; move A onto B",
        plan_check({"type": "blocks", "initial": [["A", "B", "C"]], "goal": [["C", "B", "A"]]}, optimal=True),
        ["Goal", "C"],
        [hint("Goal", "middle", "target configuration"), hint("C", "late", "top block, moved first", 1)],
        [
            (C, "C is clear and goes straight to its final place."),
            (C, "B moves directly onto C without a detour."),
            (C, "A lands on B and the goal is reached in three moves."),
        ],
    ),
    entry(
        "planning-blocks-detour",
        "planning",
        "Blocks world. Now: A is on the table, B is on A; C is on the table. Goal: C is on the table, A is on C, B is on A. Only a block with nothing on it can move, one at a time. Give the shortest list of moves.",
        "A has to move onto C, so first clear A, then restack B on top of it.",
        ["move B onto table: A must be clear before it can move.", "move A onto C.", "move B onto A."],
        "B moved twice and A once: A must move, B must leave A for that and end on A again, so 3 moves is a lower bound.",
        "Parking B on C would block the move of A onto C and cost extra moves.",
        "The blocker is [focus: B is on A @ middle H1]; the target base is [focus: C is on the table @ late]. Step 1 looks like a detour that the lower bound shows is unavoidable.",
        "move B onto table; move A onto C; move B onto A",
        plan_check({"type": "blocks", "initial": [["A", "B"], ["C"]], "goal": [["C", "A", "B"]]}, optimal=True),
        ["B is on A", "C is on the table"],
        [
            hint("B is on A", "middle", "true both now and in the goal, yet B must move", 1),
            hint("C is on the table", "late", "the base of the goal stack"),
        ],
        [
            (K, "Looks wasted since B ends on A anyway, but A cannot move while covered."),
            (C, "Legal: A and C are both clear."),
            (C, "Reaches the goal."),
        ],
    ),
    entry(
        "planning-blocks-merge",
        "planning",
        "Blocks world. Now: D is on the table, C is on D; A is on the table, B is on A. Goal: A is on the table, B is on A, C is on B, D is on C. Only a block with nothing on it can move, one at a time. Give the shortest list of moves.",
        "Keep what already matches the goal (B on A) and move only the other blocks, in goal order from the bottom up.",
        [
            "B on A already matches the goal, so that stack stays.",
            "move C onto B: C is clear and B is clear.",
            "move D onto C: D became clear when C left it.",
        ],
        "C and D are both out of place, so at least 2 moves are needed; the plan uses 2.",
        "Unstacking everything onto the table first would take 5 or more moves: it reaches the goal but is not shortest.",
        "Step 1 came from [focus: B is on A @ middle H0] appearing both now and in the goal; the order of steps 2 and 3 follows [focus: D is on C @ late].",
        "move C onto B; move D onto C",
        plan_check(
            {"type": "blocks", "initial": [["D", "C"], ["A", "B"]], "goal": [["A", "B", "C", "D"]]}, optimal=True
        ),
        ["B is on A", "D is on C"],
        [
            hint("B is on A", "middle", "the sub-stack that already matches", 0),
            hint("D is on C", "late", "the top of the goal stack"),
        ],
        [
            (C, "Spotting the shared sub-stack saves moves."),
            (C, "Legal and in goal order."),
            (C, "Legal; the goal is reached in the minimum two moves."),
        ],
    ),
    entry(
        "planning-blocks-rebase",
        "planning",
        "Blocks world. Now: B is on the table, A is on B, C is on A. Goal: A is on the table, B is on A; C is on the table. Only a block with nothing on it can move, one at a time. Give the shortest list of moves.",
        "Clear the tower from the top, then put B on A.",
        [
            "move C onto table: it is on top and the table is its goal place.",
            "move A onto table: A must become the base.",
            "move B onto A: B is now clear and so is A.",
        ],
        "Each block is out of its goal place and needs at least one move, so 3 moves is minimal.",
        "Moving A onto C would put it off the table and need an extra move later.",
        "C goes first because it sits on top ([focus: C is on A @ middle]); B's final spot comes from [focus: B is on A @ late H2].",
        "move C onto table; move A onto table; move B onto A",
        plan_check({"type": "blocks", "initial": [["B", "A", "C"]], "goal": [["A", "B"], ["C"]]}, optimal=True),
        ["C is on A", "B is on A"],
        [
            hint("C is on A", "middle", "the block that must move first"),
            hint("B is on A", "late", "the goal relation that is inverted", 2),
        ],
        [(C, "C reaches its goal place in one move."), (C, "A on the table frees B."), (C, "The goal is reached.")],
    ),
    entry(
        "planning-schedule-breakfast",
        "planning",
        "Plan breakfast with one pair of hands, one task at a time. Tasks: Boil, Grind, Brew, Pour, Toast, Serve. Brew needs Boil and Grind first; Pour needs Brew first; Serve needs Pour and Toast first. Give an order; when several tasks are ready, take the alphabetically first.",
        "Keep a list of ready tasks and always take the alphabetically first one.",
        [
            "Ready: Boil, Grind, Toast; take Boil.",
            "Ready: Grind, Toast; take Grind.",
            "Brew is unlocked; ready: Brew, Toast; take Brew.",
            "Ready: Pour, Toast; take Pour.",
            "Take Toast, the only ready task.",
            "Serve comes last: Pour and Toast are done.",
        ],
        "Every task appears once and after its prerequisites; Serve, which depends on everything, is last.",
        "Toasting first would also be valid, but the alphabetical tie rule puts Boil, Grind, Brew and Pour ahead of Toast.",
        "Ties were broken by [focus: alphabetically @ middle H1]; [focus: Serve needs Pour and Toast @ late] fixed the final step.",
        "Boil, Grind, Brew, Pour, Toast, Serve",
        plan_check(
            {
                "type": "schedule",
                "tasks": {
                    "BOIL": [],
                    "GRIND": [],
                    "TOAST": [],
                    "BREW": ["BOIL", "GRIND"],
                    "POUR": ["BREW"],
                    "SERVE": ["POUR", "TOAST"],
                },
            }
        ),
        ["alphabetically", "Serve needs Pour and Toast"],
        [
            hint("alphabetically", "middle", "tie rule", 1),
            hint("Serve needs Pour and Toast", "late", "the sink of the dependency graph"),
        ],
        [
            (C, "Three tasks are ready; Boil is first alphabetically."),
            (C, "Grind < Toast."),
            (C, "Brew < Toast."),
            (C, "Pour < Toast."),
            (K, "In a real kitchen toast would go earlier to serve it warm; the stated tie rule forbids that."),
            (C, "Serve's prerequisites are both done."),
        ],
    ),
    entry(
        "planning-schedule-courses",
        "planning",
        "Courses A, B, C, D, E must be taken one per term. D requires A and B; C requires D; B requires E. Give an order; when several courses are available, take the alphabetically first.",
        "Track which courses are available each term and take the alphabetically first.",
        [
            "Available: A and E; take A.",
            "Available: E only, since B still needs E; take E.",
            "B is unlocked; take B.",
            "D now has both A and B; take D.",
            "C follows D.",
        ],
        "The chain E, B, D, C forces those four courses in that order; A only has to come before D.",
        "Taking B before E because B comes first alphabetically would break the rule B requires E.",
        "Step 2 depends on [focus: B requires E @ middle H0]; step 4 on [focus: D requires A and B @ late].",
        "A, E, B, D, C",
        plan_check({"type": "schedule", "tasks": {"A": [], "B": ["E"], "C": ["D"], "D": ["A", "B"], "E": []}}),
        ["B requires E", "D requires A and B"],
        [
            hint("B requires E", "middle", "the prerequisite that overrides alphabetical order", 0),
            hint("D requires A and B", "late", "the join of the two chains"),
        ],
        [
            (C, "A and E are the only courses without prerequisites."),
            (C, "B is not yet available, so E is taken."),
            (C, "B becomes available."),
            (C, "D's two prerequisites are done."),
            (C, "C is last."),
        ],
    ),
    entry(
        "planning-critical-path",
        "planning",
        "Building a shed: the foundation takes 3 days; the walls take 4 days and need the foundation; the roof takes 2 days and needs the walls; the wiring takes 3 days and needs the walls; painting takes 1 day and needs both the roof and the wiring. Any number of crews can work in parallel. What is the minimum number of days to finish?",
        "Schedule every task as early as its prerequisites allow and read off the finish time of the last one.",
        [
            "Foundation: days 0 to 3.",
            "Walls: days 3 to 7.",
            "Roof (days 7 to 9) and wiring (days 7 to 10) run in parallel after the walls.",
            "Painting waits for the later of the two, the wiring at day 10, and ends at day 11.",
        ],
        "The longest chain, foundation, walls, wiring, painting, is 3 + 4 + 3 + 1 = 11; the roof chain is only 10.",
        "Adding every duration (13 days) ignores the parallel crews; taking the roof instead of the wiring as the bottleneck gives 10.",
        "Step 3 relies on [focus: parallel @ middle H2]; step 4 on [focus: both @ late], which makes painting wait for the slower branch.",
        "11",
        num(11),
        ["parallel", "both"],
        [
            hint("parallel", "middle", "roof and wiring overlap", 2),
            hint("both", "late", "painting waits for the later branch"),
        ],
        [
            (C, "The foundation has no prerequisite."),
            (C, "The walls start when the foundation ends."),
            (C, "Both branches start at day 7."),
            (C, "The wiring branch is critical: 11 days."),
        ],
    ),
    entry(
        "planning-river-crossing",
        "planning",
        "A farmer must take a wolf, a goat and a cabbage across a river. The boat carries the farmer and at most one of them. Left alone, the wolf eats the goat and the goat eats the cabbage. What is the smallest number of one-way crossings needed?",
        "The goat conflicts with both others, so it must never be left with either; move it first and bring it back once.",
        [
            "Cross with the goat; wolf and cabbage are safe together.",
            "Return alone.",
            "Cross with the wolf.",
            "Return with the goat, so it is not left with the wolf.",
            "Cross with the cabbage; wolf and cabbage are safe together.",
            "Return alone.",
            "Cross with the goat.",
        ],
        "After every crossing I checked both banks: the goat is never unattended with the wolf or with the cabbage; 4 crossings over, 3 back.",
        "Starting with the wolf or the cabbage leaves the goat with the other one; the non-obvious move is bringing the goat back in step 4.",
        "The limit [focus: at most one @ middle H3] forces shuttling, and [focus: goat @ late] is the only passenger that conflicts with two others.",
        "7",
        num(7),
        ["at most one", "goat"],
        [
            hint("at most one", "middle", "capacity forces several trips", 3),
            hint("goat", "late", "the item in both conflicts"),
        ],
        [
            (C, "The goat must go first."),
            (C, "Nothing can be left unattended on the far bank but the goat alone."),
            (C, "Wolf over; the goat is with the farmer."),
            (K, "Looks like undoing progress, but it is the only way to avoid wolf and goat alone together."),
            (C, "Cabbage joins the wolf, which is safe."),
            (C, "Empty return."),
            (C, "The goat crosses last; all are across."),
        ],
    ),
    entry(
        "planning-water-jugs",
        "planning",
        "You have an empty 3-litre jug and an empty 5-litre jug, a tap, and no markings on the jugs. Each filling, emptying, or pouring from one jug into the other counts as one operation. What is the fewest operations to get exactly 4 litres in the 5-litre jug?",
        "Use the 3-litre jug to measure differences: 5 - 3 leaves 2, and 5 - 1 leaves 4.",
        [
            "Fill the 5-litre jug: (3 L jug 0, 5 L jug 5).",
            "Pour the 5 L jug into the 3 L jug: (3, 2).",
            "Empty the 3 L jug: (0, 2).",
            "Pour the 5 L jug into the 3 L jug: (2, 0).",
            "Fill the 5 L jug: (2, 5).",
            "Pour the 5 L jug into the 3 L jug until it is full, which takes 1 litre: (3, 4).",
        ],
        "Starting by filling the 3-litre jug needs 8 operations; enumerating jug states level by level finds no sequence shorter than 6.",
        "Forgetting to count the emptying as an operation gives 5; the prompt counts it.",
        "Step 6 uses the 1 litre of room left in the [focus: 3-litre @ middle H0] jug; the target [focus: exactly 4 litres @ late] is reached in the 5-litre jug as required.",
        "6",
        num(6),
        ["3-litre", "exactly 4 litres"],
        [hint("3-litre", "middle", "the measuring jug", 0), hint("exactly 4 litres", "late", "the goal state")],
        [
            (C, "Filling the larger jug first is the shorter branch."),
            (C, "Leaves 2 litres in the 5 L jug."),
            (C, "Makes room for the 2 litres."),
            (C, "The 3 L jug now has only 1 litre of room."),
            (C, "Refill."),
            (C, "Exactly 1 litre moves, leaving 4."),
        ],
    ),
]

THEORY_OF_MIND = [
    entry(
        "theory_of_mind-surprise-party",
        "theory_of_mind",
        "Lena and Omar hide a birthday cake in the garage. Omar leaves for the shop. While he is away, Lena moves the cake to the basement because the garage is too warm. Omar returns and wants to show the cake to a guest.\nQuestion: Where will Omar look for the cake first?",
        "Find Omar's last observation of the cake.",
        [
            "Both hid the cake in the garage, so Omar believes it is there.",
            "Lena moved it while Omar was away, so he did not see the move.",
        ],
        "Omar got no message about the move in the story.",
        "Answering basement would report reality, not Omar's belief.",
        "Decisive tokens: [focus: away @ middle H2] for the missed move and [focus: garage @ late] for his last-seen location.",
        "garage",
        tom("garage", ["basement"], 1),
        ["away", "garage"],
        [hint("away", "middle", "Omar misses the move", 2), hint("garage", "late", "his last seen location")],
        [
            (C, "Omar took part in hiding it, so his belief starts at the garage."),
            (C, "His absence means the belief is never updated."),
        ],
    ),
    entry(
        "theory_of_mind-second-order-letter",
        "theory_of_mind",
        "Priya puts a letter in the desk while Tom watches. Tom leaves the room. Priya moves the letter to the shelf. Tom peeks through the window and sees the move, but Priya does not notice him.\nQuestion: Where does Priya think Tom will look for the letter?",
        "Separate what Tom saw from what Priya believes Tom saw.",
        [
            "Tom saw the letter go into the desk.",
            "Tom saw the move through the window, so he believes it is on the shelf.",
            "Priya did not notice Tom peeking, so she thinks Tom still believes desk.",
        ],
        "The question is second order: Priya's model of Tom, not Tom's belief.",
        "Answering shelf would give Tom's true belief instead of what Priya attributes to him.",
        "The answer rests on [focus: notice @ late H1] and [focus: desk @ late]; step 2 is true but answers a different question.",
        "desk",
        tom("desk", ["shelf"], 2),
        ["notice", "desk"],
        [hint("notice", "late", "Priya's missing observation", 1), hint("desk", "late", "Priya's model of Tom")],
        [
            (C, "Both saw the first placement."),
            (K, "True, but a distractor for a second-order question."),
            (C, "The decisive step: Priya's model of Tom was never updated."),
        ],
    ),
    entry(
        "theory_of_mind-three-agents-keys",
        "theory_of_mind",
        "Ana, Ben and Carla are in the kitchen. Ana puts the keys in the drawer. Ben leaves the kitchen. Carla moves the keys to the cupboard while Ana watches. Ana leaves the kitchen. Carla moves the keys to the bag. Ben comes back.\nQuestion: Where does Ana think Ben will look for the keys?",
        "Track Ana's model of Ben: which events Ana saw Ben witness.",
        [
            "Everyone saw the keys go into the drawer, so Ana knows Ben believes drawer.",
            "Ana saw Ben leave before the move to the cupboard, so she knows he missed it.",
            "The move to the bag happened after Ana left; it changes neither Ana's beliefs nor her model of Ben.",
        ],
        "Second-order question: Ana's belief about Ben's belief. Ana's own belief (cupboard) is a different level.",
        "Answering bag reports reality; answering cupboard reports Ana's own first-order belief.",
        "Step 2 hinges on [focus: Ben leaves @ middle H1] happening before the first move; [focus: drawer @ late] is the last location Ana saw Ben observe.",
        "drawer",
        tom("drawer", ["cupboard", "bag"], 2),
        ["Ben leaves", "drawer"],
        [
            hint("Ben leaves", "middle", "Ben's exit, seen by Ana, precedes both moves", 1),
            hint("drawer", "late", "the location Ana knows Ben saw"),
        ],
        [
            (C, "A shared observation anchors Ana's model of Ben."),
            (C, "Ana witnessed Ben's absence, so her model keeps drawer."),
            (C, "Correctly ignores a move Ana never saw."),
        ],
    ),
    entry(
        "theory_of_mind-museum-tickets",
        "theory_of_mind",
        "Dev and Ines are at the museum. Dev puts the tickets in the blue backpack. Ines goes to the restroom. Dev moves the tickets to his jacket pocket, then takes off the jacket, leaves it on a bench and goes to buy coffee. Ines returns, finds the tickets in the jacket pocket and moves them to her purse. Dev comes back.\nQuestion: Where will Dev look for the tickets?",
        "Find the last move Dev made or saw.",
        [
            "Dev himself moved the tickets from the backpack to his jacket pocket.",
            "Ines moved them to her purse while Dev was buying coffee.",
            "Dev did not see that move, so his belief stays with the jacket pocket.",
        ],
        "Two moves by two different agents: Dev knows his own move and misses Ines's.",
        "Answering backpack ignores Dev's own move; answering purse reports reality.",
        "Step 2 turns on [focus: buy coffee @ middle H0], Dev's absence; [focus: jacket pocket @ late] is the last location he knows.",
        "the jacket pocket",
        tom("jacket", ["backpack", "purse"], 1),
        ["buy coffee", "jacket pocket"],
        [
            hint("buy coffee", "middle", "Dev is away during the second move", 0),
            hint("jacket pocket", "late", "the location Dev chose himself"),
        ],
        [
            (C, "An agent always knows about their own move."),
            (C, "The timing of Ines's move is right."),
            (C, "The belief stays with the last move Dev knows of."),
        ],
    ),
    entry(
        "theory_of_mind-chocolate-phone-call",
        "theory_of_mind",
        "Maria puts her chocolate in the blue box and leaves for school. Her father moves the chocolate to the green box. Her brother Paul, who watched the move, phones Maria and tells her it is now in the green box. The father does not know about the call.\nQuestion: Where does the father think Maria will look for the chocolate?",
        "Separate Maria's real belief from the father's model of it.",
        [
            "Maria saw her chocolate go into the blue box.",
            "She was at school during the move, but Paul's call tells her about the green box, so Maria believes green box.",
            "The father does not know about the call, so he thinks Maria still believes blue box.",
        ],
        "Three agents: the father moved it, Paul informed Maria, and the father is unaware of the information flow.",
        "Answering green box would give Maria's actual belief, which is a first-order answer.",
        "Step 3 rests on [focus: does not know @ late H2]; step 2 on [focus: phones @ middle], which updates Maria but not the father's model.",
        "the blue box",
        tom("blue box", ["green box"], 2),
        ["does not know", "phones"],
        [
            hint("does not know", "late", "the father is unaware of the call", 2),
            hint("phones", "middle", "the communication that updates Maria only"),
        ],
        [
            (C, "Maria's starting belief."),
            (K, "Correct, yet it answers Maria's first-order belief; kept only to keep the two levels apart."),
            (C, "The decisive second-order step."),
        ],
    ),
    entry(
        "theory_of_mind-ice-cream-van",
        "theory_of_mind",
        "John and Mary see the ice-cream van parked in the park. Mary goes home to fetch money. The driver tells John he is moving the van to the church. On her way back, Mary meets the driver, who tells her the van is now at the church. John does not know that Mary met the driver.\nQuestion: Where does John think Mary will go to buy ice cream?",
        "Model John's view of what Mary knows, event by event.",
        [
            "John and Mary both saw the van in the park.",
            "John learned about the move to the church while Mary was away, and he knows she was away.",
            "Mary also learned it, but John does not know that, so John thinks Mary still believes the park.",
        ],
        "This is Perner and Wimmer's second-order task: Mary's real belief (church) is not what John attributes to her.",
        "Answering church confuses Mary's actual belief with John's model of it.",
        "Step 3 is decided by [focus: does not know @ late H0]; step 1's shared belief comes from [focus: park @ middle].",
        "the park",
        tom("park", ["church"], 2),
        ["does not know", "park"],
        [
            hint("does not know", "late", "John is unaware of Mary's meeting", 0),
            hint("park", "middle", "the shared starting belief"),
        ],
        [
            (C, "A shared observation."),
            (C, "John knows he alone heard the driver at that moment."),
            (C, "John cannot update his model of Mary without knowing of the meeting."),
        ],
    ),
    entry(
        "theory_of_mind-diary-deception",
        "theory_of_mind",
        "Leo does not want his sister Zoe to read his diary. He hides it in the wardrobe, then tells Zoe, on purpose, that it is under the bed. Zoe trusts her brother and did not see where he hid it.\nQuestion: Where will Zoe look for the diary first?",
        "Find Zoe's only source of information and whether she believes it.",
        [
            "The diary is really in the wardrobe, but Zoe did not see it hidden.",
            "Zoe's only information is Leo's lie, and she trusts him.",
            "So she believes, and will search, under the bed.",
        ],
        "Deception creates a false belief without any move of the object.",
        "Answering wardrobe would report where the diary is, not where Zoe thinks it is.",
        "[focus: trusts @ late H1] decides that the lie becomes her belief; [focus: did not see @ middle] removes the true location from her knowledge.",
        "under the bed",
        tom("bed", ["wardrobe"], 1),
        ["trusts", "did not see"],
        [
            hint("trusts", "late", "the lie is accepted", 1),
            hint("did not see", "middle", "Zoe lacks the true location"),
        ],
        [
            (C, "Reality is separated from Zoe's view."),
            (C, "Trust turns the lie into belief."),
            (C, "The search follows the belief."),
        ],
    ),
    entry(
        "theory_of_mind-stapler-seen-again",
        "theory_of_mind",
        "Kai, Lu and Mo work in the same office. Kai puts the stapler in the top drawer while everyone watches. Lu goes to a meeting. Kai moves the stapler to the shelf; Mo sees it. Lu returns and looks straight at the stapler on the shelf, and Mo watches her do it.\nQuestion: Where does Mo think Lu will look for the stapler?",
        "Follow Mo's model of Lu through each event Mo witnessed.",
        [
            "All three saw the stapler go into the top drawer.",
            "Lu missed the move to the shelf, so at that point Mo knows Lu believes drawer.",
            "Mo then watched Lu see the stapler on the shelf, so Mo updates: Lu now believes shelf.",
        ],
        "The false belief of step 2 is repaired by a later observation that Mo witnessed.",
        "Stopping at step 2 gives drawer, the classic false-belief answer that this story undoes.",
        "Step 3 hinges on [focus: Mo watches her @ late H3]; step 2 on [focus: meeting @ middle].",
        "the shelf",
        tom("shelf", ["drawer"], 2),
        ["Mo watches her", "meeting"],
        [
            hint("Mo watches her", "late", "Mo sees Lu's belief being corrected", 3),
            hint("meeting", "middle", "Lu's absence during the move"),
        ],
        [
            (C, "The shared starting point."),
            (K, "Right at that moment but superseded; a reader who stops here fails."),
            (C, "The decisive update."),
        ],
    ),
    entry(
        "theory_of_mind-coin-whisper",
        "theory_of_mind",
        "Rosa, Sam and Tia play a guessing game. Rosa hides a coin under the left cup while Sam and Tia watch. Sam leaves to answer the door. Rosa moves the coin under the right cup, and Tia sees it. Rosa goes to the kitchen. Sam comes back and Tia whispers to him that the coin is now under the right cup.\nQuestion: Where does Tia think Sam will point?",
        "Model Tia's view of Sam, including what Tia herself told him.",
        [
            "Sam saw the coin go under the left cup.",
            "Sam was away when Rosa moved it, so without help he would believe left.",
            "Tia told Sam herself, so Tia thinks Sam now believes right.",
        ],
        "The informant knows her message was delivered, so her second-order belief follows it.",
        "Answering for Rosa would give left: she is in the kitchen and does not know about the whisper.",
        "[focus: whispers @ late H2] is the event that updates Tia's model of Sam; [focus: answer the door @ middle] explains step 2.",
        "the right cup",
        tom("right", ["left"], 2),
        ["whispers", "answer the door"],
        [hint("whispers", "late", "Tia's own message to Sam", 2), hint("answer the door", "middle", "Sam's absence")],
        [(C, "Shared first observation."), (C, "Sam's missed move is tracked."), (C, "Tia knows what she told him.")],
    ),
    entry(
        "theory_of_mind-library-book-reality",
        "theory_of_mind",
        "Hana leaves a library book on her desk. Her roommate Yusuf borrows it without asking and reads it at the campus cafe, where he forgets it. A waiter hands it to the librarian, who puts it on the returns cart. Hana comes home and is surprised that her desk is empty.\nQuestion: Where is the book now?",
        "The question asks for reality: follow the book, not the people's beliefs.",
        [
            "The book starts on Hana's desk.",
            "Yusuf takes it to the cafe and forgets it there.",
            "The librarian puts it on the returns cart: the last move in the story.",
        ],
        "Reality question (order 0): only the last move counts.",
        "Hana would expect her desk and Yusuf the cafe; answering with either belief is the trap.",
        "The question word [focus: now @ late H0] asks for reality; [focus: returns cart @ middle] is the last location in the story.",
        "on the returns cart",
        tom("returns cart", ["desk", "cafe"], 0),
        ["now", "returns cart"],
        [
            hint("now", "late", "the question is about reality", 0),
            hint("returns cart", "middle", "the final location"),
        ],
        [(C, "The start."), (C, "A belief trap for Yusuf, correctly passed over."), (C, "The last move decides.")],
    ),
]

PROGRAMMING = [
    entry(
        "programming-fizz-count",
        "programming",
        "Write a Python function count_multiples(n) that returns how many integers in 1..n are divisible by 3 or 5.",
        "Use inclusion-exclusion instead of a loop.",
        ["Multiples of 3: n // 3; of 5: n // 5.", "Multiples of 15 were counted twice: subtract n // 15."],
        "Checked n = 15: 5 + 3 - 1 = 7 (3, 5, 6, 9, 10, 12, 15).",
        "Forgetting the overlap would count 15 twice.",
        "The [focus: or @ middle H1] means a union, hence the subtraction; [focus: divisible @ late] gives floor division.",
        "count_multiples(n) = n//3 + n//5 - n//15",
        tests(
            "count_multiples",
            "assert count_multiples(15) == 7",
            "assert count_multiples(1) == 0",
            "assert count_multiples(100) == 47",
            "assert count_multiples(0) == 0",
        ),
        ["or", "divisible"],
        [hint("or", "middle", "union", 1), hint("divisible", "late", "floor division")],
        [(C, "Floor division counts the multiples up to n."), (C, "Inclusion-exclusion removes the double count.")],
        code="def count_multiples(n):\n    return n // 3 + n // 5 - n // 15",
    ),
    entry(
        "programming-balanced",
        "programming",
        "Write a Python function is_balanced(s) that returns True when the brackets (), [] and {} in s are balanced and properly nested, else False.",
        "Scan left to right with a stack of open brackets.",
        [
            "Push every opening bracket.",
            "On a closing bracket, the stack top must be its partner; pop it.",
            "At the end the stack must be empty.",
        ],
        "Tested mentally on '([)]' (fails at ')') and '' (True).",
        "Counting brackets per type would accept '([)]'.",
        "Nesting ([focus: nested @ late H2]) needs a stack, not counters per kind of [focus: brackets @ middle].",
        "is_balanced uses a stack",
        tests(
            "is_balanced",
            "assert is_balanced('([]{})')",
            "assert not is_balanced('([)]')",
            "assert is_balanced('')",
            "assert not is_balanced('((')",
            "assert not is_balanced(')(')",
            "assert is_balanced('a(b)c')",
        ),
        ["nested", "brackets"],
        [hint("nested", "late", "needs a stack", 2), hint("brackets", "middle", "the alphabet")],
        [
            (C, "Opening brackets wait on the stack."),
            (C, "An empty stack on a closer is handled, so ')(' fails."),
            (C, "Leftover openers make '((' fail."),
        ],
        code="def is_balanced(s):\n    pairs = {')': '(', ']': '[', '}': '{'}\n    stack = []\n    for ch in s:\n        if ch in '([{':\n            stack.append(ch)\n        elif ch in pairs:\n            if not stack or stack.pop() != pairs[ch]:\n                return False\n    return not stack",
    ),
    entry(
        "programming-dedupe",
        "programming",
        "Write a Python function dedupe(items) that removes duplicates from a list while keeping the first occurrence order.",
        "Keep a set of seen items and build the output in one pass.",
        ["For each item, skip it if already seen.", "Otherwise append it and mark it seen."],
        "Order is preserved because the output is built in input order.",
        "list(set(items)) would lose the order.",
        "The constraint is [focus: order @ late H0]; [focus: first @ middle] means keep the earliest copy.",
        "dedupe keeps first occurrences",
        tests(
            "dedupe",
            "assert dedupe([3, 1, 3, 2, 1]) == [3, 1, 2]",
            "assert dedupe([]) == []",
            "assert dedupe(['a', 'a']) == ['a']",
        ),
        ["order", "first"],
        [hint("order", "late", "the constraint", 0), hint("first", "middle", "which copy")],
        [
            (C, "Set membership keeps the check O(1)."),
            (K, "Requires hashable items; fine for the tests, but unhashable items would need a slower list check."),
        ],
        code="def dedupe(items):\n    seen, out = set(), []\n    for item in items:\n        if item not in seen:\n            seen.add(item)\n            out.append(item)\n    return out",
    ),
    entry(
        "programming-fix-off-by-one",
        "programming",
        "This function should return the sum of the first n odd numbers but returns the wrong value: def sum_odd(n): return sum(2 * i + 1 for i in range(1, n)). Write a fixed sum_odd(n).",
        "Trace the generator for small n and fix the range.",
        [
            "For n = 1 the range(1, 1) is empty, so the result is 0 instead of 1.",
            "The odd numbers are 2 * i + 1 for i in range(0, n).",
        ],
        "Checked: the sum of the first n odd numbers is n * n; the fix gives 1, 4, 9.",
        "Starting at 1 drops the first odd number (1).",
        "The bug sits in [focus: range @ late H3] with its start [focus: 1 @ middle].",
        "range(n) instead of range(1, n)",
        tests(
            "sum_odd",
            "assert sum_odd(1) == 1",
            "assert sum_odd(3) == 9",
            "assert sum_odd(0) == 0",
            "assert sum_odd(10) == 100",
        ),
        ["range", "1"],
        [hint("range", "late", "where the bug is", 3), hint("1", "middle", "wrong start")],
        [(C, "The smallest failing input exposes the bug."), (C, "The fix matches the n * n identity.")],
        code="def sum_odd(n):\n    return sum(2 * i + 1 for i in range(n))",
    ),
    entry(
        "programming-run-length",
        "programming",
        "Write a Python function rle(s) that run-length encodes a string: each maximal run of one character becomes the character followed by the run length, e.g. rle('aaabcc') == 'a3b1c2'. The empty string encodes to ''.",
        "Group consecutive equal characters with itertools.groupby and emit character plus count.",
        [
            "Group consecutive equal characters with itertools.groupby.",
            "For each group emit the character and the group's length.",
            "Join the pieces; an empty string yields no groups, hence ''.",
        ],
        "Traced 'aabaa': the groups aa, b, aa give 'a2b1a2', so runs are not merged across the b.",
        "Counting with a Counter would merge the two a-runs into 'a4b1'; lengths of 10 or more must stay whole numbers ('a12').",
        "[focus: maximal run @ middle H1] is why groupby and not Counter; the [focus: empty string @ late] case needs no special branch.",
        "rle groups consecutive runs with itertools.groupby",
        tests(
            "rle",
            "assert rle('aaabcc') == 'a3b1c2'",
            "assert rle('') == ''",
            "assert rle('abc') == 'a1b1c1'",
            "assert rle('aaaaaaaaaaaa') == 'a12'",
            "assert rle('aabaa') == 'a2b1a2'",
        ),
        ["maximal run", "empty string"],
        [
            hint("maximal run", "middle", "consecutive grouping, not global counting", 1),
            hint("empty string", "late", "the edge case"),
        ],
        [
            (C, "groupby groups only adjacent equal items, as required."),
            (C, "len(list(run)) is the run length."),
            (C, "The empty case falls out of the join."),
        ],
        code="from itertools import groupby\n\ndef rle(s):\n    return ''.join(ch + str(len(list(run))) for ch, run in groupby(s))",
    ),
    entry(
        "programming-first-index",
        "programming",
        "Write a Python function first_index(xs, target) that returns the index of the first occurrence of target in the sorted list xs, or -1 if it is absent. It must use binary search (O(log n)).",
        "Use bisect_left from the standard library, then check that the found slot holds target.",
        [
            "bisect_left returns the leftmost insertion point for target, which is its first occurrence when present.",
            "If the insertion point is past the end or holds a different value, target is absent: return -1.",
        ],
        "Checked duplicates ([7, 7, 7] -> 0), a value beyond the end (9 -> -1), one before the start (0 -> -1) and an empty list.",
        "A hand-written loop with lo = mid instead of lo = mid + 1 can loop forever; bisect_right would point one past the last occurrence.",
        "[focus: first occurrence @ late H0] selects bisect_left over bisect_right; [focus: sorted @ middle] is the precondition for binary search.",
        "first_index uses bisect_left",
        tests(
            "first_index",
            "assert first_index([1, 2, 2, 2, 3], 2) == 1",
            "assert first_index([1, 3, 5], 4) == -1",
            "assert first_index([], 1) == -1",
            "assert first_index([7, 7, 7], 7) == 0",
            "assert first_index([1, 2, 3], 9) == -1",
            "assert first_index([1, 2, 3], 0) == -1",
        ),
        ["first occurrence", "sorted"],
        [
            hint("first occurrence", "late", "leftmost, hence bisect_left", 0),
            hint("sorted", "middle", "makes binary search valid"),
        ],
        [
            (C, "bisect_left is O(log n) and leftmost."),
            (C, "Both absent cases are covered by the bounds and value check."),
        ],
        code="from bisect import bisect_left\n\ndef first_index(xs, target):\n    i = bisect_left(xs, target)\n    return i if i < len(xs) and xs[i] == target else -1",
    ),
    entry(
        "programming-merge-intervals",
        "programming",
        "Write a Python function merge_intervals(intervals) that takes a list of [start, end] pairs in any order and returns the merged, non-overlapping intervals sorted by start; intervals that touch, such as [1, 4] and [4, 5], merge.",
        "Sort by start, then sweep once, extending the last merged interval or starting a new one.",
        [
            "Sort by start so that overlapping intervals become neighbours.",
            "If an interval starts at or before the end of the last merged one, extend that end with max.",
            "Otherwise start a new merged interval.",
        ],
        "[[1, 10], [2, 3]] stays [[1, 10]] thanks to max; [[1, 4], [4, 5]] merges because the test is <=, not <.",
        "Assigning the new end instead of max would shrink [1, 10] to [1, 3]; < instead of <= would keep touching intervals apart.",
        "[focus: any order @ middle H2] makes step 1 necessary; [focus: touch @ late] decides the <= in step 2.",
        "merge_intervals sorts, then sweeps once",
        tests(
            "merge_intervals",
            "assert merge_intervals([[8, 10], [1, 3], [2, 6], [15, 18]]) == [[1, 6], [8, 10], [15, 18]]",
            "assert merge_intervals([[1, 4], [4, 5]]) == [[1, 5]]",
            "assert merge_intervals([]) == []",
            "assert merge_intervals([[1, 10], [2, 3]]) == [[1, 10]]",
            "assert merge_intervals([[5, 6], [1, 2]]) == [[1, 2], [5, 6]]",
        ),
        ["any order", "touch"],
        [
            hint("any order", "middle", "input must be sorted first", 2),
            hint("touch", "late", "boundary case for the comparison"),
        ],
        [
            (C, "Sorting makes one sweep enough."),
            (C, "max keeps contained intervals from shrinking the end."),
            (C, "New lists are appended, so the caller's input is not mutated."),
        ],
        code="def merge_intervals(intervals):\n    merged = []\n    for start, end in sorted(intervals):\n        if merged and start <= merged[-1][1]:\n            merged[-1][1] = max(merged[-1][1], end)\n        else:\n            merged.append([start, end])\n    return merged",
    ),
    entry(
        "programming-roman",
        "programming",
        "Write a Python function to_roman(n) that converts an integer 1 <= n <= 3999 to a Roman numeral using subtractive notation (4 = IV, 9 = IX, 40 = XL, 90 = XC, 400 = CD, 900 = CM).",
        "Greedy conversion over a table of values that includes the subtractive pairs.",
        [
            "List the values from 1000 down, with the six subtractive pairs as their own entries.",
            "Greedily take as many of each value as fit (divmod) and append its symbol that many times.",
        ],
        "1994 -> M, CM, XC, IV = MCMXCIV; 3999 -> MMMCMXCIX, the upper bound.",
        "Leaving out the subtractive pairs would write 4 as IIII and 1994 as MDCCCCLXXXXIIII.",
        "[focus: subtractive @ middle H3] is why the table holds CM, CD, XC, XL, IX and IV; the bound [focus: 3999 @ late] means no symbol beyond M is needed.",
        "to_roman converts greedily with subtractive pairs",
        tests(
            "to_roman",
            "assert to_roman(1994) == 'MCMXCIV'",
            "assert to_roman(3999) == 'MMMCMXCIX'",
            "assert to_roman(4) == 'IV'",
            "assert to_roman(58) == 'LVIII'",
            "assert to_roman(1) == 'I'",
        ),
        ["subtractive", "3999"],
        [
            hint("subtractive", "middle", "the pairs the table must contain", 3),
            hint("3999", "late", "upper bound of the input"),
        ],
        [
            (C, "The table is complete and in descending order."),
            (C, "Greedy is optimal for this table, which is what makes Roman numerals canonical."),
        ],
        code="def to_roman(n):\n    table = [(1000, 'M'), (900, 'CM'), (500, 'D'), (400, 'CD'), (100, 'C'), (90, 'XC'),\n             (50, 'L'), (40, 'XL'), (10, 'X'), (9, 'IX'), (5, 'V'), (4, 'IV'), (1, 'I')]\n    out = []\n    for value, symbol in table:\n        count, n = divmod(n, value)\n        out.append(symbol * count)\n    return ''.join(out)",
    ),
    entry(
        "programming-top-words",
        "programming",
        "Write a Python function top_words(text, k) that returns the k most frequent words of text as a list, lowercased, where words are runs of letters; ties are broken alphabetically.",
        "Count lowercased letter runs with collections.Counter, then sort by (-count, word).",
        [
            "Lowercase the text and extract runs of letters with a regular expression.",
            "Count them with collections.Counter.",
            "Sort by descending count, then alphabetically, and keep the first k.",
        ],
        "'b a b a c' with k = 2: a and b both occur twice, and the tie rule puts a first.",
        "Counter.most_common breaks ties by first appearance, not alphabetically, so it would return ['b', 'a'].",
        "[focus: alphabetically @ late H1] rules out most_common; [focus: lowercased @ middle] makes 'Dog' and 'DOG' the same word.",
        "top_words sorts by count, then alphabetically",
        tests(
            "top_words",
            "assert top_words('the cat and the hat', 1) == ['the']",
            "assert top_words('b a b a c', 2) == ['a', 'b']",
            "assert top_words('Dog dog DOG, cat!', 2) == ['dog', 'cat']",
            "assert top_words('', 3) == []",
            "assert top_words(\"it's it\", 1) == ['it']",
        ),
        ["alphabetically", "lowercased"],
        [
            hint("alphabetically", "late", "the tie rule", 1),
            hint("lowercased", "middle", "case folding before counting"),
        ],
        [
            (C, 'Letter runs split "it\'s" into it and s, matching the definition.'),
            (C, "Counter is the standard tool."),
            (C, "The explicit sort key implements the tie rule."),
        ],
        code="import re\nfrom collections import Counter\n\ndef top_words(text, k):\n    counts = Counter(re.findall(r'[a-z]+', text.lower()))\n    return [word for word, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:k]]",
    ),
    entry(
        "programming-mutable-default",
        "programming",
        "Calls to this function share state: def add_item(item, bucket=[]): bucket.append(item); return bucket. After add_item(1), a call add_item(2) returns [1, 2] instead of [2]. Write a fixed add_item(item, bucket=None) that starts from a new empty list whenever no bucket is passed.",
        "Find where the shared list comes from, then create the list per call instead of per definition.",
        [
            "The default [] is evaluated once, when def runs, so every call without a bucket appends to that one list.",
            "Use None as the default and create a fresh list inside the function.",
            "When the caller passes a list, keep appending to it as before.",
        ],
        "Two calls without a bucket now return [1] and [2], and the two results are different objects.",
        "Copying the argument (bucket = list(bucket)) would also stop the sharing but would silently change what happens to a list the caller passes in.",
        "The default of [focus: bucket @ middle H2] is a list evaluated once; [focus: share state @ late] names the symptom the fix removes.",
        "use None as the default and build the list inside the call",
        tests(
            "add_item",
            "assert add_item(1) == [1]",
            "assert add_item(2) == [2]",
            "assert add_item(3, [0]) == [0, 3]",
            "assert add_item(1) is not add_item(1)",
        ),
        ["bucket", "share state"],
        [
            hint("bucket", "middle", "the parameter whose mutable default is created once", 2),
            hint("share state", "late", "the reported symptom"),
        ],
        [
            (C, "Default values are evaluated at definition time: the root cause."),
            (C, "The None sentinel is the idiomatic fix."),
            (C, "Caller-supplied lists keep the old behaviour, which the third test pins."),
        ],
        code="def add_item(item, bucket=None):\n    if bucket is None:\n        bucket = []\n    bucket.append(item)\n    return bucket",
    ),
]

NARRATIVE = [
    entry(
        "narrative-umbrella",
        "narrative",
        "Maya left home at 8 with her umbrella. At the cafe it stopped raining and she forgot the umbrella on her chair. At noon she went back to the cafe, but the waiter said nobody had left anything. In the evening her brother handed her the umbrella: he had picked it up at the cafe at 9.\nQuestion: Who had the umbrella at noon?",
        "Order the events by time and track who held the umbrella.",
        [
            "8: Maya has the umbrella.",
            "At the cafe Maya forgets it on her chair.",
            "At 9 her brother picks it up at the cafe.",
            "At noon it was no longer at the cafe, which fits the waiter's answer.",
        ],
        "The timeline has no gap: the brother held it from 9 until the evening.",
        "Saying the waiter had it would contradict his statement and the brother's pickup.",
        "Decisive: [focus: 9 @ late H2] comes before [focus: noon @ middle]; the pickup at 9 is told last, in the evening scene, but happened before noon.",
        "her brother",
        story(
            "her brother",
            ["Maya's brother", "brother", "the brother"],
            ["at 9 her brother picks it up"],
            ["the waiter had the umbrella"],
        ),
        ["9", "noon"],
        [hint("9", "late", "time of pickup", 2), hint("noon", "middle", "time asked")],
        [
            (C, "The start of the chain."),
            (C, "The loss."),
            (C, "A flashback told at the end of the story, correctly moved to its place in time."),
            (C, "The waiter's statement is consistent with the timeline."),
        ],
    ),
    entry(
        "narrative-missing-cookies",
        "narrative",
        "Grandma baked 12 cookies and left them on the table. Ben ate 3 before lunch. After lunch Ana ate twice as many as Ben. The dog took 1 when nobody was watching. In the evening Grandma counted the cookies.\nQuestion: How many cookies did Grandma count?",
        "Subtract each eater's share from 12 in story order.",
        ["Ben ate 3, leaving 9.", "Ana ate twice as many as Ben, 6, leaving 3.", "The dog took 1, leaving 2."],
        "Shares: 3 + 6 + 1 = 10 of 12.",
        "Reading 'twice as many' as 2 would give 6 left instead of 2.",
        "Decisive: [focus: twice @ middle H0] refers back to [focus: Ben @ late]; the unseen dog still counts.",
        "2",
        story("2", ["two", "2 cookies"], ["ana ate twice as many as ben, 6"], ["ana ate 2"]),
        ["twice", "Ben"],
        [hint("twice", "middle", "relative quantity", 0), hint("Ben", "late", "its referent")],
        [
            (C, "12 - 3 = 9."),
            (C, "Twice Ben's 3 is 6."),
            (C, "'Nobody was watching' does not change the count; the dog's cookie is gone too."),
        ],
    ),
    entry(
        "narrative-alibi",
        "narrative",
        "The vase broke at 3 pm. Leo was at football practice from 2 to 4 pm, seen by his coach. Nina was home alone all afternoon. The cat was locked in the garden shed all day.\nQuestion: Who could have broken the vase?",
        "Check who was at home at 3 pm.",
        [
            "Leo was at practice from 2 to 4, confirmed by the coach, so not home at 3.",
            "The cat was locked in the shed, so it could not reach the vase.",
            "Nina was home alone all afternoon, including 3 pm.",
        ],
        "Exactly one candidate remains.",
        "Blaming the cat ignores that it was locked in the shed.",
        "Decisive: [focus: alone @ late H1] leaves Nina without an alibi and [focus: locked @ middle] excludes the cat.",
        "Nina",
        story("Nina", [], ["nina was home alone"], ["leo was home at 3"]),
        ["alone", "locked"],
        [hint("alone", "late", "no alibi", 1), hint("locked", "middle", "cat excluded")],
        [
            (C, "A witnessed alibi covers 3 pm."),
            (C, "Physical exclusion."),
            (
                K,
                "Opportunity is not proof: the answer is who could have done it, which the question asks, not who did.",
            ),
        ],
    ),
    entry(
        "narrative-letters-order",
        "narrative",
        "Kim wrote three letters. She wrote the letter to her aunt after the one to her teacher. The letter to her friend was written first.\nQuestion: Which letter did Kim write last?",
        "Place the letters on a timeline from the two ordering clues.",
        [
            "The friend letter is first.",
            "The aunt letter comes after the teacher letter, so teacher is second and aunt third.",
        ],
        "Order friend, teacher, aunt satisfies both clues.",
        "Reading 'after' backwards would make the teacher letter last.",
        "Decisive: [focus: after @ middle H0] orders aunt behind teacher and [focus: first @ late] anchors the friend letter.",
        "the letter to her aunt",
        story(
            "the letter to her aunt",
            ["aunt", "her aunt", "to her aunt", "the aunt letter"],
            ["the friend letter is first"],
            ["teacher third"],
        ),
        ["after", "first"],
        [hint("after", "middle", "relative order", 0), hint("first", "late", "anchor")],
        [(C, "The absolute clue is placed first."), (C, "The relative clue fills the two remaining slots.")],
    ),
    entry(
        "narrative-race-last",
        "narrative",
        "Four runners, Ola, Pia, Quinn and Rami, finished a race with no ties. Quinn finished ahead of Ola. Pia finished right after Ola. Rami was not last.\nQuestion: Who finished last?",
        "Combine the ordering clues into blocks, then use the 'not last' clue.",
        [
            "Pia comes right after Ola and Quinn comes before Ola, so the order contains Quinn, then later Ola immediately followed by Pia.",
            "Ola cannot be last because Pia follows Ola; Quinn cannot be last because Ola follows Quinn; Rami is not last by the clue.",
            "The possible orders are Rami, Quinn, Ola, Pia and Quinn, Rami, Ola, Pia: Pia is last in both.",
        ],
        "The clues leave two full orders, but the question only needs the last place, which is the same in both.",
        "Trying to pin down the whole order would fail; placing Rami last contradicts a clue.",
        "[focus: right after @ middle H0] glues Ola and Pia together; [focus: not last @ late] removes Rami. Step 3's enumeration confirms step 2.",
        "Pia",
        story("Pia", ["Pia finished last"], ["pia is last in both"], ["rami finished last"]),
        ["right after", "not last"],
        [hint("right after", "middle", "adjacency of Ola and Pia", 0), hint("not last", "late", "excludes Rami")],
        [
            (C, "The two order clues are combined correctly."),
            (C, "Elimination of three candidates."),
            (C, "Enumerating the full orders double-checks the elimination."),
        ],
    ),
    entry(
        "narrative-wallet-taxi",
        "narrative",
        "On Monday Jonas kept his wallet in his jacket. In the morning he paid for coffee with cash from the wallet. At lunch and for the afternoon taxi he paid with his phone. He took off his jacket in the taxi and left it on the seat. That evening he could not find his wallet.\nQuestion: Where did Jonas most likely lose his wallet?",
        "Track the container (the jacket) and the last time the wallet was seen.",
        [
            "The wallet was in the jacket, and it was still in use at the morning coffee.",
            "At lunch and in the taxi he paid by phone, so he never took the wallet out again.",
            "The jacket, with the wallet inside, stayed on the taxi seat.",
        ],
        "No later event takes the wallet out of the jacket, so it went wherever the jacket went.",
        "Blaming the coffee shop ignores that the wallet was used there and put back; the jacket is the thing to track.",
        "[focus: jacket @ middle H2] is the container that carries the wallet; [focus: left it on the seat @ late] is the loss event.",
        "in the taxi",
        story(
            "in the taxi",
            ["the taxi", "taxi", "in the taxi, in his jacket"],
            ["the wallet was in the jacket"],
            ["lost it at the cafe"],
        ),
        ["jacket", "left it on the seat"],
        [
            hint("jacket", "middle", "the container of the wallet", 2),
            hint("left it on the seat", "late", "the loss event"),
        ],
        [
            (C, "The last confirmed sighting of the wallet."),
            (
                K,
                "Paying by phone only suggests the wallet stayed put; it is likely, not certain, hence 'most likely'.",
            ),
            (C, "The jacket's fate decides the wallet's."),
        ],
    ),
    entry(
        "narrative-missed-train",
        "narrative",
        "Ravi's train left at 8:15. He left home at 7:50, and the walk to the station takes 20 minutes. On the way he stopped for 10 minutes to help a neighbour push a stalled car.\nQuestion: Did Ravi catch the train?",
        "Add the walking time and the delay to the departure from home, then compare with 8:15.",
        [
            "Walking alone would bring him to the station at 7:50 + 20 minutes = 8:10.",
            "The 10-minute stop moves that to 8:20, so he reached the station at 8:20.",
            "8:20 is 5 minutes after the 8:15 departure.",
        ],
        "Total time on the way: 20 + 10 = 30 minutes, and 7:50 plus 30 minutes is 8:20.",
        "Ignoring the stop gives 8:10 and a wrong yes.",
        "[focus: stopped @ middle H1] adds step 2's delay; [focus: 8:15 @ late] is the deadline compared in step 3.",
        "no, he missed it by 5 minutes",
        story(
            "no, he missed it by 5 minutes",
            ["no", "no, he missed it", "he missed it by 5 minutes", "missed by 5 minutes"],
            ["he reached the station at 8:20"],
            ["he caught the train"],
        ),
        ["stopped", "8:15"],
        [hint("stopped", "middle", "the delay", 1), hint("8:15", "late", "the deadline")],
        [
            (C, "Without the stop he would have been 5 minutes early."),
            (C, "The delay is added."),
            (C, "The comparison is right."),
        ],
    ),
    entry(
        "narrative-trophy-suitcase",
        "narrative",
        "Lea tried to pack her new trophy for the flight home, but the trophy did not fit into the suitcase because it was too big. She left it with her sister and flew home with only the suitcase.\nQuestion: What was too big?",
        "Resolve the pronoun 'it' by asking which reading makes the sentence true.",
        [
            "'It' could refer to the trophy or to the suitcase.",
            "A too-big suitcase would hold the trophy easily, so 'it' cannot be the suitcase.",
            "A too-big trophy explains why it did not fit, and why Lea left it behind.",
        ],
        "Swapping 'big' for 'small' would flip the referent to the suitcase; the answer depends on that word.",
        "Resolving 'it' to the nearest noun (the suitcase) is the syntactic trap.",
        "[focus: too big @ late H3] decides the referent; [focus: fit @ middle] supplies the relation between the two objects.",
        "the trophy",
        story(
            "the trophy",
            ["trophy", "her trophy", "her new trophy"],
            ["a too-big suitcase would hold the trophy"],
            ["the suitcase was too big"],
        ),
        ["too big", "fit"],
        [
            hint("too big", "late", "the property that selects the referent", 3),
            hint("fit", "middle", "containment relation"),
        ],
        [
            (C, "Both candidates are named."),
            (C, "The suitcase reading is refuted by world knowledge."),
            (C, "The later sentence (she left it behind) confirms the reading."),
        ],
    ),
    entry(
        "narrative-power-cut-clock",
        "narrative",
        "A storm cut the power at 21:00. The kitchen clock restarts at 0:00 whenever the power comes back and has kept running since. At 7:00 the next morning Omar's phone showed 7:00 while the kitchen clock showed 7:30.\nQuestion: At what time did the power come back?",
        "Read the kitchen clock as elapsed time since the power returned, then count back from the real time.",
        [
            "Since the power returned, the clock has counted 7 hours 30 minutes.",
            "Counting back 7 hours 30 minutes from 7:00 gives 23:30 the evening before.",
            "23:30 is after the 21:00 cut, so the timeline is consistent: the outage lasted 2 hours 30 minutes.",
        ],
        "Forward check: 23:30 plus 7 hours 30 minutes is 7:00.",
        "Reading the clock's 7:30 as the real time, or assuming the power returned at midnight, are the two traps.",
        "[focus: restarts at 0:00 @ middle H0] turns the display into elapsed time; [focus: 7:30 @ late] is the quantity subtracted in step 2.",
        "23:30",
        story(
            "23:30",
            ["11:30 pm", "11:30 p.m", "23:30 the evening before", "at 23:30"],
            ["the clock has counted 7 hours 30 minutes"],
            ["the power came back at 0:00"],
        ),
        ["restarts at 0:00", "7:30"],
        [
            hint("restarts at 0:00", "middle", "the display is elapsed time", 0),
            hint("7:30", "late", "the elapsed time to subtract"),
        ],
        [
            (C, "The clock is read as a timer, not as time of day."),
            (C, "The subtraction crosses midnight correctly."),
            (C, "Consistency with the 21:00 cut is checked."),
        ],
    ),
    entry(
        "narrative-visit-weekdays",
        "narrative",
        "Nora's birthday party was on a Saturday. Her cousin arrived three days before the party and left two days after it. Her grandfather arrived the day after her cousin and left the day before her cousin did.\nQuestion: On which day of the week did the grandfather leave?",
        "Anchor every date to the Saturday party and count in days.",
        [
            "The cousin arrived three days before Saturday, on Wednesday.",
            "The cousin left two days after Saturday, on Monday.",
            "The grandfather left the day before the cousin, so on Sunday.",
        ],
        "The grandfather's stay, Thursday to Sunday, lies inside the cousin's, Wednesday to Monday, and covers the Saturday party.",
        "The grandfather's arrival day (Thursday) is a distractor: the question asks only when he left.",
        "[focus: left the day before @ late H1] ties the answer to the cousin's departure; [focus: Saturday @ middle] is the reference day for both counts.",
        "Sunday",
        story(
            "Sunday",
            ["on Sunday"],
            ["the cousin left two days after saturday, on monday"],
            ["the grandfather left on monday"],
        ),
        ["left the day before", "Saturday"],
        [
            hint("left the day before", "late", "the relation that gives the answer", 1),
            hint("Saturday", "middle", "the anchor day"),
        ],
        [
            (K, "Not needed for the answer; the arrival chain only feeds the monitor's consistency check."),
            (C, "Saturday plus two days is Monday."),
            (C, "The day before Monday is Sunday."),
        ],
    ),
]

HAND = MATH + DIAGNOSTICS + PLANNING + THEORY_OF_MIND + PROGRAMMING + NARRATIVE


def check_hand_written(item):
    """The Reflection cites every hint as the introspection prior states it, parsed as the evaluator parses it."""
    reflection = dict(parse_report(item["completion"]).sections)["Reflection"]
    cited = {(c.term, c.layer if c.band is None else c.band, c.head) for c in parse_report(reflection).citations}
    for h in item["introspection"]["hints"]:
        if (h["token"], h["layer"], h["head"]) not in cited:
            raise SystemExit(
                f"entry {item['id']}: the Reflection must cite {citation(h)} as its introspection hint says"
            )
    missing = set(item["introspection"]["focus_terms"]) - {term for term, _, _ in cited}
    if missing:
        raise SystemExit(f"entry {item['id']}: focus terms {sorted(missing)} are not cited in the Reflection")


def main():
    counts = Counter(e["category"] for e in HAND)
    short = {c: counts[c] for c in CATEGORIES if counts[c] < MIN_HAND_WRITTEN_PER_CATEGORY}
    if short:
        raise SystemExit(f"categories with fewer than {MIN_HAND_WRITTEN_PER_CATEGORY} hand-written entries: {short}")
    entries = list(HAND)
    for category, n in GENERATED.items():
        entries += generated_entries(category, n, seed=0)
    for i, item in enumerate(entries, 1):
        check_entry(item, i)
        if item["source"] == "hand-written":
            check_hand_written(item)
        result = validate(item["completion"], item["validator"])
        if not result.passed:
            raise SystemExit(f"entry {item['id']}: its gold completion fails its validator: {result.reason}")
    ids = Counter(e["id"] for e in entries)
    duplicates = [i for i, n in ids.items() if n > 1]
    if duplicates:
        raise SystemExit(f"duplicate ids: {duplicates}")
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tasks.jsonl")
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".jsonl")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for item in entries:
                handle.write(json.dumps(item, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    print(
        f"wrote {len(entries)} tasks ({len(HAND)} hand-written: "
        + ", ".join(f"{c} {counts[c]}" for c in CATEGORIES)
        + f") to {path}"
    )


if __name__ == "__main__":
    main()
