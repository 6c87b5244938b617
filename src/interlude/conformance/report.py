"""The run's reports: JUnit XML for CI systems and one self-contained HTML page for people.

JUnit: one ``testsuite`` per API family, one ``testcase`` per scenario (``failure`` with each finding,
``skipped`` with the reason). HTML: a summary, then each scenario with its findings (rule, message, the
schema location that failed and the definition's text for it) and, folded, every exchange with its request
and response and every notification received; the definition defects the run tolerated close the page.
No script, no external stylesheet: the file can be mailed or archived as is.
"""

from __future__ import annotations

import html
import json
import time
import xml.etree.ElementTree as ET
from itertools import groupby
from pathlib import Path
from typing import Any

from interlude.conformance.http import Exchange
from interlude.conformance.model import Finding, Outcome, ScenarioResult
from interlude.conformance.runner import Run


def _family(result: ScenarioResult) -> str:
    return result.scenario.id.split(".", 1)[0]


def _finding_text(finding: Finding) -> str:
    parts = [f"[{finding.rule}] {finding.message}"]
    if finding.exchange is not None:
        parts.append(f"exchange #{finding.exchange}")
    if finding.notification is not None:
        parts.append(f"notification #{finding.notification}")
    if finding.schema_path:
        parts.append(f"schema: {finding.schema_path}")
    if finding.definition_text:
        parts.append(f"definition: {finding.definition_text}")
    return "\n  ".join(parts)


def junit_xml(run: Run) -> str:
    """The run as JUnit XML."""
    suites = ET.Element("testsuites", name="interlude conformance", tests=str(len(run.results)),
                        failures=str(run.count(Outcome.FAILED)), skipped=str(run.count(Outcome.SKIPPED)),
                        time=f"{run.seconds:.3f}")  # fmt: skip
    ordered = sorted(run.results, key=_family)
    for family, group in groupby(ordered, key=_family):
        results = list(group)
        suite = ET.SubElement(suites, "testsuite", name=family, tests=str(len(results)),
                              failures=str(sum(r.outcome is Outcome.FAILED for r in results)),
                              skipped=str(sum(r.outcome is Outcome.SKIPPED for r in results)),
                              time=f"{sum(r.seconds for r in results):.3f}")  # fmt: skip
        for result in results:
            case = ET.SubElement(suite, "testcase", classname=f"conformance.{family}", name=result.scenario.id,
                                 time=f"{result.seconds:.3f}")  # fmt: skip
            if result.outcome is Outcome.FAILED:
                failure = ET.SubElement(case, "failure", message=result.reason[:500], type="conformance")
                failure.text = "\n".join(_finding_text(f) for f in result.findings)
            elif result.outcome is Outcome.SKIPPED:
                ET.SubElement(case, "skipped", message=result.reason[:500])
            if result.scenario.refs:
                out = ET.SubElement(case, "system-out")
                out.text = f"{result.scenario.doc}\nreferences: {', '.join(result.scenario.refs)}"
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def _pretty(body: Any, text: str = "") -> str:
    if body is None:
        return text
    return json.dumps(body, indent=2, ensure_ascii=False)


def _exchange_html(exchange: Exchange) -> str:
    e = html.escape
    request_headers = "\n".join(f"{k}: {v}" for k, v in exchange.request_headers.items())
    response_headers = "\n".join(f"{k}: {v}" for k, v in exchange.response_headers.items())
    operation = f"{exchange.definition} {exchange.template}" if exchange.definition else "no definition matched"
    notes = "".join(f"<li class=note>{e(_finding_text(Finding.of(n)))}</li>" for n in exchange.notes)
    return (
        f"<details id=x{exchange.index}><summary>#{exchange.index} {e(exchange.title)} "
        f"<span class=dim>({exchange.elapsed_ms:.0f} ms; {e(operation)})</span></summary>"
        f"{'<ul>' + notes + '</ul>' if notes else ''}"
        f"<div class=pair><div><h5>request</h5><pre>{e(exchange.method)} {e(exchange.url)}\n{e(request_headers)}"
        f"\n\n{e(_pretty(exchange.request_body))}</pre></div>"
        f"<div><h5>response</h5><pre>{exchange.status or e(str(exchange.transport_error))}\n{e(response_headers)}"
        f"\n\n{e(_pretty(exchange.response_body, exchange.response_text))}</pre></div></div></details>"
    )


