"""Publishing a model: its card, and the push to the Hugging Face Hub."""
