"""The benchmark's one table (text for the terminal and docs/performance.md) from its JSON
document."""

from __future__ import annotations

from typing import Any


def _f(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value >= 100:
            return f"{value:.0f}"
        if value >= 10:
            return f"{value:.1f}"
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table (also readable as plain text)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
            *(line(r) for r in rows)]


def _pacing(plan: dict[str, Any]) -> str:
    p = plan["pacing"]
    return (f"a prompt plays {p['prompt']} s, a digit read {p['digit']} s, the caller presses "
            f"{p['key']} s after being asked, silence answers after {p['silence']} s; one call "
            f"per caller, calls arriving over {plan['ramp']} s")


def render(report: dict[str, Any]) -> str:
    out: list[str] = []
    m = report["machine"]
    out.append(f"Machine: {m['nproc']} CPU ({m['cpu']}), {m['mem_mib']} MiB, Linux "
               f"{m['kernel']}, Python {m['python']}; run {report['started']}, "
               f"{report.get('elapsed_s', '?')} s")
    cmds = report.get("commands_per_call", {})
    out.append(f"Calls: {report['mix']}; AGI commands per call: "
               + ", ".join(f"{k} {v}" for k, v in cmds.items())
               + ". fast: no pacing, every worker calls again at once; paced: "
               + _pacing(report["plan"]) + ".")
    out.append("")
    header = ["server", "mode", "N", "calls", "ok", "failed", "flows/s", "step p50 ms",
              "p95", "p99", "max", "setup p50 ms", "CPU ms/call", "KiB/call", "RSS MiB",
              "gen CPU %"]
    rows = []
    for r in report["runs"]:
        s = r["step_ms"]
        rows.append([r["target"], r["mode"], str(r["n"]), str(r["calls"]), str(r["completed"]),
                     str(r["failed"]), _f(r["flows_per_s"]), _f(s["p50"]), _f(s["p95"]),
                     _f(s["p99"]), _f(s["max"]), _f(r["setup_ms"]["p50"]),
                     _f(r["server_cpu_ms_per_call"]), _f(r["rss_kib_per_call"]),
                     _f(r.get("rss_peak_mib")), _f(r["generator_cpu_pct"])])
    out += _table(header, rows)
    if report.get("ratios"):
        out.append("")
        header = ["ratio", "mode", "N", "step p50", "step p99", "setup p50", "CPU/call",
                  "flows/s", "KiB/call"]
        rows = [[q["ratio"], q["mode"], str(q["n"]), _f(q["step_p50"]), _f(q["step_p99"]),
                 _f(q["setup_p50"]), _f(q["cpu_per_call"]), _f(q["flows_per_s"]),
                 _f(q["rss_per_call"])] for q in report["ratios"]]
        out += _table(header, rows)
    b = report.get("breakdown")
    if b:
        out.append("")
        cpu, wall = b["cpu_ms_per_call"], b["wall_ms_per_call"]
        out.append(f"Where a call's server time goes ({b['calls']} calls one at a time, "
                   f"{b['mix']}; ms per call):")
        header = ["", "total", "AGI I/O", "flow logic", "database", "hashing", "queue"]
        out += _table(header, [
            ["CPU", _f(cpu["total"]), _f(cpu["agi_io"]), _f(cpu["flow_logic"]),
             _f(cpu["database"]), _f(cpu["hashing"]), "-"],
            ["wall", _f(wall["total"]), _f(wall["agi_io"]), _f(wall["flow_logic"]),
             _f(wall["database"]), _f(wall["hashing"]), _f(wall["registry_queue"])],
        ])
        out.append(f"{b['hashes']} argon2 hashes ran on threads {', '.join(b['hash_threads'])}.")
        t = b.get("transfer")
        if t:
            c = t["cpu_ms_per_transfer"]
            out.append(f"A direct transfer ({t['ok']}/{t['calls']} ok, one at a time): "
                       f"{_f(t['verifications_per_transfer'])} argon2 verifications (the PIN and "
                       f"the code, once each); CPU ms per transfer: total {_f(c['total'])}, "
                       f"database {_f(c['database'])}, hashing {_f(c['hashing'])}.")
        loop = b.get("event_loop", {})
        if loop:
            p = loop[0]["pacing"]
            out.append("Event-loop lag (a 5 ms ticker on the server's loop) while callers sign "
                       f"in (brisk callers: {p['prompt']} s prompts, {p['key']} s per key):")
            header = ["registry runs", "N", "ok/calls", "hashes", "lag p50 ms", "lag p99",
                      "lag max", "step p50 ms", "step p99", "hash threads"]
            rows = []
            for e in loop:
                lag, step = e["loop_lag_ms"], e["step_ms"]
                rows.append([f"thread pool, {e['workers']} threads" if e["registry"] == "pool"
                             else "on the loop (counterfactual)", str(e["n"]),
                             f"{e['completed']}/{e['calls']}", str(e["hashes"]), _f(lag["p50"]),
                             _f(lag["p99"]), _f(lag["max"]), _f(step["p50"]), _f(step["p99"]),
                             ",".join(e["hash_threads"]) or "-"])
            out += _table(header, rows)
    e2e = report.get("e2e")
    if e2e:
        out.append("")
        if e2e.get("status", "").startswith("not run"):
            out.append(f"End to end on Asterisk: {e2e['status']}")
        else:
            d = e2e["key_to_prompt_ms"]
            out.append(
                f"End to end on Asterisk {e2e.get('asterisk', '')}: {e2e['completed']}/"
                f"{e2e['calls']} calls ok at {e2e['concurrency']} at once; last key (DTMFEnd) "
                f"to next prompt (AGIExecStart): p50 {_f(d['p50'])} ms, p99 {_f(d['p99'])} ms, "
                f"max {_f(d['max'])} ms over {d['samples']} samples"
                + (f" ({e2e['note']})" if e2e.get("note") else ""))
    for key in ("postgresql", "classic"):
        value = report.get(key, "")
        if isinstance(value, str) and value.startswith("not run"):
            out.append(f"{'PostgreSQL' if key == 'postgresql' else 'Classic AGI'}: {value}")
    notes = [n for n in report.get("notes", []) if not n.startswith(("not run", "end to end"))]
    if notes:
        out.append("")
        out += [f"note: {n}" for n in notes]
    return "\n".join(out)


