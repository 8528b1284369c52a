// The lineage graph on the page: lineage.js's layout as boxes that are ordinary links (routed by
// app.js, reachable by Tab, readable by a screen reader as a list) over an SVG of the edges.
import { h } from "./dom.js";
import { BOX, layoutLineage, lineageGraph } from "./lineage.js";
import { navLink } from "./widgets.js";

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attributes) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
}

/** The lineage of `artifact` (ARTIFACT's answer) in a scrollable box. */
export function lineageView(artifact, here) {
  const layout = layoutLineage(lineageGraph(artifact, here));
  const lines = svg("svg", { class: "lineage-edges", width: layout.width, height: layout.height, "aria-hidden": "true" });
  const marker = svg("marker", { id: "lineage-arrow", viewBox: "0 0 8 8", refX: 8, refY: 4, markerWidth: 8, markerHeight: 8, orient: "auto" });
  marker.append(svg("path", { d: "M0 0 L8 4 L0 8 z" }));
  const defs = svg("defs", {});
  defs.append(marker);
  lines.append(defs);
  for (const path of layout.paths) lines.append(svg("path", { d: path.d, "marker-end": "url(#lineage-arrow)", "data-from": path.from, "data-to": path.to }));
  const boxes = layout.nodes.map((node) => {
    const inner = [h("span", { class: "lineage-label" }, node.label), h("span", { class: "lineage-detail muted" }, node.detail)];
    const style = `left:${node.x}px;top:${node.y}px;width:${BOX.width}px;height:${BOX.height}px`;
    // The title holds the whole name a narrow box may cut short.
    const props = { class: `lineage-node lineage-${node.kind}${node.current ? " current" : ""}`, style, title: `${node.label} (${node.detail})`, dataset: { node: node.key } };
    // The version shown is no link to itself.
    const box = node.current ? h("span", { ...props, "aria-current": "page" }, inner) : navLink(node.href, ...inner);
    if (!node.current) Object.entries(props).forEach(([name, value]) => (name === "dataset" ? Object.assign(box.dataset, value) : box.setAttribute(name, value)));
    return h("li", {}, box);
  });
  const canvas = h("div", { class: "lineage-canvas", style: `width:${layout.width}px;height:${layout.height}px` }, lines, h("ul", { class: "lineage-nodes", "aria-label": "Lineage" }, boxes));
  return h("div", { class: "lineage", dataset: { testid: "lineage" } }, canvas);
}
