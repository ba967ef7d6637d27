"""``avengers catalog``: summarise, refresh, show or list the OpenRouter model catalog."""

from __future__ import annotations

import argparse
import os

from langchain_avengers.catalog.base import INPUT_KINDS
from langchain_avengers.cli.args import _positive_float
from langchain_avengers.cli.output import strict_json


def add_catalog_parser(sub: argparse._SubParsersAction) -> None:
    """``avengers catalog`` and its subcommands refresh, show and list."""
    catalog = sub.add_parser(
        "catalog", help="the OpenRouter model catalog: summary, refresh, show, list"
    )
    actions = catalog.add_subparsers(dest="catalog_command", metavar="{refresh,show,list}")
    refresh = actions.add_parser("refresh", help="fetch OpenRouter's model list into the cache")
    refresh.add_argument(
        "--base-url", help="API base URL (default: $OPENROUTER_BASE_URL, else OpenRouter)"
    )
    refresh.add_argument("--timeout", type=_positive_float, default=30.0, help="seconds (30)")
    show = actions.add_parser("show", help="print one model's profile")
    show.add_argument("model", help="OpenRouter model id, e.g. openai/gpt-5")
    listing = actions.add_parser("list", help="print a table of models")
    listing.add_argument("--tools", action="store_true", help="only models with tool calling")
    listing.add_argument(
        "--structured-output", action="store_true", help="only models with structured output"
    )
    listing.add_argument(
        "--input",
        choices=INPUT_KINDS,
        nargs="+",
        action="extend",
        default=[],
        help="only models that accept these inputs",
    )
    for parser in (show, listing):
        parser.add_argument("--json", action="store_true", help="print JSON")
        parser.add_argument(
            "--catalog",
            default="auto",
            metavar="auto|bundled|live|FILE",
            help="catalog to read (default auto: live cache over the bundled snapshot)",
        )


def cmd_catalog(args: argparse.Namespace) -> None:
    """Summarise, refresh, show or list the model catalog."""
    from langchain_avengers import catalog

    if args.catalog_command is None:
        print(catalog.catalog_summary())
    elif args.catalog_command == "refresh":
        fetched = catalog.refresh_catalog(
            args.base_url,
            api_key=os.environ.get("OPENROUTER_API_KEY") or None,
            timeout=args.timeout,
        )
        print(
            f"fetched {len(fetched)} models by {fetched.origin} at {fetched.snapshot}; "
            f"wrote {catalog.catalog_cache_path()}"
        )
    elif args.catalog_command == "show":
        chosen = catalog.load_catalog(args.catalog)
        profile = chosen.lookup(args.model)
        layer = chosen.layer_of(args.model)
        if args.json:
            report = {"model": args.model, "layer": layer, "catalog": chosen.about()}
            print(strict_json({**report, "profile": profile}))
            return
        print(f"{args.model}  ({layer} entry; {chosen.describe()})")
        for key, value in profile.items():
            print(f"  {key:24s} {value}")
    else:
        chosen = catalog.load_catalog(args.catalog)
        models = chosen.select(
            tool_calling=args.tools, structured_output=args.structured_output, inputs=args.input
        )
        if args.json:
            profiles = {m: chosen[m] for m in models}
            print(strict_json({"catalog": chosen.about(), "models": profiles}))
            return
        print(chosen.table(models))
        print(f"\n{len(models)} of {chosen.describe()}; prices in USD per million tokens")
