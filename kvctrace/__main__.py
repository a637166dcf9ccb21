"""`python -m kvctrace` runs the command line."""
from .cli import app

app(prog_name="kvctrace")
