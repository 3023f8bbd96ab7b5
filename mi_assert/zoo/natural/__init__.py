"""``kjv-gpt2-4l``: a GPT-2-style model trained on the King James Bible (real English prose).

:mod:`.corpus` reads the text from Debian's ``bible-kjv-text`` package and splits it into
training and held-out chapters; :mod:`.train` trains the BPE tokenizer and the model and writes
the checkpoints and their manifest.
"""
