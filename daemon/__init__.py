"""crisisd: crisis detection and escalation for social customer care.

Data flows source -> decode -> enrich -> window -> detect -> incident -> staffing -> notify;
each stage lives in its own module (see README, "Architecture").
"""

__version__ = "0.1.0"
