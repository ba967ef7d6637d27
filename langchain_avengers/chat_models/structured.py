"""Tool choice and structured output for a routed chat model.

Structured calls are marked with ``avengers_capabilities=("structured_output",)`` so only
models whose profile supports it are candidates. The chat model is always the first step of
the returned chain, so per-call options (``.invoke(x, alpha=0.1)``) reach it, with
``include_raw=True`` too.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.openai_tools import (
    JsonOutputKeyToolsParser,
    PydanticToolsParser,
)
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass

StructuredMethod = Literal["function_calling", "json_schema", "json_mode"]


def format_tool_choice(choice: dict | str | bool, tools: list[dict[str, Any]]) -> Any:
    """OpenAI's ``tool_choice`` for LangChain's forms (``True``, ``"any"``, a tool name...)."""
    if choice is True:
        if len(tools) != 1:
            msg = f"tool_choice=True needs exactly one tool, got {len(tools)}"
            raise ValueError(msg)
        choice = tools[0]["function"]["name"]
    if choice == "any":
        return "required"
    if isinstance(choice, str) and choice not in ("auto", "none", "required"):
        return {"type": "function", "function": {"name": choice}}
    return choice


def structured_output(
    llm: BaseChatModel,
    schema: dict[str, Any] | type,
    *,
    include_raw: bool,
    method: StructuredMethod,
    strict: bool | None,
) -> Runnable:
    """The chain behind ``with_structured_output``: the model, then a parser."""
    is_pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
    trace = {"kwargs": {"method": method, "strict": strict}, "schema": schema}
    parser: Runnable
    if method == "function_calling":
        name = convert_to_openai_tool(schema, strict=strict)["function"]["name"]
        bound = llm.bind_tools(
            [schema],
            tool_choice=name,
            strict=strict,
            parallel_tool_calls=False,
            ls_structured_output_format=trace,
            avengers_capabilities=("structured_output",),
        )
        parser = (
            PydanticToolsParser(tools=[schema], first_tool_only=True)  # type: ignore[list-item]
            if is_pydantic
            else JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)
        )
    elif method in ("json_schema", "json_mode"):
        response_format = (
            _json_schema_format(schema, strict)
            if method == "json_schema"
            else {"type": "json_object"}
        )
        bound = llm.bind(
            response_format=response_format,
            ls_structured_output_format=trace,
            avengers_capabilities=("structured_output",),
        )
        parser = (
            PydanticOutputParser(pydantic_object=schema)  # type: ignore[arg-type]
            if is_pydantic
            else JsonOutputParser()
        )
    else:
        msg = f"method: expected function_calling, json_schema or json_mode, got {method!r}"
        raise ValueError(msg)
    if not include_raw:
        return bound | parser
    parse = RunnablePassthrough.assign(
        parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
    )
    keep_error = RunnablePassthrough.assign(parsed=lambda _: None)
    # The model first: a RunnableSequence hands call arguments to its first step only.
    return (
        bound
        | RunnableMap(raw=RunnablePassthrough())
        | parse.with_fallbacks([keep_error], exception_key="parsing_error")
    )


def _json_schema_format(schema: dict[str, Any] | type, strict: bool | None) -> dict[str, Any]:
    json_schema = convert_to_json_schema(schema)
    name = json_schema.get("title", "output")
    spec: dict[str, Any] = {"name": name, "schema": json_schema}
    if strict is not None:
        spec["strict"] = strict
    return {"type": "json_schema", "json_schema": spec}
