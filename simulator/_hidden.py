"""The hidden suitability between a job seeker and a vacancy.

Only the simulator uses this module: hires follow it (plus noise), and nothing else in LMIS may import it
-- the matching models must learn it from events alone (a test enforces the import rule).
"""

from __future__ import annotations

import math


def suitability(seeker: dict, vacancy: dict, distance_km: float) -> float:
    s = 0.0
    if seeker["occupation"] == vacancy["occupation"]:
        s += 2.0
    elif seeker["occupation"][0] == vacancy["occupation"][0]:
        s += 1.0
    s -= 0.006 * distance_km
    gap = seeker["edu_rank"] - vacancy["edu_rank"]
    s += 0.2 if gap >= 0 else 0.8 * gap
    exp_gap = seeker["experience"] - vacancy["experience"]
    s += 0.1 * min(exp_gap, 5) if exp_gap >= 0 else 0.4 * exp_gap
    if seeker["expected_wage"] and vacancy["monthly_wage"]:
        ratio = seeker["expected_wage"] / vacancy["monthly_wage"]
        s -= 2.5 * max(0.0, ratio - 1.0)
    s += 0.4 * len(seeker["skills"] & vacancy["skills"])
    s += 0.8 * len(seeker["qualifications"] & vacancy["qualifications"])
    if seeker["training"]:
        s += 0.3
    return s


def haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))
