// An artifact version's lineage as a graph, left to right (pure: node's tests cover it):
//   the logging run's inputs → the logging run → this version → the runs that used it → their outputs
// lineageGraph builds the columns of nodes and the edges from the artifact page's query answer;
// layoutLineage places them (boxes of one size in columns, each column centred) and draws each
// edge as a curve from a box's right side to the next one's left.
import { artifactPath, runPath } from "./routes.js";
import { nodesOf } from "./artifact_queries.js";

/** A version (as artifact_queries.js's VERSION_REF) as a node. */
function versionNode(version, current = false) {
  const sequence = version.artifactSequence;
  const { name: project, entityName: entity } = sequence.project;
  const tag = `v${version.versionIndex}`;
  return {
    key: `a:${entity}/${project}/${sequence.name}:${tag}`,
    kind: "artifact",
    label: `${sequence.name}:${tag}`,
    detail: version.artifactType.name,
    href: artifactPath(entity, project, version.artifactType.name, sequence.name, tag),
    current,
  };
}

/** A run (as RUN_REF) as a node. */
function runNode(run) {
  const { name: project, entityName: entity } = run.project;
  const label = run.displayName || run.name;
  return { key: `r:${entity}/${project}/${run.name}`, kind: "run", label, detail: label === run.name ? "run" : `run ${run.name}`, href: runPath(entity, project, run.name), current: false };
}

/**
 * The graph of `artifact` (the ARTIFACT query's `artifact`, whose own collection is `here`:
 * {entity, project, collection}): {columns: [[node]], edges: [[fromId, toId]]}. Empty columns
 * are left out; a node appears once per column (two users that logged the same version share it).
 */
export function lineageGraph(artifact, here) {
  const current = versionNode(
    { versionIndex: artifact.versionIndex, artifactType: artifact.artifactType, artifactSequence: { name: here.collection, project: { name: here.project, entityName: here.entity } } },
    true,
  );
  const producer = artifact.createdBy && artifact.createdBy.__typename === "Run" ? artifact.createdBy : null;
  const users = nodesOf(artifact.usedBy);
  const columns = [[], [], [], [], []];
  const edges = [];
  // Keys are unique within a column; a run can be in two (it logged this version and used it),
  // so a node's id is its column's number and its key.
  const add = (column, node) => {
    const id = `${column}|${node.key}`;
    if (!columns[column].some((other) => other.id === id)) columns[column].push({ ...node, id });
    return id;
  };
  const self = add(2, current);
  if (producer) {
    const made = add(1, runNode(producer));
    edges.push([made, self]);
    for (const input of nodesOf(producer.inputArtifacts)) edges.push([add(0, versionNode(input)), made]);
  }
  for (const user of users) {
    const used = add(3, runNode(user));
    edges.push([self, used]);
    for (const output of nodesOf(user.outputArtifacts)) edges.push([used, add(4, versionNode(output))]);
  }
  const unique = new Map(edges.map((edge) => [edge.join(">"), edge]));
  return { columns: columns.filter((nodes) => nodes.length), edges: [...unique.values()] };
}

export const BOX = { width: 190, height: 46, columnGap: 56, rowGap: 14 };

/**
 * Where each node of lineageGraph's graph goes: {width, height, nodes: [{...node, x, y}],
 * paths: [{from, to, d}]} in pixels, boxes of BOX's size.
 */
export function layoutLineage(graph, box = BOX) {
  const rows = Math.max(1, ...graph.columns.map((nodes) => nodes.length));
  const height = rows * box.height + (rows - 1) * box.rowGap;
  const width = graph.columns.length * box.width + Math.max(0, graph.columns.length - 1) * box.columnGap;
  const placed = new Map();
  graph.columns.forEach((nodes, column) => {
    const own = nodes.length * box.height + (nodes.length - 1) * box.rowGap;
    const top = (height - own) / 2;
    nodes.forEach((node, row) => placed.set(node.id, { ...node, x: column * (box.width + box.columnGap), y: top + row * (box.height + box.rowGap) }));
  });
  const paths = graph.edges.map(([from, to]) => {
    const a = placed.get(from);
    const b = placed.get(to);
    const x1 = a.x + box.width;
    const y1 = a.y + box.height / 2;
    const x2 = b.x;
    const y2 = b.y + box.height / 2;
    const bend = box.columnGap / 2;
    return { from, to, d: `M${x1} ${y1} C${x1 + bend} ${y1} ${x2 - bend} ${y2} ${x2} ${y2}` };
  });
  return { width, height, nodes: [...placed.values()], paths };
}
