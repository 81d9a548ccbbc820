"""Chat: conversations (`conversations.py`: files in OpenAI, ShareGPT and Alpaca formats, checked) and the chat
template (`template.py`: ChatML ids and the loss mask), shared by `prepare --chat`, the `sft` objective,
`gptkit chat`, `gptkit serve` and the Hugging Face export. Nothing here trains or generates.
"""
