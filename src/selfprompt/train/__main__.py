"""`python -m selfprompt.train` / `accelerate launch -m selfprompt.train`: the same as `selfprompt train`."""

from selfprompt.train.cli import main

if __name__ == "__main__":
    main()
