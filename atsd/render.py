"""Plain-text rendering for the terminal: plan tables in local time."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from atsd.core.plan import Plan

_MODE_MARK = {"OFF": "off  ", "ECO": "eco  ", "NORMAL": "norm ", "BOOST": "BOOST"}


def plan_table(plan: Plan, tz: ZoneInfo, label: str = "") -> str:
    lines = []
    if label:
        lines.append(f"** {label} **")
    lines.append(f"Plan by {plan.planner} for {plan.device_id}, {len(plan.slots)} slots of "
                 f"{plan.grid.step_s // 60} min, times in {tz.key}")
    lines.append(f"{'time':<11} {'mode':<6} {'indoor':>6} {'out':>6} {'c/kWh':>6} {'kWh':>5}  reason")
    last_day = None
    for s in plan.slots:
        lt = s.start.astimezone(tz)
        day = lt.strftime("%a %d %b")
        if day != last_day:
            lines.append(f"-- {day} --")
            last_day = day
        est = "*" if s.price_estimated else " "
        lines.append(f"{lt:%H:%M}{est:<6} {_MODE_MARK[s.mode.value]:<6} {s.expected_indoor_c:6.1f} "
                     f"{s.outdoor_c:6.1f} {s.price_eur_per_kwh * 100:6.1f} {s.energy_kwh:5.2f}  {s.reason}")
    lines.append("")
    lines.append(f"Estimated cost {plan.estimated_cost:.2f} EUR, always-NORMAL baseline {plan.baseline_cost:.2f} EUR, "
                 f"savings {plan.estimated_savings:.2f} EUR "
                 f"({plan.estimated_savings / plan.baseline_cost * 100 if plan.baseline_cost else 0:.1f} %)")
    lines.append(f"Energy {plan.total_energy_kwh:.1f} kWh (baseline {plan.baseline_energy_kwh:.1f} kWh), "
                 f"auxiliary heater {plan.aux_kwh:.1f} kWh heat; indoor {plan.start_c:.1f} -> {plan.end_c:.1f} °C")
    lines.append(f"Highest hourly power {plan.peak_hourly_kw:.1f} kW (baseline {plan.baseline_peak_hourly_kw:.1f} kW): "
                 "what a power fee on the month's peak hour bills")
    if abs(plan.stored_heat_adjustment_eur) >= 0.005:
        lines.append(f"Savings include {-plan.stored_heat_adjustment_eur:+.2f} EUR for the heat left in the house "
                     "at the end compared with the baseline")
    c = plan.comfort
    lines.append(f"Comfort score {c.comfort_score:.0f}/100, lowest {c.min_temp_c:.1f} °C, "
                 f"{c.degree_hours_below_min:.2f} K·h below {plan.min_c:.1f} °C. {plan.note or c.recommendation}")
    for w in c.warnings:
        lines.append(f"warning: {w}")
    if any(s.price_estimated for s in plan.slots):
        lines.append("* price not yet published: estimated from recent days")
    return "\n".join(lines)
