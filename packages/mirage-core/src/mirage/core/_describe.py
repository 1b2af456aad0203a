"""``mirage describe``: the plan as text, or as a Graphviz DOT graph."""

from __future__ import annotations

from ._plan import Plan

__all__ = ["describe_text", "to_dot"]


def describe_text(plan: Plan) -> str:
    lines = [f"name      {plan.name}", f"target    {plan.target}", f"config    {plan.config}"]
    lines.append("keys (configure time)")
    for name, value in plan.keys.items():
        doc = plan.key_docs.get(name, "")
        lines.append(f"  --{name}={value!r}" + (f"  {doc}" if doc else ""))
    if not plan.keys:
        lines.append("  (none used)")
    lines.append("runtime arguments")
    for arg in plan.runtime_args():
        default = "required" if arg.required else f"default {arg.default!r}"
        lines.append(f"  --{arg.name} {arg.type.upper()}  ({default}) {arg.doc}".rstrip())
    lines.append("  --logs LEVEL  (default 'info')")
    lines.append("devices (in connection order)")
    for device in plan.devices:
        if device.is_job:
            lines.append(f"  {device.id}: job {device.factory}")
        else:
            origin = f" [{device.dist}]" if device.dist else ""
            lines.append(f"  {device.id}: {device.module_type} = {device.impl}{origin}")
        for need, dep in device.needs.items():
            lines.append(f"      {need} <- {dep}")
        for name, value in device.params.items():
            lines.append(f"      {name} = {value!r}")
        for why in device.chosen_by:
            lines.append(f"      chosen by {why}")
    lines.append("packages")
    lines.extend(f"  {r}" for r in plan.requires)
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    return '"' + text.replace('"', '\\"') + '"'


def to_dot(plan: Plan) -> str:
    lines = [
        f"digraph {_quote(plan.name)} {{",
        "  rankdir=BT;",
        "  node [shape=box, fontname=monospace];",
        f"  label={_quote(f'{plan.name} on {plan.target}')};",
    ]
    for device in plan.devices:
        if device.is_job:
            label = f"{device.id}\\n{device.factory}"
            lines.append(f"  {_quote(device.id)} [label={_quote(label)}, shape=doubleoctagon];")
            continue
        label = f"{device.id}\\n{device.module_type}: {device.impl}"
        if device.chosen_by:
            label += "\\n(" + "; ".join(device.chosen_by) + ")"
        lines.append(f"  {_quote(device.id)} [label={_quote(label)}];")
    for device in plan.devices:
        for need, dep in device.needs.items():
            lines.append(f"  {_quote(dep)} -> {_quote(device.id)} [label={_quote(need)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"
