"""Training: self-prompt tuning and its baseline (`selfprompt train`, `selfprompt merge`).

See `selfprompt.train.recipe` for the recipe and its launch commands.
"""
