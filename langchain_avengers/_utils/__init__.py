"""Small helpers every layer may use: atomic files, warning stack levels, progress bars, USD."""
