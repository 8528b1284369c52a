// "/": the caller's projects, most recently active first, with their run counts; or, on a new
// server, how to get a first run onto it.
import { graphql } from "../api.js";
import { fill, h } from "../dom.js";
import { formatAgo, plural } from "../format.js";
import { PROJECTS } from "../queries.js";
import { projectPath } from "../routes.js";
import { runSearch } from "../run_search.js";
import { navLink } from "../widgets.js";

function emptyState() {
  const origin = location.origin;
  return h(
    "div",
    { class: "empty card" },
    h("h2", {}, "No runs yet — run ", h("code", {}, "nbtrack demo")),
    h("p", {}, "In the folder this server was started from, ", h("code", {}, "nbtrack demo"), " makes a short simulated run in its store. Or send a run to this server from a notebook or a script:"),
    h("pre", { class: "code" }, `import nbtrack\n\nrun = nbtrack.init(project="my-project", base_url="${origin}")\nfor step in range(100):\n    run.log({"loss": 1 / (step + 1)})\nrun.finish()`),
    h("p", { class: "muted" }, "Runs appear here as they start; this page shows them when reloaded."),
  );
}

export async function projectsPage(main, route, ctx) {
  ctx.setTitle("Projects");
  const data = await graphql(PROJECTS, {}, { signal: ctx.signal });
  if (ctx.signal.aborted) return;
  ctx.setViewer(data.viewer && data.viewer.entity);
  const projects = data.projects || [];
  const now = Date.now() / 1000;
  const content = projects.length
    ? h(
        "table",
        { class: "table projects" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Project"), h("th", { scope: "col", class: "num" }, "Runs"), h("th", { scope: "col" }, "Last activity"), h("th", { scope: "col" }, "Created"))),
        h(
          "tbody",
          {},
          projects.map((p) =>
            h(
              "tr",
              { dataset: { project: p.name } },
              h("td", {}, navLink(projectPath(p.entityName, p.name), h("span", { class: "entity muted" }, `${p.entityName} / `), h("strong", {}, p.name))),
              h("td", { class: "num" }, String(p.runCount)),
              h("td", { title: new Date(p.lastActivity * 1000).toLocaleString() }, formatAgo(p.lastActivity, now)),
              h("td", { title: new Date(p.createdAt * 1000).toLocaleString() }, formatAgo(p.createdAt, now)),
            ),
          ),
        ),
      )
    : emptyState();
  const search = projects.length ? runSearch(ctx, route.query.get("search") || "") : null;
  fill(main, h("div", { class: "page-head" }, h("h1", {}, "Projects"), projects.length ? h("span", { class: "muted" }, plural(projects.length, "project")) : null), search, content);
  ctx.ready();
}
