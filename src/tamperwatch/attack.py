"""ATT&CK v19 names and tactics of the techniques that tamperwatch reports.

Source: the ATT&CK v19 Enterprise STIX data (attack-pattern and x-mitre-tactic objects).
"""

from __future__ import annotations

ATTACK_VERSION = "19"
TACTIC_REFERENCE = "https://attack.mitre.org/tactics/{}/"
TACTICS = {"TA0112": "Defense Impairment", "TA0040": "Impact"}

# Name and tactic, in the ATT&CK v19 Enterprise STIX data, of the techniques that tamperwatch's
# signals and catalog emit. v19 split Defense Evasion: TA0005 became Stealth, and the techniques
# that disable or break security controls (the former T1562 family, now T1685 and T1686, and the
# new T1687) moved to TA0112 Defense Impairment. Service Stop stays under Impact.
# NOTE: an id missing here (the catalog's T1548.006, or one added in the configuration) gets a
# technique without a tactic.
TECHNIQUES: dict[str, tuple[str, str]] = {
    "T1489": ("Service Stop", "TA0040"),
    "T1553": ("Subvert Trust Controls", "TA0112"),
    "T1553.001": ("Gatekeeper Bypass", "TA0112"),
    "T1685": ("Disable or Modify Tools", "TA0112"),
    "T1685.006": ("Clear Linux or Mac System Logs", "TA0112"),
    "T1686": ("Disable or Modify System Firewall", "TA0112"),
    "T1687": ("Exploitation for Defense Impairment", "TA0112"),
}


def technique_name(technique: str) -> str | None:
    """Return the ATT&CK name of a technique id, or None for an id not listed here."""
    known = TECHNIQUES.get(technique)
    return known[0] if known else None
