"""Flow diagrams drawn on the server, as SVG markup (no script): pure functions from what
the read services answer (a donor's trace, a campaign's flows) to a Sankey-style picture.

Layout: sources in a column on the left, targets in a column on the right, each edge a
band whose thickness is proportional to its amount (at least one pixel, so that a tiny
allocation stays visible: the only place the picture is not exactly to scale). A node is
as tall as the bands that meet it; each sits in a slot tall enough for its two-line label
(the name, then the amount), and the slots are spaced so labels never overlap. Columns
are capped: past `MAX_TARGETS` disbursements (or `MAX_SOURCES` donation groups) the
smallest are merged into one "other" node, so the picture stays readable however large
the campaign; the page lists every record in text beside it.

Each diagram comes in two layouts (`WIDE`, `NARROW`); the page carries both and its style
sheet shows one. A phone's screen (390 px, 356 px inside the page's margins) cannot hold the
wide one's 264-pixel band run and 188-pixel labels at a readable size (scaled to fit, its
13-pixel text would be 8 pixels), so the narrow one has shorter bands and labels, which
keeps it 356 pixels wide; both scale with their viewBox to the width they are given.

Everything that comes from the chain is text anyone could have written: it is stripped
of the characters XML cannot carry and escaped, and long labels are shortened (the full
text is in the node's <title>, which screen readers and hover tooltips show). Colours
are never the only carrier of meaning: every node is labelled in words.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from html import escape

from ledger_api.campaigns.schemas import Flows
from ledger_api.core.formats import xml_text
from ledger_api.donations.schemas import DonationTrace

FLOW_HEIGHT = 320  # pixels shared by all bands in proportion to their amounts
GAP = 10
TOP = 8
MAX_TARGETS = 12
MAX_SOURCES = 12
COLOURS = {  # bars: at least 3:1 against white (WCAG 1.4.11); bands are these, translucent
    "donation": "#1d4f91",
    "disbursement": "#1f6b45",
    "other": "#4b5563",
    "refunded": "#9a3412",
    "unspent": "#6b4f00",
}


@dataclass(frozen=True)
class Layout:
    """The geometry of one layout, in pixels (1 pixel = 1 CSS pixel at the natural size)."""

    name: str  # "wide" or "narrow": the svg's class flow-{name}, which the style sheet shows
    bar: int  # the width of a node's bar
    span: int  # between the two columns of bars, where the bands run
    label_width: int  # for the right column's labels
    trace_source: int  # for the left column's label on a donor's trace ("This donation")
    campaign_source: int  # for the left column's labels on a campaign ("2026-01 · WeChat Pay")
    font: int  # text size
    slot: int  # the smallest slot: two lines of text
    pad: int  # between a bar and its label
    fill: int = 0  # the width the right column's labels may grow to fill (0: none)


WIDE = Layout(
    "wide", bar=14, span=264, label_width=188, trace_source=120, campaign_source=188, font=13, slot=38, pad=8
)
# 140 + 6 + 10 + 46 + 10 + 6 + 138 = 356 pixels: what a 390-pixel phone has inside the
# page's margins; on a 360-pixel one (326) its 12-pixel text is drawn at 11.
NARROW = Layout(
    "narrow",
    bar=10,
    span=46,
    label_width=138,
    trace_source=96,
    campaign_source=140,
    font=12,
    slot=34,
    pad=6,
    fill=356,
)
LABEL_WIDTH = WIDE.label_width


@dataclass(frozen=True)
class Node:
    id: str
    label: str
    amount: int
    kind: str  # a key of COLOURS


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    amount: int


@dataclass(frozen=True)
class Words:
    """What the diagrams say, in the reader's language, and how amounts are written."""

    money: Callable[[int], str]
    title: str
    description: str
    this_donation: str = "This donation"
    other_disbursements: str = "Other disbursements"
    other_donations: str = "Other donations"
    refunded: str = "Refunded"
    unspent: str = "Not yet spent"
    channel: Callable[[str], str] = str


def _text(value: str) -> str:
    return escape(xml_text(value), quote=True)


def _width(text: str, font: int = 13) -> float:
    """Rough rendered width: CJK and other wide characters take a full em, others 0.57 em."""
    return sum(1.0 if ord(c) >= 0x2E80 else 0.57 for c in text) * font


def shorten(text: str, room: float = LABEL_WIDTH, font: int = 13) -> str:
    text = " ".join(xml_text(text).split())
    if _width(text, font) <= room:
        return text
    out = ""
    for char in text:
        if _width(out + char + "…", font) > room:
            break
        out += char
    return out.rstrip() + "…"


