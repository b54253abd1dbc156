"""Command-line entry points (cocoer-train, -eval, -prepare, -infer, -params).

Importing the package reads ``./.env`` (if any) into the environment, without
overriding variables that are already set.
"""

from cocoer.utils.env import load_dotenv

load_dotenv()
