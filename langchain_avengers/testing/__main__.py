"""``python -m langchain_avengers.testing --port 8765``: the offline OpenRouter, foreground."""

from langchain_avengers.testing._server import main

if __name__ == "__main__":
    main()