def render_sizing(report: dict[str, Any]) -> str:
    """The sizing run as Markdown: the machine, the callers carried, the overload runs."""
    m, plan = report["machine"], report["plan"]
    out = [f"Machine: {m['nproc']} CPU ({m['cpu']}), {m['mem_mib']} MiB, Linux {m['kernel']}, "
           f"Python {m['python']}; run {report['started']}, {report.get('elapsed_s', '?')} s.",
           f"Ramp: calls arriving evenly, {plan['rate_from']:g} → {plan['rate_to']:g} calls/s "
           f"over {plan['ramp_s']:g} s, windows of {plan['window_s']:g} s; limit: p99 of "
           f"non-hashing steps ≤ {report['limit_ms']:g} ms. Prompts as long as the built audio "
           f"({report.get('prompts', {}).get('files', 0)} files), 1-2.5 s to think before a "
           "menu choice, 0.3-0.8 s between digits, silences waiting their timeout.", ""]
    header = ["server", "procs", "callers carried", "≈ calls/s", "step p50 ms", "step p99 ms",
              "sign-in/code p99 ms", "setup p99 ms", "calls ok", "failed",
              "call s: inquiry / sign-in / transfer", "server CPU %", "gen CPU %"]
    rows = []
    for c in report["configs"]:
        r, best = c["ramp"], c.get("carried")
        if best is None:
            carried = ["none", "-", "-", "-", "-", "-"]
        else:
            sustained = (best["in_progress"] / r["call_s_mean"]) if r["call_s_mean"] else None
            carried = [("≥ " if best["capped"] else "") + _f(float(best["in_progress"])),
                       _f(sustained), _f(best["step_p50_ms"]), _f(best["step_p99_ms"]),
                       _f(best["hashing_p99_ms"]), _f(best["setup_p99_ms"])]
        kinds = r.get("call_s_by_kind", {})
        lengths = " / ".join(_f(kinds.get(k)) for k in ("inquiry", "my_devices", "transfer"))
        rows.append([c["server"], str(c["processes"]), *carried, str(r["completed"]),
                     str(r["failed"]), lengths, _f(r["server_cpu_pct"]),
                     _f(r["generator_cpu_pct"])])
    out += _table(header, rows)
    if report["configs"]:
        out += ["", "The ramp window by window: calls in progress (mean) / p99 of non-hashing "
                "steps in ms:", ""]
        first = report["configs"][0]["windows"]
        header = ["server", "procs", *(f"{w['from_s']:g}-{w['to_s']:g} s" for w in first)]
        rows = [[c["server"], str(c["processes"]),
                 *(f"{w['in_progress']:.0f} / {_f(w['step_p99_ms'])}" for w in c["windows"])]
                for c in report["configs"] if len(c["windows"]) == len(first)]
        out += _table(header, rows)
    loaded = [c for c in report["configs"] if c.get("overload")]
    if loaded:
        o0 = loaded[0]["overload"]
        out += ["", "Overload: twice the calls/s that keep the callers carried on the line, "
                "`--max-calls` at the callers carried; per second over the last "
                f"{o0['steady_s']:g} s (the server full):", ""]
        header = ["server", "procs", "calls/s offered", "--max-calls", "placed", "busy",
                  "failed", "admitted/s", "completed/s", "busy/s", "step p99 ms",
                  "sign-in/code p99 ms", "server CPU %", "gen CPU %"]
        rows = []
        for c in loaded:
            o = c["overload"]
            rows.append([c["server"], str(c["processes"]), _f(o["rate"]), str(o["max_calls"]),
                         str(o["placed"]), str(o["busy"]), str(o["failed"]),
                         _f(o["admitted_per_s"]), _f(o["completed_per_s"]), _f(o["busy_per_s"]),
                         _f(o["step_p99_ms"]), _f(o["hashing_p99_ms"]),
                         _f(o["server_cpu_pct"]), _f(o["generator_cpu_pct"])])
        out += _table(header, rows)
    for note in report.get("notes", []):
        out.append(f"\nNote: {note}")
    return "\n".join(out)
