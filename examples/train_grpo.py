"""GRPO on verifiable arithmetic with ReasoningGRPOTrainer (one prompt prefill per group).

The policy is a GPT-2, meta-attention or CRSM language model built from a small config (or a
checkpoint via --model_name_or_path), the tokenizer is trained locally, and the rewards are the
exact-answer checker plus the format reward, combined with weights. Optional LoRA (--use_peft).

    python examples/train_grpo.py --output_dir runs/grpo --max_steps 200
    python examples/train_grpo.py --output_dir runs/grpo --family meta_attention --use_peft true
    python examples/train_grpo.py --output_dir runs/grpo --cosine_curriculum true   # format first, then answers
    python examples/train_grpo.py --output_dir runs/grpo --max_ops 4 --difficulty_column num_ops   # easy to hard
    python examples/train_grpo.py --output_dir runs/grpo --max_ops 4 --difficulty_column num_ops \
        --curriculum_schedule pass_rate --curriculum_pass_threshold 0.5   # harder once the newest level is solved
    accelerate launch --config_file accelerate_configs/cpu_2proc.yaml examples/train_grpo.py --output_dir runs/grpo

Every `ReasoningGRPOConfig` / `GRPOConfig` option is a flag too (`--help`).
"""

import os
from dataclasses import dataclass, field
from typing import Optional


os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, HfArgumentParser  # noqa: E402
from transformers.trainer import TRAINER_STATE_NAME  # noqa: E402

from hf_reason.data import build_tokenizer, generate_arithmetic  # noqa: E402
from hf_reason.distributed import end_distributed  # noqa: E402
from hf_reason.trainers import ReasoningGRPOConfig, ReasoningGRPOTrainer, resolve_resume_checkpoint  # noqa: E402
from hf_reason.trainers.curriculum import CosineRewardCurriculum  # noqa: E402
from hf_reason.trainers.rewards import ArithmeticAnswerReward, CombinedReward, FormatReward  # noqa: E402


FAMILIES = ("gpt2", "meta_attention", "crsm")


@dataclass
class ScriptArguments:
    family: str = field(default="gpt2", metadata={"help": f"Model family for a new model: one of {FAMILIES}."})
    model_name_or_path: Optional[str] = field(
        default=None,
        metadata={"help": "Start from this causal-LM checkpoint (its tokenizer too) instead of a new model."},
    )
    hidden_size: int = field(default=64, metadata={"help": "Width of a new model."})
    num_layers: int = field(default=2, metadata={"help": "Layers of a new model."})
    vocab_size: int = field(default=512, metadata={"help": "Size of the locally trained tokenizer."})
    num_train_problems: int = field(default=2000, metadata={"help": "Arithmetic prompts to train on."})
    max_ops: int = field(default=2, metadata={"help": "Most operators per problem."})
    correctness_weight: float = field(default=1.0, metadata={"help": "Weight of the exact-answer reward."})
    format_weight: float = field(default=0.2, metadata={"help": "Weight of the <think>/answer format reward."})
    sft_steps: int = field(
        default=200,
        metadata={
            "help": "For a new model: SFT steps on worked solutions first (GRPO needs a policy that sometimes "
            "gets a reward). 0 = none."
        },
    )
    cosine_curriculum: bool = field(
        default=False,
        metadata={
            "help": "Move the reward weight from format to correctness along a cosine (CosineRewardCurriculum): "
            "format 1.0 at the first step, --curriculum_end at the last; correctness gets the rest. Replaces "
            "--correctness_weight / --format_weight."
        },
    )
    curriculum_end: float = field(default=0.2, metadata={"help": "Format weight at the last step (in [0, 1])."})
    use_peft: bool = field(default=False, metadata={"help": "Train a LoRA adapter instead of all weights."})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank."})

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"`family` must be one of {FAMILIES}, got {self.family!r}")