def _finding_html(finding: Finding, exchanges: dict[int, Exchange]) -> str:
    e = html.escape
    where = ""
    if finding.exchange is not None and finding.exchange in exchanges:
        where = f" <a href='#x{finding.exchange}'>{e(exchanges[finding.exchange].title)}</a>"
    if finding.notification is not None:
        where += f" (notification #{finding.notification})"
    schema = f"<div><b>schema</b> <code>{e(finding.schema_path)}</code></div>" if finding.schema_path else ""
    text = f"<blockquote>{e(finding.definition_text)}</blockquote>" if finding.definition_text else ""
    return f"<li><b>{e(finding.rule)}</b>: {e(finding.message)}{where}{schema}{text}</li>"


CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:110em;color:#222}
.passed{color:#176f2c}.failed{color:#b00020}.skipped{color:#8a6d00}.dim{color:#777;font-weight:normal}
pre{background:#f6f6f6;padding:.6em;overflow:auto;max-height:30em;font-size:85%}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:1em}
section{border-top:1px solid #ddd;padding:.4em 0}
blockquote{margin:.3em 0 .3em 1em;color:#444;border-left:3px solid #ccc;padding-left:.6em;white-space:pre-wrap}
table{border-collapse:collapse}td,th{padding:.2em .8em;text-align:left}
li.note{color:#555}
"""


def html_report(run: Run) -> str:
    """The run as one self-contained HTML page."""
    e = html.escape
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(run.started))
    rows = "".join(
        f"<tr><td>{e(api.family)}</td><td>{e(api.base)}</td><td>{e(api.definition.title)}</td>"
        f"<td>{e(api.definition.name)}</td></tr>" for api in run.served.values()
    )
    failed = "".join(f"<li><a href='#{e(r.scenario.id)}'>{e(r.scenario.id)}</a>: {e(r.reason)}</li>"
                     for r in run.results if r.outcome is Outcome.FAILED)  # fmt: skip
    sections = []
    for result in run.results:
        exchanges = {x.index: x for x in result.exchanges}
        outcome = result.outcome.value
        findings = "".join(_finding_html(f, exchanges) for f in result.findings)
        refs = f"<div class=dim>references: {e(', '.join(result.scenario.refs))}</div>" if result.scenario.refs else ""
        reason = f"<p class={outcome}>{e(result.reason)}</p>" if result.reason else ""
        events = "".join(
            f"<details><summary>notification #{i} {e(n.path)}</summary><pre>{e(_pretty(n.body))}</pre></details>"
            for i, n in enumerate(result.notifications, 1)
        )
        traffic = "".join(_exchange_html(x) for x in result.exchanges)
        sections.append(
            f"<section id='{e(result.scenario.id)}'><h3 class={outcome}>{outcome.upper()} {e(result.scenario.id)} "
            f"<span class=dim>{e(result.scenario.title)} ({result.seconds:.2f} s)</span></h3>"
            f"<p>{e(result.scenario.doc)}</p>{refs}{reason}{'<ul>' + findings + '</ul>' if findings else ''}"
            f"{traffic}{events}</section>"
        )
    defects = "".join(f"<li><code>{e(d.file)}</code> {e(d.where)}: {e(d.what)}</li>" for d in run.defects)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Interlude conformance report</title>"
        f"<style>{CSS}</style></head><body><h1>Interlude conformance: {e(run.target)}</h1>"
        f"<p>{when}, {run.seconds:.1f} s. <b class=passed>{run.count(Outcome.PASSED)} passed</b>, "
        f"<b class=failed>{run.count(Outcome.FAILED)} failed</b>, "
        f"<b class=skipped>{run.count(Outcome.SKIPPED)} skipped</b>.</p>"
        f"{'<h2>Failed</h2><ul>' + failed + '</ul>' if failed else ''}"
        f"<h2>APIs served</h2><table><tr><th>family</th><th>base path</th><th>definition</th><th>file</th></tr>{rows}"
        f"</table><h2>Scenarios</h2>{''.join(sections)}"
        f"<h2>Definition defects tolerated</h2><p>Defects of MEF's files, patched by the kit and never held against "
        f"the server:</p><ul>{defects or '<li>none</li>'}</ul></body></html>\n"
    )


def write_reports(run: Run, junit: Path | None, html_path: Path | None) -> None:
    """Write whichever reports were asked for."""
    if junit is not None:
        junit.write_text(junit_xml(run), encoding="utf-8")
    if html_path is not None:
        html_path.write_text(html_report(run), encoding="utf-8")