def merge_smallest(
    nodes: list[Node], edges: list[Edge], keep: int, into: Node, side: str
) -> tuple[list[Node], list[Edge]]:
    """At most `keep` of `nodes` (one side's, in their order): the largest `keep - 1` and
    `into`, which takes the amounts and edges of the rest (on top of its own, if it is
    already one of `nodes`)."""
    if len(nodes) <= keep:
        return nodes, edges
    ranked = sorted((n for n in nodes if n.id != into.id), key=lambda n: -n.amount)
    kept = {n.id for n in ranked[: keep - 1]}
    merged = sum(n.amount for n in nodes if n.id not in kept)
    shown = [n for n in nodes if n.id in kept]
    shown.append(Node(into.id, into.label, merged, into.kind))
    ids = {n.id for n in nodes}
    amounts: dict[tuple[str, str], int] = defaultdict(int)
    for e in edges:
        source, target = e.source, e.target
        if side == "source" and source in ids and source not in kept:
            source = into.id
        if side == "target" and target in ids and target not in kept:
            target = into.id
        amounts[(source, target)] += e.amount
    return shown, [Edge(s, t, a) for (s, t), a in amounts.items()]


def sankey(
    sources: list[Node],
    targets: list[Node],
    edges: list[Edge],
    words: Words,
    prefix: str,
    left_room: float = LABEL_WIDTH,
    layout: Layout = WIDE,
) -> str:
    """The diagram as an <svg> element (with a <title> and a <desc>); `left_room` is the
    width of the sources' labels (names are shortened to fit; amounts never are: the
    columns widen for them)."""
    bar, slot_size, font = layout.bar, layout.slot, layout.font

    def amounts_width(nodes: list[Node]) -> float:
        return max((_width(words.money(n.amount), font) * 1.15 + 4 for n in nodes), default=0.0)  # bold

    left_room = max(left_room, amounts_width(sources))
    fixed = 2 * (layout.pad + bar) + layout.span
    right_room = max(layout.label_width, amounts_width(targets), layout.fill - round(left_room) - fixed)
    source_x = round(left_room) + layout.pad
    target_x = source_x + bar + layout.span
    width = round(target_x + bar + layout.pad + right_room)
    edges = [e for e in edges if e.amount > 0]
    total = max(sum(n.amount for n in sources), sum(n.amount for n in targets), 1)
    scale = FLOW_HEIGHT / total
    thickness = [max(1.0, e.amount * scale) for e in edges]
    order = {n.id: i for i, n in enumerate(sources)} | {n.id: i for i, n in enumerate(targets)}
    outgoing: dict[str, list[int]] = defaultdict(list)  # node -> positions in `edges`
    incoming: dict[str, list[int]] = defaultdict(list)
    for i, e in enumerate(edges):
        outgoing[e.source].append(i)
        incoming[e.target].append(i)

    def heights(nodes: list[Node], bands: dict[str, list[int]]) -> list[float]:
        return [sum(thickness[i] for i in bands[n.id]) or max(2.0, n.amount * scale) for n in nodes]

    def place(nodes: list[Node], sizes: list[float]) -> tuple[list[float], list[float], float]:
        """Top of each node and centre of each slot; the column's height."""
        tops, centres, y = [], [], 0.0
        for size in sizes:
            slot = max(size, slot_size)
            tops.append(y + (slot - size) / 2)
            centres.append(y + slot / 2)
            y += slot + GAP
        return tops, centres, y - GAP if nodes else 0.0

    left_sizes, right_sizes = heights(sources, outgoing), heights(targets, incoming)
    left_tops, left_centres, left_height = place(sources, left_sizes)
    right_tops, right_centres, right_height = place(targets, right_sizes)
    height = max(left_height, right_height)
    left_shift = TOP + (height - left_height) / 2
    right_shift = TOP + (height - right_height) / 2
    svg_height = round(height + 2 * TOP)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="flow flow-{layout.name}" data-testid="flow" '
        f'data-layout="{layout.name}" role="img" '
        f'viewBox="0 0 {width} {svg_height}" width="{width}" height="{svg_height}" '
        f'aria-labelledby="{prefix}-title {prefix}-desc">',
        f'<title id="{prefix}-title">{_text(words.title)}</title>',
        f'<desc id="{prefix}-desc">{_text(words.description)}</desc>',
    ]
    # Bands first, so that the bars are drawn over their ends.
    source_offset = {n.id: left_tops[i] + left_shift for i, n in enumerate(sources)}
    target_offset = {n.id: right_tops[i] + right_shift for i, n in enumerate(targets)}
    label_of = {n.id: n.label for n in [*sources, *targets]}
    kind_of = {n.id: n.kind for n in targets}
    x0, x1 = source_x + bar, target_x
    middle = (x0 + x1) / 2
    parts.append('<g class="bands">')
    for node in sources:
        for i in sorted(outgoing[node.id], key=lambda i: order.get(edges[i].target, 0)):
            e, size = edges[i], thickness[i]
            y0 = source_offset[e.source]
            source_offset[e.source] += size
            y1 = target_offset[e.target]
            target_offset[e.target] += size
            path = (
                f"M{x0},{y0:.2f} C{middle:.1f},{y0:.2f} {middle:.1f},{y1:.2f} {x1},{y1:.2f} "
                f"L{x1},{y1 + size:.2f} C{middle:.1f},{y1 + size:.2f} {middle:.1f},{y0 + size:.2f} "
                f"{x0},{y0 + size:.2f} Z"
            )
            tip = f"{label_of[e.source]} → {label_of[e.target]}: {words.money(e.amount)}"
            colour = COLOURS.get(kind_of.get(e.target, "disbursement"), COLOURS["other"])
            parts.append(
                f'<path d="{path}" fill="{colour}" fill-opacity="0.28"><title>{_text(tip)}</title></path>'
            )
    parts.append("</g>")

    def column(
        nodes: list[Node], tops: list[float], centres: list[float], sizes: list[float], left: bool
    ) -> None:
        shift = left_shift if left else right_shift
        bar_x = source_x if left else target_x
        text_x = source_x - layout.pad if left else target_x + bar + layout.pad
        room = left_room if left else right_room
        anchor = "end" if left else "start"
        for node, top, centre, size in zip(nodes, tops, centres, sizes, strict=True):
            full = f"{node.label}: {words.money(node.amount)}"
            parts.append(f'<g class="node node-{node.kind}"><title>{_text(full)}</title>')
            parts.append(
                f'<rect x="{bar_x}" y="{top + shift:.2f}" width="{bar}" height="{size:.2f}" '
                f'fill="{COLOURS.get(node.kind, COLOURS["other"])}"/>'
            )
            parts.append(
                f'<text x="{text_x}" y="{centre + shift - 3:.2f}" text-anchor="{anchor}" '
                f'font-size="{font}" fill="#1a1a1a">{_text(shorten(node.label, room, font))}</text>'
            )
            amount = _text(words.money(node.amount))
            parts.append(
                f'<text x="{text_x}" y="{centre + shift + font:.2f}" text-anchor="{anchor}" '
                f'font-size="{font}" font-weight="bold" fill="#1a1a1a">{amount}</text>'
            )
            parts.append("</g>")

    column(sources, left_tops, left_centres, left_sizes, True)
    column(targets, right_tops, right_centres, right_sizes, False)
    parts.append("</svg>")
    return "".join(parts)