def build_model(script: ScriptArguments, tokenizer):
    if script.model_name_or_path:
        return AutoModelForCausalLM.from_pretrained(script.model_name_or_path)
    ids = dict(
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id
    )
    if script.family == "crsm":
        from hf_reason import CRSMConfig, CRSMForCausalLM

        return CRSMForCausalLM(
            CRSMConfig(
                vocab_size=len(tokenizer), hidden_size=script.hidden_size, num_hidden_layers=script.num_layers, **ids
            )
        )
    gpt2_kwargs = dict(
        vocab_size=len(tokenizer),
        n_positions=256,
        n_embd=script.hidden_size,
        n_layer=script.num_layers,
        n_head=max(1, script.hidden_size // 32),
        **ids,
    )
    if script.family == "meta_attention":
        from hf_reason import MetaAttentionConfig, MetaAttentionForCausalLM

        return MetaAttentionForCausalLM(MetaAttentionConfig(**gpt2_kwargs))
    from transformers import GPT2Config, GPT2LMHeadModel

    return GPT2LMHeadModel(GPT2Config(**gpt2_kwargs))


def think_format(completion: str) -> str:
    """' 4 * 2 = 8\\n#### 8' -> ' <think> 4 * 2 = 8</think> #### 8': the format the format reward asks for."""
    work, answer = completion.rsplit("####", 1)
    return f" <think>{work.rstrip()}</think> ####{answer}"


def warm_start(model, tokenizer, script: ScriptArguments, args: ReasoningGRPOConfig):
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    data = generate_arithmetic(max(64, script.num_train_problems), max_ops=script.max_ops, seed=args.seed + 1)
    sft = SFTTrainer(
        model=model,
        processing_class=tokenizer,
        train_dataset=Dataset.from_dict(
            {"prompt": data["prompt"], "completion": [think_format(c) for c in data["completion"]]}
        ),
        args=SFTConfig(
            output_dir=os.path.join(args.output_dir, "sft"),
            max_steps=script.sft_steps,
            learning_rate=3e-3,
            per_device_train_batch_size=16,
            completion_only_loss=True,
            use_cpu=args.use_cpu,
            bf16=args.bf16,
            report_to="none",
            save_strategy="no",
            seed=args.seed,
            disable_tqdm=args.disable_tqdm,
            logging_steps=max(1, script.sft_steps // 5),
        ),
    )
    sft.train()
    # a fresh model object: TRL patches `forward` of the models it trains
    sft.save_model(os.path.join(args.output_dir, "sft"))
    return type(model).from_pretrained(os.path.join(args.output_dir, "sft"))


def lora_config(script: ScriptArguments, model):
    from peft import LoraConfig

    targets = ["c_attn"] if script.family in ("gpt2", "meta_attention") else ["in_proj", "out_proj"]
    return LoraConfig(
        r=script.lora_r,
        lora_alpha=2 * script.lora_r,
        target_modules=targets,
        task_type="CAUSAL_LM",
        fan_in_fan_out=script.family != "crsm",
    )


def main() -> None:
    parser = HfArgumentParser((ScriptArguments, ReasoningGRPOConfig))
    # GRPO's batch holds num_generations completions per prompt; the defaults suit a CPU run.
    parser.set_defaults(
        use_cpu=not torch.cuda.is_available(),
        bf16=torch.cuda.is_available(),
        report_to="none",
        per_device_train_batch_size=8,
        num_generations=8,
        max_completion_length=48,
        learning_rate=5e-4,
        logging_steps=10,
        disable_dropout=True,
    )
    script, args = parser.parse_args_into_dataclasses()
    torch.manual_seed(args.seed)
    if script.model_name_or_path:
        tokenizer = AutoTokenizer.from_pretrained(script.model_name_or_path)
    else:
        # the think tags are text, not special tokens: GRPO decodes completions with skip_special_tokens=True
        # before the format reward reads them
        tokenizer = build_tokenizer(vocab_size=script.vocab_size, extra_tokens=("<think>", "</think>"))
    model = build_model(script, tokenizer)
    # `last` means the newest complete checkpoint in --output_dir; its weights replace the warm start.
    resume = resolve_resume_checkpoint(args.resume_from_checkpoint, args.output_dir, state_file=TRAINER_STATE_NAME)
    if resume:
        print(f"Resuming from {resume}")
    elif not script.model_name_or_path and script.sft_steps > 0:
        model = warm_start(model, tokenizer, script, args)
    data = generate_arithmetic(script.num_train_problems, max_ops=script.max_ops, seed=args.seed)
    reward = CombinedReward(
        [ArithmeticAnswerReward(), FormatReward()], [script.correctness_weight, script.format_weight]
    )
    trainer = ReasoningGRPOTrainer(
        model=model,
        reward_funcs=reward,
        args=args,
        processing_class=tokenizer,
        train_dataset=data.select_columns(["prompt", "answer", "num_ops"]),  # num_ops: for --difficulty_column
        peft_config=lora_config(script, model) if script.use_peft else None,
    )
    if script.cosine_curriculum:
        trainer.add_callback(
            CosineRewardCurriculum(reward, structure_indices=[1], semantic_indices=[0], end=script.curriculum_end)
        )
    trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(args.output_dir)
    if trainer.accelerator.is_main_process:
        tokenizer.save_pretrained(args.output_dir)


if __name__ == "__main__":
    main()
    end_distributed()
