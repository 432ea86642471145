"""nemawashi: answers staff questions and objections about a company change."""

__version__ = "0.1.0"
