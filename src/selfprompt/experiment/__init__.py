"""`selfprompt run`: one experiment file runs the whole study, resumable and content-addressed."""
