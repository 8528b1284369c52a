// The web UI's entry point (loaded by ui/index.html): the page shell, the router and the API key.
//
// Routing is the History API over the paths in routes.js, so every view has a URL to bookmark or
// share, and the back button works. A page is a function (main, route, ctx) that renders into
// <main>; ctx.signal aborts when the user navigates away (pages check it after each await) and
// ctx.onCleanup registers what to undo then (pollers, observers). A page's load that fails for
// want of a key shows the key form instead; once a key is given, the same page renders again.
import { AuthError, forgetKey, storedKey } from "./api.js";
import { fill, h } from "./dom.js";
import { artifactPage } from "./pages/artifact.js";
import { artifactsPage } from "./pages/artifacts.js";
import { compareView } from "./pages/compare.js";
import { keyForm } from "./pages/key.js";
import { projectsPage } from "./pages/projects.js";
import { runPage } from "./pages/run.js";
import { runsPage } from "./pages/runs.js";
import { parseRoute } from "./routes.js";
import { errorBox, navLink } from "./widgets.js";

const PAGES = {
  projects: projectsPage,
  runs: runsPage,
  run: runPage,
  compare: compareView,
  artifacts: artifactsPage,
  artifact: artifactPage,
  notFound: notFoundPage,
};

const crumbs = h("nav", { class: "crumbs", "aria-label": "Breadcrumbs" });
const who = h("span", { class: "who muted" });
const forget = h("button", { type: "button", class: "link-button", hidden: true, on: { click: onForget } }, "Forget key");
const main = h("main", { id: "main", tabindex: "-1" });
const shell = h(
  "div",
  { class: "shell" },
  h("header", { class: "topbar" }, navLink("/", h("span", { class: "brand" }, "nbtrack")), crumbs, h("span", { class: "spacer" }), who, forget),
  main,
);

let current = null; // {controller, cleanups}

function notFoundPage(into, _route, ctx) {
  fill(into, h("h1", {}, "Nothing here"), h("p", {}, "This address is not a page of nbtrack. ", navLink("/", "See all projects"), "."));
  setTitle("Not found");
  ctx.ready();
}

function setTitle(...parts) {
  document.title = [...parts.filter(Boolean), "nbtrack"].join(" · ");
}

function setCrumbs(items) {
  const nodes = [];
  items.forEach(({ label, href }, i) => {
    if (i > 0) nodes.push(h("span", { class: "sep", "aria-hidden": "true" }, "/"));
    nodes.push(href ? navLink(href, label) : h("span", { "aria-current": "page" }, label));
  });
  fill(crumbs, nodes);
}

function setViewer(entity) {
  who.textContent = entity ? `as ${entity}` : "";
}

function leave() {
  if (!current) return;
  current.controller.abort();
  for (const cleanup of current.cleanups.splice(0)) {
    try {
      cleanup();
    } catch (error) {
      console.warn("nbtrack: cleanup failed", error);
    }
  }
  current = null;
}

function showKeyForm(error) {
  leave();
  const hadKey = storedKey() !== null;
  if (hadKey) forgetKey(); // refused: do not send it again
  forget.hidden = true;
  setCrumbs([]);
  setTitle("API key");
  keyForm(main, { rejected: hadKey, message: error && error.message, onKey: () => render() });
}

async function render() {
  leave();
  const controller = new AbortController();
  const state = { controller, cleanups: [] };
  current = state;
  delete document.body.dataset.ready;
  forget.hidden = storedKey() === null;
  const route = parseRoute(location.pathname, location.search);
  const ctx = {
    signal: controller.signal,
    onCleanup: (fn) => state.cleanups.push(fn),
    navigate,
    // The view's settings (sort, filter, x axis) go in the query string without a new history entry.
    setQuery(params) {
      const query = new URLSearchParams(params);
      for (const [key, value] of [...query]) if (value === "") query.delete(key);
      const search = query.toString();
      history.replaceState(null, "", `${location.pathname}${search ? `?${search}` : ""}`);
    },
    setTitle,
    setCrumbs,
    setViewer,
    // The page is drawn, charts included: what tests wait for (data-ready) and what
    // benchmarks/bench_ui.py times (the "nbtrack-ready" mark, from navigation start).
    ready() {
      if (current !== state || document.body.dataset.ready) return;
      document.body.dataset.ready = "1";
      performance.mark("nbtrack-ready");
    },
    // A failure after the first render (a poll): the key form if it is about the key.
    fail(error) {
      if (current !== state) return;
      if (error instanceof AuthError) showKeyForm(error);
      else console.warn("nbtrack:", error);
    },
  };
  fill(main);
  setCrumbs([]);
  try {
    await PAGES[route.page](main, route, ctx);
  } catch (error) {
    if (controller.signal.aborted) return;
    if (error instanceof AuthError) return showKeyForm(error);
    console.warn("nbtrack: the page failed to load", error);
    fill(main, errorBox(error));
  }
}

/** Shows another page: a new history entry (or a replaced one), then renders it. */
function navigate(href, { replace = false } = {}) {
  history[replace ? "replaceState" : "pushState"](null, "", href);
  render();
  window.scrollTo(0, 0);
  main.focus({ preventScroll: true });
}

function onForget() {
  forgetKey();
  render();
}

// Links marked data-nav are routed here; a modified click (new tab, download) is the browser's.
document.addEventListener("click", (event) => {
  const link = event.target instanceof Element ? event.target.closest("a[data-nav]") : null;
  if (!link || event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener("popstate", () => render());

document.getElementById("app").replaceChildren(shell);
render();
