"""The chat template: how a conversation becomes tokens, the one rendering every part of gptkit uses.

ChatML, which `transformers` and llama.cpp know: each message is `<|im_start|>ROLE\\nCONTENT<|im_end|>\\n`, and
a prompt for a reply ends with `<|im_start|>assistant\\n`. `<|im_start|>` and `<|im_end|>` are special tokens
added after a tokenizer's own ids (no retraining); a reply ends when the model writes `<|im_end|>`.
Ids are made segment by segment between special tokens, as Hugging Face tokenizers do (they split on added
tokens first), so `apply_chat_template` of an exported model gives the same ids. The loss mask is 1 on each
assistant message's content and its `<|im_end|>`, 0 elsewhere; a BPE token that straddles the header's
newline and the content counts as content. Entry points: `chat_tokenizer`, `render`, `render_prompt`,
`conversation_from` (API-style messages, checked) and `fit_conversation` (oldest turns out, system kept).
"""

from gptkit.chat.conversations import IM_END, IM_START, ROLES, Conversation, InvalidRecord, Message, check_conversation
from gptkit.errors import GptkitError
from gptkit.tokenizer import with_specials

CHAT_TOKENS = (IM_START, IM_END)

# The same template for transformers' `apply_chat_template` (Jinja), written into an export's tokenizer_config.
JINJA_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def is_chat_tokenizer(tokenizer) -> bool:
    return all(token in getattr(tokenizer, "specials", {}) for token in CHAT_TOKENS)


def chat_tokenizer(tokenizer):
    """`tokenizer` with the chat tokens (new ids after its own), checked to spell every role and the newline."""
    extended = with_specials(tokenizer, list(CHAT_TOKENS))
    for piece in [*ROLES, "\n"]:
        try:
            extended.encode(piece)
        except GptkitError as err:
            raise GptkitError(
                f"the tokenizer cannot spell the chat template's {piece!r} ({err}); prepare the base model's data "
                "with a vocabulary that has it (a char vocabulary needs the letters of system, user, assistant)"
            ) from None
    return extended


def _message_ids(tokenizer, message: Message) -> tuple[list[int], list[int]]:
    """Ids of one rendered message and its loss mask."""
    start, end = tokenizer.specials[IM_START], tokenizer.specials[IM_END]
    header = f"{message.role}\n"
    body = tokenizer.encode(header + message.content)
    learned = message.role == "assistant"
    mask = [0] * len(body)
    if learned:
        spelled, header_bytes = 0, len(header.encode("utf-8"))
        for i, token in enumerate(body):  # a token is content once it ends past the header
            spelled += len(tokenizer.decode_bytes([token]))
            mask[i] = int(spelled > header_bytes)
    newline = tokenizer.encode("\n")
    return [start, *body, end, *newline], [0, *mask, int(learned), *[0] * len(newline)]


def render(messages: Conversation, tokenizer) -> tuple[list[int], list[int]]:
    """(ids, loss mask) of a whole conversation; mask 1 on assistant content and its closing <|im_end|>."""
    ids, mask = [], []
    for message in messages:
        message_ids, message_mask = _message_ids(tokenizer, message)
        ids += message_ids
        mask += message_mask
    return ids, mask


def render_prompt(messages: Conversation, tokenizer) -> list[int]:
    """Ids of the conversation so far followed by `<|im_start|>assistant\\n`: where the model writes its reply."""
    return render(messages, tokenizer)[0] + _reply_opening(tokenizer)


def _reply_opening(tokenizer) -> list[int]:
    return [tokenizer.specials[IM_START], *tokenizer.encode("assistant\n")]


def render_text(messages: Conversation, *, add_generation_prompt: bool = False) -> str:
    """The template as text (what `JINJA_TEMPLATE` renders)."""
    text = "".join(f"{IM_START}{m.role}\n{m.content}{IM_END}\n" for m in messages)
    return text + (f"{IM_START}assistant\n" if add_generation_prompt else "")


def conversation_from(messages) -> Conversation:
    """Messages as dicts (`{"role": ..., "content": ...}`, as OpenAI's API takes them) or `Message`s, checked to
    be a conversation that awaits the assistant's reply (it ends with the user's turn)."""
    try:
        conversation = tuple(
            m if isinstance(m, Message) else Message(m.get("role"), m.get("content")) for m in messages
        )
        check_conversation(conversation, need_reply=False)
    except (AttributeError, TypeError):
        raise GptkitError("messages: give a list of {'role': ..., 'content': ...} dicts") from None
    except InvalidRecord as err:
        raise GptkitError(f"messages: {err}") from None
    if conversation[-1].role != "user":
        raise GptkitError("messages: the last message must be the user's; the model writes the assistant's reply")
    return conversation


class ConversationTooLong(GptkitError):
    """Even the last message (with the system message) leaves no room for the reply in the model's window."""


def _messages_to_drop(sizes: list[int], first: int, opening: int, budget: int) -> int:
    """How many of the oldest turns (after the first `first` messages) to drop so that messages of `sizes`
    tokens plus the reply's `opening` fit `budget`; whole exchanges go, a user turn and the reply to it."""
    total, dropped = sum(sizes) + opening, 0
    while total > budget:
        if len(sizes) - first - dropped <= 1:
            raise ConversationTooLong(
                f"messages: the last message alone (with the system message) is more than the {budget} tokens "
                "the model can read before its reply (its window less the room kept for max_new_tokens); shorten "
                "it, or ask for fewer new tokens"
            )
        total -= sizes[first + dropped] + sizes[first + dropped + 1]
        dropped += 2
    return dropped


def fit_conversation(conversation: Conversation, tokenizer, budget: int) -> tuple[Conversation, int]:
    """The conversation without its oldest turns (the system message stays) so that its prompt is at most
    `budget` tokens; returns it and how many messages were dropped. Each message is encoded once."""
    first = 1 if conversation[0].role == "system" else 0  # the first message that may be dropped
    sizes = [len(_message_ids(tokenizer, m)[0]) for m in conversation]
    dropped = _messages_to_drop(sizes, first, len(_reply_opening(tokenizer)), budget)
    return conversation[:first] + conversation[first + dropped :], dropped


def fitted_prompt(conversation: Conversation, tokenizer, budget: int) -> tuple[list[int], int]:
    """`render_prompt` of `fit_conversation`'s conversation, from one encoding of each message; and how many
    messages were dropped."""
    first = 1 if conversation[0].role == "system" else 0
    pieces = [_message_ids(tokenizer, m)[0] for m in conversation]
    opening = _reply_opening(tokenizer)
    dropped = _messages_to_drop([len(p) for p in pieces], first, len(opening), budget)
    kept = pieces[:first] + pieces[first + dropped :]
    return [token for piece in kept for token in piece] + opening, dropped
