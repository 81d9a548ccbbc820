"""Training: the loop (`loop.train`), the optimizer and LR schedule (`optim`), and logging (`metrics`)."""
