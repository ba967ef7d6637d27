"""OpenRouter's model catalog: prices, context limits and capabilities of every model.

The bundled snapshot ships with the package; ``avengers catalog refresh`` caches a live copy.
"""

from langchain_avengers.catalog.base import (
    CACHE_DIR_ENV,
    INPUT_KINDS,
    Catalog,
    CatalogError,
    CatalogWarning,
    OpenRouterProfile,
    bundled_catalog,
    cached_catalog,
    catalog_cache_path,
    catalog_summary,
    list_price_cost,
    load_catalog,
    profile_from_openrouter,
    refresh_catalog,
)

__all__ = [
    "CACHE_DIR_ENV",
    "INPUT_KINDS",
    "Catalog",
    "CatalogError",
    "CatalogWarning",
    "OpenRouterProfile",
    "bundled_catalog",
    "cached_catalog",
    "catalog_cache_path",
    "catalog_summary",
    "list_price_cost",
    "load_catalog",
    "profile_from_openrouter",
    "refresh_catalog",
]
