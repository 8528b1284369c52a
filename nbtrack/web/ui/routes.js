// The UI's URLs, both ways: every page is a bookmarkable path the server answers with index.html.
//   /                                        projects (?search= keeps a search of runs)
//   /{entity}/{project}                      runs of a project (?q=&state=&sort=&dir=&group=&pc=&x=&y= keep the view)
//   /{entity}/{project}/runs/{run}           one run (?x=_runtime, _timestamp or a step metric: the charts' x axis)
//   /{entity}/{project}/compare?runs=a,b     runs side by side
//   /{entity}/{project}/artifacts/all        the project's artifacts, by type and collection
//   /{entity}/{project}/artifacts/{type}/{collection}[/{version}]   one version (latest if none)
// The artifact pages have four segments or more: "/artifacts/{entity}/{md5}" (three) is the
// server's route for an artifact file's bytes, so a three-segment page would be unreachable for
// an entity named "artifacts" (as its compare page already is).
// The run page's path is also what the notebook panel links to (nbtrack/online/server_run.py), so it
// must not change. Pure functions: no window, no DOM.

import { LATEST_ALIAS } from "../shared/vocabulary.js";

const seg = (part) => encodeURIComponent(part);

export function projectPath(entity, project) {
  return `/${seg(entity)}/${seg(project)}`;
}

export function runPath(entity, project, run) {
  return `${projectPath(entity, project)}/runs/${seg(run)}`;
}

export function comparePath(entity, project, runs) {
  // The list stays readable in the address bar: run ids have no commas (server names are checked).
  return `${projectPath(entity, project)}/compare?runs=${runs.map(seg).join(",")}`;
}

export function artifactsPath(entity, project) {
  return `${projectPath(entity, project)}/artifacts/all`;
}

/** An artifact version's page; without version, its collection's latest. */
export function artifactPath(entity, project, type, collection, version = null) {
  const base = `${projectPath(entity, project)}/artifacts/${seg(type)}/${seg(collection)}`;
  return version === null ? base : `${base}/${seg(version)}`;
}

/** The page a path and query string (location.pathname, location.search) show. */
export function parseRoute(pathname, search = "") {
  let parts;
  try {
    parts = pathname.split("/").filter(Boolean).map(decodeURIComponent);
  } catch {
    return { page: "notFound" }; // a malformed %-escape
  }
  const query = new URLSearchParams(search);
  if (parts.length === 0) return { page: "projects", query };
  const [entity, project, section, run] = parts;
  if (parts.length === 2) return { page: "runs", entity, project, query };
  if (parts.length === 4 && section === "runs") return { page: "run", entity, project, run, query };
  if (parts.length === 3 && section === "compare") {
    const runs = [...new Set((query.get("runs") || "").split(",").filter(Boolean))];
    return { page: "compare", entity, project, runs, query };
  }
  if (section === "artifacts") {
    if (parts.length === 4 && run === "all") return { page: "artifacts", entity, project, query };
    const [, , , type, collection, version] = parts;
    if (parts.length === 5 || parts.length === 6) return { page: "artifact", entity, project, type, collection, version: version || LATEST_ALIAS, query };
  }
  return { page: "notFound" };
}

/** The x axes a chart can use, by the history field that holds them. */
export const X_AXES = [
  ["_step", "Step"],
  ["_runtime", "Runtime"],
  ["_timestamp", "Wall time"],
];

/**
 * The x axis a page's query string asks for: one of X_AXES, or one of the step metrics the runs
 * declared (a W&B integration's "trainer/global_step"); "_step" for anything else. Before the
 * runs are known (stepMetrics null), any metric key is taken; the page checks it once they are.
 */
export function xAxisOf(query, stepMetrics = null) {
  const x = query ? query.get("x") : null;
  if (X_AXES.some(([field]) => field === x)) return x;
  if (x && (stepMetrics ? stepMetrics.includes(x) : !x.startsWith("_"))) return x;
  return "_step";
}
