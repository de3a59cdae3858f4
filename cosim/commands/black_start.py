"""``v2g-cosim black-start``: energise an island with a grid-forming V2G fleet."""

from __future__ import annotations

import argparse
from pathlib import Path

from cosim.clitools import (
    add_json_flag,
    check_output_dir,
    check_referenced_files,
    check_text_file,
    emit_json,
    format_table,
    print_violations,
)

NAME = "black-start"
HELP = "black start of an islanded feeder section by a grid-forming fleet (pickup sequence)"

_KEYS = (
    "feasible",
    "restored_load_mw",
    "t_restore_s",
    "f_min_hz",
    "v_min_pu",
    "island_vm_min_pu",
    "island_vm_max_pu",
    "min_soc_frac",
    "hold_time_h",
    "steps",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scenario", type=Path, required=True, help="scenario TOML with a [black_start] section"
    )
    parser.add_argument("--out", type=Path, default=None, help="write report.html and data here")
    add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    from studies.black_start import run_black_start_study

    text = check_text_file(args.scenario, what="scenario")
    check_referenced_files(text, base_dir=Path(args.scenario).parent, what=str(args.scenario))
    check_output_dir(args.out)
    result = run_black_start_study(args.scenario, out_dir=args.out)
    if args.json:
        emit_json({**{k: result[k] for k in _KEYS}, **result})
        return 0
    print_violations(result.get("violations", []), result.get("limits_not_checked", []))
    rows = [
        [
            s["name"],
            s["t_s"],
            s["p_mw"],
            s["p_peak_mw"],
            "yes" if s["accepted"] else "no",
            s["reason"] or "",
            s["f_min_hz"],
            s["v_min_pu"],
            s["vm_min_bus"],
        ]
        for s in result["steps"]
    ]
    print(
        format_table(
            rows,
            [
                "block",
                "t_s",
                "p_mw",
                "p_peak_mw",
                "accepted",
                "reason",
                "f_min_hz",
                "v_min_pu",
                "at_bus",
            ],
        )
    )
    hold = result["hold_time_h"]
    print(
        f"feasible: {result['feasible']}; restored {result['restored_load_mw']:.3f} MW of "
        f"{result['planned_load_mw']:.3f} MW; t_restore {result['t_restore_s']} s; "
        f"f_min {result['f_min_hz']:.3f} Hz; v_min {result['v_min_pu']:.4f} pu; "
        f"min SoC {result['min_soc_frac']:.3f}; hold "
        + ("n/a" if hold is None else f"{hold:.2f} h")
    )
    print(island_voltage_line(result))
    if args.out is not None:
        print(f"report: {args.out / 'report.html'}")
    return 0


def island_voltage_line(result: dict) -> str:
    """One line: the island's voltage range and where it came closest to its band."""
    b = result["island_voltage_binding"]
    after = f"after pickup '{b['step']}'" if b["step"] else "before the first pickup"
    return (
        f"island voltage (islanded power flow): {result['island_vm_min_pu']:.4f}-"
        f"{result['island_vm_max_pu']:.4f} pu; binding: {b['vm_pu']:.4f} pu at bus {b['bus']} "
        f"({b['side']} limit {b['limit_pu']:g} pu, margin {b['margin_pu']:.4f} pu) {after} "
        f"at t = {b['t_s']:.1f} s"
    )
