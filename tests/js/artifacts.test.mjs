// The artifact pages' pure parts (nbtrack/web/ui/): their routes, the values they show, and the
// lineage graph (which nodes, which edges, where they go). The pages run in a real browser against
// a real server fed by the real wandb client (tests/test_ui_artifacts_browser.py).
import assert from "node:assert/strict";
import { test } from "node:test";

import { aliasNames, isoSeconds, metadataEntries, referenceOf, shortDigest, versionTag } from "../../nbtrack/web/ui/artifact_format.js";
import { BOX, layoutLineage, lineageGraph } from "../../nbtrack/web/ui/lineage.js";
import { artifactPath, artifactsPath, parseRoute } from "../../nbtrack/web/ui/routes.js";

test("artifact paths round-trip, names escaped, and leave the server's file routes alone", () => {
  assert.equal(artifactsPath("e", "p"), "/e/p/artifacts/all");
  const list = parseRoute("/e/p/artifacts/all");
  assert.deepEqual([list.page, list.entity, list.project], ["artifacts", "e", "p"]);
  const path = artifactPath("my team", "p", "data set", "mnist/a", "best");
  assert.equal(path, "/my%20team/p/artifacts/data%20set/mnist%2Fa/best");
  const page = parseRoute(path);
  assert.deepEqual([page.page, page.entity, page.type, page.collection, page.version], ["artifact", "my team", "data set", "mnist/a", "best"]);
  assert.equal(parseRoute(artifactPath("e", "p", "model", "m")).version, "latest", "no version: the latest");
  // Three segments are the server's (/artifacts/{entity}/{md5}), never a page of the UI.
  assert.equal(parseRoute("/e/p/artifacts").page, "notFound");
  assert.equal(parseRoute("/e/p/artifacts/model").page, "notFound");
  assert.equal(parseRoute("/e/p/artifacts/model/m/v1/extra").page, "notFound");
});

test("artifact values read as the pages show them", () => {
  assert.equal(isoSeconds("2024-06-01T00:00:00Z"), 1717200000);
  assert.equal(isoSeconds("2024-06-01T00:00:00"), 1717200000, "no offset: UTC, as the server writes times");
  assert.equal(isoSeconds("2024-06-01T02:00:00+02:00"), 1717200000);
  assert.equal(isoSeconds("not a time"), null);
  assert.equal(isoSeconds(null), null);
  assert.equal(versionTag(3), "v3");
  assert.equal(versionTag(null), "");
  assert.deepEqual(aliasNames({ aliases: [{ alias: "best" }, { alias: "latest" }, { alias: "a" }] }), ["latest", "best", "a"]);
  assert.deepEqual(aliasNames({}), []);
  assert.equal(shortDigest("0123456789abcdef0123"), "0123456789ab…");
  assert.equal(shortDigest("abc"), "abc");
});

test("metadata spreads nested objects into dotted keys, in natural order, and loses no key", () => {
  const rows = metadataEntries({ rows: 10, source: { url: "u", split: { train: 0.8 } }, classes: [0, 1], empty: {}, item2: 1, item10: 2 });
  assert.deepEqual(rows, [
    ["classes", [0, 1]],
    ["empty", {}],
    ["item2", 1],
    ["item10", 2],
    ["rows", 10],
    ["source.split.train", 0.8],
    ["source.url", "u"],
  ]);
  const deep = metadataEntries({ a: { b: { c: { d: { e: 1 } } } } });
  assert.deepEqual(deep, [["a.b.c.d", { e: 1 }]], "spread four levels deep, the rest kept whole");
  assert.deepEqual(metadataEntries(null), []);
  assert.deepEqual(metadataEntries(7), [["(value)", 7]]);
});

// The ARTIFACT query's answer for mnist:v1 of e/p: logged by run "prep" (which used raw:v0), used
// by "train" (which logged model:v0) and "eval" (which logged nothing).
const project = { name: "p", entityName: "e" };
const version = (name, type, index) => ({ versionIndex: index, artifactSequence: { name, project }, artifactType: { name: type } });
const run = (name, extra = {}) => ({ name, displayName: name === "t1" ? "train" : name, state: "finished", project, ...extra });
const ANSWER = {
  versionIndex: 1,
  artifactType: { name: "dataset" },
  createdBy: { __typename: "Run", ...run("prep"), inputArtifacts: { edges: [{ node: version("raw", "raw_data", 0) }] } },
  usedBy: {
    edges: [
      { node: run("t1", { outputArtifacts: { edges: [{ node: version("model", "model", 0) }] } }) },
      { node: run("eval", { outputArtifacts: { edges: [] } }) },
    ],
  },
};
const HERE = { entity: "e", project: "p", collection: "mnist" };

