// "/{entity}/{project}/artifacts/all": the project's artifacts, a table per type, a row per
// collection: how many versions it has, and its latest version's size and time.
import { formatBytes } from "../../shared/chart.js";
import { graphql } from "../api.js";
import { ARTIFACTS, COLLECTIONS_SHOWN, TYPES_SHOWN, nodesOf } from "../artifact_queries.js";
import { fill, h } from "../dom.js";
import { formatAgo, plural } from "../format.js";
import { isoSeconds } from "../artifact_format.js";
import { artifactPath, projectPath } from "../routes.js";
import { navLink } from "../widgets.js";

export async function artifactsPage(main, route, ctx) {
  const { entity, project } = route;
  ctx.setCrumbs([{ label: "Projects", href: "/" }, { label: `${entity} / ${project}`, href: projectPath(entity, project) }, { label: "Artifacts" }]);
  ctx.setTitle("Artifacts", project);
  const data = await graphql(ARTIFACTS, { entity, project }, { signal: ctx.signal });
  if (ctx.signal.aborted) return;
  const found = data.project;
  const head = h("div", { class: "page-head" }, h("h1", {}, "Artifacts"), h("span", { class: "muted" }, `${entity} / ${project}`));
  if (!found) {
    fill(main, head, h("p", { class: "notice" }, `There is no project “${project}” for ${entity}.`), h("p", {}, navLink("/", "See all projects")));
    return ctx.ready();
  }
  const types = nodesOf(found.artifactTypes).filter((type) => nodesOf(type.artifactCollections).length);
  const sections = types.map((type) => typeSection(entity, project, type));
  const more = found.artifactTypes.pageInfo.hasNextPage ? h("p", { class: "muted" }, `Only the first ${TYPES_SHOWN} types are shown.`) : null;
  const empty = types.length ? null : h("p", { class: "muted" }, "No artifacts yet: log one with run.log_artifact().");
  fill(main, head, empty, sections, more);
  ctx.ready();
}

function typeSection(entity, project, type) {
  const collections = nodesOf(type.artifactCollections);
  const id = `type-${type.name}`;
  const rows = collections.map((collection) => {
    const latest = collection.artifacts.edges[0] || null;
    const created = latest ? isoSeconds(latest.node.createdAt) : null;
    return h(
      "tr",
      { dataset: { collection: collection.name } },
      h("td", {}, navLink(artifactPath(entity, project, type.name, collection.name), collection.name)),
      h("td", { class: "num" }, plural(collection.artifacts.totalCount, "version")),
      h("td", {}, latest ? navLink(artifactPath(entity, project, type.name, collection.name, latest.version), latest.version) : "—"),
      h("td", { class: "num" }, latest ? formatBytes(latest.node.size) : "—"),
      h("td", { title: created ? new Date(created * 1000).toLocaleString() : "" }, created ? formatAgo(created) : "—"),
    );
  });
  return h(
    "section",
    { class: "section", "aria-labelledby": id, dataset: { type: type.name } },
    h("h2", { id }, type.name, " ", h("span", { class: "muted count" }, plural(collections.length, "collection"))),
    h(
      "table",
      { class: "table artifacts" },
      h("thead", {}, h("tr", {}, ["Name", "Versions", "Latest", "Size", "Updated"].map((label, i) => h("th", { scope: "col", class: i === 1 || i === 3 ? "num" : null }, label)))),
      h("tbody", {}, rows),
    ),
    type.artifactCollections.pageInfo.hasNextPage ? h("p", { class: "muted" }, `Only the newest ${COLLECTIONS_SHOWN} are shown.`) : null,
  );
}
