// "/{entity}/{project}/artifacts/{type}/{collection}[/{version}]": one artifact version (latest
// when the path names none, or any alias: "best", "v3"). Its facts (digest, size, created, the
// run that logged it), its lineage graph, its metadata, its files (each downloadable), and beside
// them the collection's versions with their aliases, the one shown marked.
import { formatBytes } from "../../shared/chart.js";
import { graphql } from "../api.js";
import { aliasNames, isoSeconds, metadataEntries, referenceOf, shortDigest, versionTag } from "../artifact_format.js";
import { ARTIFACT, FILES_SHOWN, VERSIONS_SHOWN, nodesOf } from "../artifact_queries.js";
import { fill, h } from "../dom.js";
import { formatAgo, plural } from "../format.js";
import { parseJSON } from "../json.js";
import { lineageView } from "../lineage_view.js";
import { naturalCompare } from "../model.js";
import { artifactPath, artifactsPath, projectPath, runPath } from "../routes.js";
import { downloadButton, keyValueTable, navLink } from "../widgets.js";

export async function artifactPage(main, route, ctx) {
  const { entity, project, type, collection, version } = route;
  const here = { entity, project, collection };
  ctx.setCrumbs([
    { label: "Projects", href: "/" },
    { label: `${entity} / ${project}`, href: projectPath(entity, project) },
    { label: "Artifacts", href: artifactsPath(entity, project) },
    { label: `${collection}:${version}` },
  ]);
  ctx.setTitle(`${collection}:${version}`, project);
  const data = await graphql(ARTIFACT, { entity, project, collection, name: `${collection}:${version}` }, { signal: ctx.signal });
  if (ctx.signal.aborted) return;
  const found = data.project && data.project.artifact;
  const sequence = data.project && data.project.artifactCollection;
  if (!found || !sequence || found.artifactType.name !== type) {
    const what = sequence ? `no version “${version}” of ${type} “${collection}”` : `no ${type} “${collection}”`;
    fill(main, h("h1", {}, `${collection}:${version}`), h("p", { class: "notice" }, `There is ${what} in ${entity} / ${project}.`), h("p", {}, navLink(artifactsPath(entity, project), "See the project's artifacts")));
    return ctx.ready();
  }
  const tag = versionTag(found.versionIndex);
  ctx.setTitle(`${collection}:${tag}`, project);
  ctx.setCrumbs([
    { label: "Projects", href: "/" },
    { label: `${entity} / ${project}`, href: projectPath(entity, project) },
    { label: "Artifacts", href: artifactsPath(entity, project) },
    { label: `${collection}:${tag}` },
  ]);
  const created = isoSeconds(found.createdAt);
  const producer = found.createdBy && found.createdBy.__typename === "Run" ? found.createdBy : null;
  const users = nodesOf(found.usedBy);
  const facts = [
    ["Type", type],
    ["Size", `${formatBytes(found.size)} in ${plural(found.fileCount, "file")}`],
    ["Created", created ? formatAgo(created) : "—", created ? new Date(created * 1000).toLocaleString() : ""],
    ["Logged by", producer ? navLink(runPath(producer.project.entityName, producer.project.name, producer.name), producer.displayName || producer.name) : "no run"],
    ["Used by", plural(users.length, "run")],
    ["Digest", h("code", {}, shortDigest(found.digest)), found.digest],
  ];
  const head = h(
    "div",
    { class: "run-head" },
    h("div", { class: "title-row" }, h("h1", {}, `${collection}:${tag}`), aliasList(aliasNames(found))),
    h("dl", { class: "facts" }, facts.map(([term, value, title]) => h("div", {}, h("dt", {}, term), h("dd", { title: title || null }, value)))),
    found.description ? h("p", { class: "notes" }, found.description) : null,
  );
  const section = (id, title, ...body) => h("section", { class: "section", "aria-labelledby": id }, h("h2", { id }, title), ...body);
  const metadata = metadataEntries(found.metadata ? parseJSON(found.metadata) : {});
  fill(
    main,
    head,
    section("lineage-title", "Lineage", lineageView(found, here)),
    h(
      "div",
      { class: "columns artifact-columns" },
      section("versions-title", "Versions", versionsTable(entity, project, type, collection, sequence, found.id)),
      section("metadata-title", "Metadata", keyValueTable(metadata, "Metadata", "No metadata.")),
    ),
    section("files-title", "Files", filesTable(nodesOf(found.files), found.fileCount, ctx)),
  );
  ctx.ready();
}

function aliasList(names) {
  return h("span", { class: "tags aliases", "aria-label": "Aliases" }, names.map((name) => h("span", { class: "tag alias" }, name)));
}

function versionsTable(entity, project, type, collection, sequence, shownId) {
  const edges = sequence.artifacts.edges;
  const rows = edges.map(({ version, node }) => {
    const created = isoSeconds(node.createdAt);
    const shown = node.id === shownId;
    return h(
      "tr",
      { class: shown ? "selected" : null, dataset: { version }, "aria-current": shown ? "page" : null },
      h("td", {}, shown ? h("strong", {}, version) : navLink(artifactPath(entity, project, type, collection, version), version)),
      h("td", {}, aliasList(aliasNames(node))),
      h("td", { class: "num" }, formatBytes(node.size)),
      h("td", { title: created ? new Date(created * 1000).toLocaleString() : "" }, created ? formatAgo(created) : ""),
    );
  });
  const more = sequence.artifacts.totalCount > edges.length ? h("p", { class: "muted" }, `The newest ${VERSIONS_SHOWN} of ${sequence.artifacts.totalCount} versions.`) : null;
  return [
    h(
      "table",
      { class: "table versions" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Version"), h("th", { scope: "col" }, "Aliases"), h("th", { scope: "col", class: "num" }, "Size"), h("th", { scope: "col" }, "Created"))),
      h("tbody", {}, rows),
    ),
    more,
  ];
}

function filesTable(files, fileCount, ctx) {
  if (!files.length) return h("p", { class: "muted" }, "No files.");
  const rows = [...files]
    .sort((a, b) => naturalCompare(a.name, b.name))
    .map((file) => {
      // A reference's bytes are outside the server: its URI is shown where a download would be.
      const ref = referenceOf(file);
      const where = ref ? h("span", { class: "muted reference", title: ref }, `reference: ${ref}`) : downloadButton(file.url, file.name, ctx.fail);
      return h("tr", { dataset: { file: file.name } }, h("td", { class: "value" }, file.name), h("td", { class: "num" }, formatBytes(file.sizeBytes)), h("td", {}, where));
    });
  const more = fileCount > files.length ? h("p", { class: "muted" }, `The first ${FILES_SHOWN} of ${plural(fileCount, "file")}.`) : null;
  return [
    h(
      "table",
      { class: "table files" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Name"), h("th", { scope: "col", class: "num" }, "Size"), h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Download")))),
      h("tbody", {}, rows),
    ),
    more,
  ];
}