test("the lineage graph: inputs → logging run → this version → users → their outputs", () => {
  const graph = lineageGraph(ANSWER, HERE);
  assert.deepEqual(
    graph.columns.map((nodes) => nodes.map((node) => node.label)),
    [["raw:v0"], ["prep"], ["mnist:v1"], ["train", "eval"], ["model:v0"]],
  );
  const [input, maker, self, users, outputs] = graph.columns;
  assert.equal(self[0].current, true);
  assert.equal(self[0].href, "/e/p/artifacts/dataset/mnist/v1");
  assert.equal(input[0].href, "/e/p/artifacts/raw_data/raw/v0");
  assert.equal(maker[0].href, "/e/p/runs/prep");
  assert.equal(users[0].detail, "run t1", "a run named apart from its id says its id");
  assert.equal(outputs[0].detail, "model");
  const ids = (column, i) => graph.columns[column][i].id;
  assert.deepEqual(graph.edges, [
    [ids(1, 0), ids(2, 0)],
    [ids(0, 0), ids(1, 0)],
    [ids(2, 0), ids(3, 0)],
    [ids(3, 0), ids(4, 0)],
    [ids(2, 0), ids(3, 1)],
  ]);
});

test("a version no run logged or used is a graph of one node; empty columns are left out", () => {
  const graph = lineageGraph({ versionIndex: 0, artifactType: { name: "dataset" }, createdBy: null, usedBy: { edges: [] } }, HERE);
  assert.deepEqual(graph.columns.map((nodes) => nodes.map((node) => node.label)), [["mnist:v0"]]);
  assert.deepEqual(graph.edges, []);
  const layout = layoutLineage(graph);
  assert.deepEqual([layout.width, layout.height, layout.paths.length], [BOX.width, BOX.height, 0]);
});

test("two users that logged the same version share its node; a run that logged and used a version is in both columns", () => {
  const shared = version("model", "model", 4);
  const answer = {
    ...ANSWER,
    createdBy: { __typename: "Run", ...run("t1"), inputArtifacts: { edges: [] } },
    usedBy: { edges: [{ node: run("t1", { outputArtifacts: { edges: [{ node: shared }] } }) }, { node: run("b", { outputArtifacts: { edges: [{ node: shared }] } }) }] },
  };
  const graph = lineageGraph(answer, HERE);
  assert.deepEqual(graph.columns.map((nodes) => nodes.length), [1, 1, 2, 1]);
  assert.equal(graph.columns[0][0].key, graph.columns[2][0].key, "t1 logged it and used it");
  assert.notEqual(graph.columns[0][0].id, graph.columns[2][0].id);
  const toShared = graph.edges.filter(([, to]) => to === graph.columns[3][0].id);
  assert.equal(toShared.length, 2);
});

test("the layout centres each column and joins a box's right side to the next one's left", () => {
  const layout = layoutLineage(lineageGraph(ANSWER, HERE));
  const { width, height, columnGap, rowGap } = BOX;
  assert.equal(layout.width, 5 * width + 4 * columnGap);
  assert.equal(layout.height, 2 * BOX.height + rowGap, "the tallest column: two users");
  const at = Object.fromEntries(layout.nodes.map((node) => [node.label, node]));
  assert.equal(at["mnist:v1"].x, 2 * (width + columnGap));
  assert.equal(at["mnist:v1"].y, (layout.height - BOX.height) / 2, "a column of one is centred");
  assert.deepEqual([at.train.y, at.eval.y], [0, BOX.height + rowGap]);
  const edge = layout.paths.find((path) => path.from === at["mnist:v1"].id && path.to === at.eval.id);
  const start = `M${at["mnist:v1"].x + width} ${at["mnist:v1"].y + BOX.height / 2}`;
  assert.ok(edge.d.startsWith(start), edge.d);
  assert.ok(edge.d.endsWith(` ${at.eval.x} ${at.eval.y + BOX.height / 2}`), edge.d);
});

test("a reference's URI is told from a stored file's download URL", () => {
  assert.equal(referenceOf({ url: "s3://bucket/data/a.txt" }), "s3://bucket/data/a.txt");
  assert.equal(referenceOf({ url: "file:///data/one.txt" }), "file:///data/one.txt");
  assert.equal(referenceOf({ url: "http://127.0.0.1:8080/artifacts/e/abc?token=t" }), null);
  assert.equal(referenceOf({ url: "HTTPS://host/artifacts/e/abc" }), null);
  assert.equal(referenceOf({ url: "/artifacts/e/abc" }), null);
  assert.equal(referenceOf({ url: null }), null);
  assert.equal(referenceOf({}), null);
});
