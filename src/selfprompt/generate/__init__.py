"""Generation: the client layer (backends) every stage uses, and the prompting conditions."""
