"""Structured output through the router, two ways, with the routing decision kept.

``with_structured_output(Schema)`` forces a tool call (``method="function_calling"``, the
default); ``method="json_schema"`` asks for OpenAI's ``response_format`` instead. Either way only
models whose profile says ``structured_output`` are candidates. ``include_raw=True`` returns
``{"raw": AIMessage, "parsed": Schema, "parsing_error": ...}``, and the raw message carries the
chosen model and its cost.

    OPENROUTER_API_KEY=sk-or-... python examples/structured_output.py   # live, OpenRouter
    python examples/structured_output.py --offline                      # local test server
"""

from __future__ import annotations

from _offline import chat_model, parse_args
from pydantic import BaseModel, Field

QUESTION = "Tell me about Lisbon, a city of 545000 people in Portugal."


class City(BaseModel):
    """Facts about a city."""

    name: str = Field(description="the city's name")
    country: str = Field(description="the country it is in")
    population: int = Field(description="number of inhabitants")


def main() -> None:
    args = parse_args(__doc__)
    # The budget is set on the model: with_structured_output returns a chain, and an alpha
    # given to that chain's invoke() (or bound before it) would not reach the model.
    with chat_model(args.offline, alpha=0.7) as llm:
        for method in ("function_calling", "json_schema"):
            structured = llm.with_structured_output(City, method=method, include_raw=True)
            out = structured.invoke(QUESTION)
            raw, routing = out["raw"], out["raw"].response_metadata["avengers"]
            print(f"method={method}")
            print(f"  parsed: {out['parsed']!r} (parsing error: {out['parsing_error']})")
            print(f"  served by {raw.response_metadata['model_name']} at alpha={routing['alpha']}")
            print(f"  needs {routing['required_capabilities']}, excluded {routing['excluded']}")
            print(
                f"  cost ${routing['actual_cost']:.6f} ({routing['cost_source']}), "
                f"tokens {raw.usage_metadata['total_tokens']}"
            )
            ranking = ", ".join(f"{c['model']} {c['score']:.2f}" for c in routing["candidates"])
            print(f"  router scores: {ranking}")


if __name__ == "__main__":
    main()
