"""Model-family adapters: the small part that differs between Qwen-VL generations.

A family says how a prompt is written for the model (raw text with inline `<img>` tags for
the paper's Qwen-VL, a chat template for the rest), which prompt keys it takes from a task
declaration, and which box format its grounding answers use. The runner is shared.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UserError
from ..types import FamilyInfo, Image, Part, Text


@dataclass(frozen=True)
class Family:
    name: str
    # Lookup order in a task's `prompts`: most specific first.
    prompt_keys: tuple[str, ...]
    # Text that stands for one image inside a chat turn, before the processor expands it.
    image_placeholder: str
    box_format: str
    # Token that stops generation besides the tokenizer's eos (chat turns end with it).
    stop_tokens: tuple[str, ...] = ()

    @property
    def info(self) -> FamilyInfo:
        return FamilyInfo(name=self.box_format, prompt_keys=self.prompt_keys)

    def chat_messages(self, parts: tuple[Part, ...], system: str | None = None) -> list[dict]:
        """HF chat-template messages for one user turn (images as content parts, in order)."""
        content: list[dict] = []
        for p in parts:
            if isinstance(p, Image):
                content.append({"type": "image"})
            elif isinstance(p, Text):
                content.append({"type": "text", "text": p.text})
        messages: list[dict] = []
        if system is not None:
            messages.append({"role": "system", "content": [{"type": "text", "text": system}]})
        messages.append({"role": "user", "content": content})
        return messages


QWEN_VL = Family(
    name="qwen-vl",
    prompt_keys=("qwen-vl",),
    image_placeholder="<img>{key}</img>",
    box_format="qwen-vl",
)
QWEN_VL_CHAT = Family(
    # The paper evaluates Qwen-VL-Chat with the same raw prompts as Qwen-VL.
    name="qwen-vl-chat",
    prompt_keys=("qwen-vl",),
    image_placeholder="<img>{key}</img>",
    box_format="qwen-vl",
    stop_tokens=("<|im_end|>", "<|im_start|>"),
)
_VISION = "<|vision_start|><|image_pad|><|vision_end|>"
QWEN2_VL = Family("qwen2-vl", ("qwen2-vl", "chat"), _VISION, "qwen2-vl", ("<|im_end|>",))
QWEN2_5_VL = Family("qwen2.5-vl", ("qwen2.5-vl", "chat"), _VISION, "qwen2.5-vl", ("<|im_end|>",))
QWEN3_VL = Family("qwen3-vl", ("qwen3-vl", "chat"), _VISION, "qwen3-vl", ("<|im_end|>",))

FAMILIES: dict[str, Family] = {
    f.name: f for f in (QWEN_VL, QWEN_VL_CHAT, QWEN2_VL, QWEN2_5_VL, QWEN3_VL)
}
# transformers `model_type` -> family
MODEL_TYPES: dict[str, Family] = {
    "qwen2_vl": QWEN2_VL,
    "qwen2_5_vl": QWEN2_5_VL,
    "qwen3_vl": QWEN3_VL,
    "qwen": QWEN_VL,  # the original checkpoint's config.json says model_type "qwen"
}


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise UserError(f"unknown model family {name!r} (known: {', '.join(FAMILIES)})") from None
