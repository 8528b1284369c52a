// The UI's URLs, both ways: every page is a bookmarkable path the server answers with index.html.
//   /                                        projects (?search= keeps a search of runs)
//   /{entity}/{project}                      runs of a project (?q=&state=&sort=&dir=&group=&pc=&x=&y= keep the view)
//   /{entity}/{project}/runs/{run}           one run (?x=_runtime or _timestamp: the charts' x axis)
//   /{entity}/{project}/compare?runs=a,b     runs side by side
// The run page's path is also what the notebook panel links to (nbtrack/online/server_run.py), so it
// must not change. Pure functions: no window, no DOM.

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
  return { page: "notFound" };
}

/** The x axes a chart can use, by the history field that holds them. */
export const X_AXES = [
  ["_step", "Step"],
  ["_runtime", "Runtime"],
  ["_timestamp", "Wall time"],
];

/** The x axis a page's query string asks for; "_step" unless it names another known one. */
export function xAxisOf(query) {
  const x = query ? query.get("x") : null;
  return X_AXES.some(([field]) => field === x) ? x : "_step";
}
