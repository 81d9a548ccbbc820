"""Pictures of a model and its training: loss curves, attention maps, RoPE, embeddings, token boundaries,
and an HTML report that collects them. Each module draws one kind of picture; `figure.py` saves them."""