def trace_diagram(trace: DonationTrace, words: Words, layout: Layout = WIDE) -> str:
    """One donation (the trace of `ledger_api.donations.trace.trace`) flowing into the
    disbursements it paid for, what was refunded and what is not spent yet."""
    per_disbursement: dict[str, int] = defaultdict(int)
    labels: dict[str, str] = {}
    for allocation in trace.allocations:
        disbursement = allocation.disbursement
        per_disbursement[disbursement.id] += allocation.amount
        labels[disbursement.id] = disbursement.purpose or disbursement.recipient or disbursement.id
    source = Node("donation", words.this_donation, trace.amount, "donation")
    targets = [Node(d, labels[d], amount, "disbursement") for d, amount in per_disbursement.items()]
    edges = [Edge("donation", t.id, t.amount) for t in targets]
    other = Node("other", words.other_disbursements, 0, "other")
    targets, edges = merge_smallest(targets, edges, MAX_TARGETS, other, "target")
    for kind, label, amount in (
        ("refunded", words.refunded, trace.refunded),
        ("unspent", words.unspent, trace.remaining),
    ):
        targets.append(Node(kind, label, amount, kind))
        edges.append(Edge("donation", kind, amount))
    prefix = f"trace-flow-{layout.name}"
    return sankey([source], targets, edges, words, prefix, layout.trace_source, layout)


def campaign_diagram(flows: Flows, words: Words, layout: Layout = WIDE) -> str:
    """A campaign's flows (`ledger_api.campaigns.reads.flows`): donations grouped by month
    and channel, into its largest disbursements, "other", refunded and not yet spent."""

    def source_label(label: str) -> str:
        month, _, channel = label.partition(" · ")
        return f"{month} · {words.channel(channel)}" if channel else label

    sources = [Node(s.id, source_label(s.label), s.amount, "donation") for s in flows.sources]
    names = {"other": words.other_disbursements, "refunded": words.refunded, "unspent": words.unspent}
    targets = []
    for t in flows.targets:
        kind = t.id if t.id in names else "disbursement"
        label = names.get(t.id) or t.label or t.recipient or t.id
        targets.append(Node(t.id, label, t.amount, kind))
    edges = [Edge(e.source, e.to, e.amount) for e in flows.edges]
    other_donations = Node("donations:other", words.other_donations, 0, "donation")
    sources, edges = merge_smallest(sources, edges, MAX_SOURCES, other_donations, "source")
    paid = [t for t in targets if t.kind in ("disbursement", "other")]
    sinks = [t for t in targets if t.kind not in ("disbursement", "other")]
    other = Node("other", words.other_disbursements, 0, "other")
    paid, edges = merge_smallest(paid, edges, MAX_TARGETS, other, "target")
    prefix = f"campaign-flow-{layout.name}"
    return sankey(sources, paid + sinks, edges, words, prefix, layout.campaign_source, layout)
