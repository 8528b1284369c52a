// The projects page's "Search runs" box: runs of every project found by id, name, tag or config
// value (the server's Query.searchRuns), each hit a link to its run page and its project. The
// text stays in the query string (?search=), so a search can be bookmarked and comes back on "back".
import { graphql } from "./api.js";
import { fill, h } from "./dom.js";
import { formatAgo, plural } from "./format.js";
import { SEARCH_RUNS, SEARCH_SHOWN } from "./queries.js";
import { projectPath, runPath } from "./routes.js";
import { errorBox, loading, navLink, stateBadge, tagList } from "./widgets.js";

/** The search form and its results: a node; ctx is the page's (signal, setQuery). */
export function runSearch(ctx, initial = "") {
  const input = h("input", {
    type: "search",
    name: "search",
    value: initial,
    placeholder: "Search runs in every project: name, id, tag or config value",
    "aria-label": "Search runs in every project",
  });
  const results = h("div", { class: "search-results", "aria-live": "polite" });
  let asked = 0; // answers to an older search are dropped

  async function search() {
    const text = input.value.trim();
    ctx.setQuery({ search: text });
    const mine = ++asked;
    if (!text) {
      fill(results);
      return;
    }
    fill(results, loading("Searching…"));
    try {
      const data = await graphql(SEARCH_RUNS, { text, first: SEARCH_SHOWN + 1 }, { signal: ctx.signal });
      if (mine !== asked || ctx.signal.aborted) return;
      fill(results, hits(text, data.searchRuns));
    } catch (error) {
      if (mine !== asked || ctx.signal.aborted) return;
      fill(results, errorBox(error));
    }
  }

  const form = h(
    "form",
    { class: "toolbar run-search", role: "search", on: { submit: (event) => (event.preventDefault(), search()) } },
    input,
    h("button", { type: "submit", class: "button" }, "Search"),
  );
  if (initial.trim()) search();
  return h("div", { class: "search" }, form, results);
}

function hits(text, found) {
  if (found.length === 0) return h("p", { class: "muted" }, `No run matches “${text}”.`);
  const shown = found.slice(0, SEARCH_SHOWN);
  const now = Date.now() / 1000;
  return [
    h("p", { class: "muted", role: "status" }, found.length > SEARCH_SHOWN ? `The newest ${SEARCH_SHOWN} runs that match “${text}”; add a word to narrow it.` : `${plural(shown.length, "run")} ${shown.length === 1 ? "matches" : "match"} “${text}”.`),
    h(
      "table",
      { class: "table search-hits" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Run"), h("th", { scope: "col" }, "Project"), h("th", { scope: "col" }, "State"), h("th", { scope: "col" }, "Tags"), h("th", { scope: "col" }, "Created"))),
      h(
        "tbody",
        {},
        shown.map((run) => {
          const { entityName, name: project } = run.project;
          const label = run.displayName || run.name;
          return h(
            "tr",
            { dataset: { run: run.name, project } },
            h("td", { class: "name" }, navLink(runPath(entityName, project, run.name), label), label !== run.name ? h("span", { class: "run-id muted" }, run.name) : null),
            h("td", {}, navLink(projectPath(entityName, project), `${entityName} / ${project}`)),
            h("td", {}, stateBadge(run.state)),
            h("td", {}, tagList(Array.isArray(run.tags) ? run.tags : [])),
            h("td", { class: "date" }, formatAgo(run.createdAt, now)),
          );
        }),
      ),
    ),
  ];
}
