// The run page's Artifacts section: the versions the run logged and those it used, each a link to
// its artifact page. Loaded beside the run's own query; the section is left out when the run has
// neither (most runs), so a page without artifacts looks as it did.
import { formatBytes } from "../shared/chart.js";
import { AuthError, graphql } from "./api.js";
import { aliasNames, versionTag } from "./artifact_format.js";
import { RUN_ARTIFACTS, nodesOf } from "./artifact_queries.js";
import { h } from "./dom.js";
import { plural } from "./format.js";
import { artifactPath } from "./routes.js";
import { errorBox, navLink } from "./widgets.js";

/** The section's node (hidden while the run has no artifacts) once its query is answered. */
export async function runArtifactsSection(names, signal) {
  let data;
  try {
    data = await graphql(RUN_ARTIFACTS, names, { signal });
  } catch (error) {
    // The run's page stands without this section: say what failed in its place.
    if (error instanceof AuthError || signal.aborted) throw error;
    return h("section", { class: "section", "aria-labelledby": "artifacts-title" }, h("h2", { id: "artifacts-title" }, "Artifacts"), errorBox(error));
  }
  const run = data.project && data.project.run;
  const logged = run ? nodesOf(run.outputArtifacts) : [];
  const used = run ? nodesOf(run.inputArtifacts) : [];
  return h(
    "section",
    { class: "section", "aria-labelledby": "artifacts-title", hidden: !logged.length && !used.length, dataset: { section: "artifacts" } },
    h("h2", { id: "artifacts-title" }, "Artifacts"),
    h("div", { class: "columns" }, versionList("Logged", "logged", logged, run && run.outputArtifacts.totalCount), versionList("Used", "used", used, run && run.inputArtifacts.totalCount)),
  );
}

function versionList(title, key, versions, total) {
  const id = `artifacts-${key}`;
  const items = versions.map((version) => {
    const sequence = version.artifactSequence;
    const tag = versionTag(version.versionIndex);
    const href = artifactPath(sequence.project.entityName, sequence.project.name, version.artifactType.name, sequence.name, tag);
    return h(
      "li",
      {},
      navLink(href, `${sequence.name}:${tag}`),
      h("span", { class: "muted" }, ` ${version.artifactType.name} · ${formatBytes(version.size)}`),
      " ",
      h("span", { class: "tags" }, aliasNames(version).map((name) => h("span", { class: "tag alias" }, name))),
    );
  });
  return h(
    "div",
    { dataset: { artifacts: key } },
    h("h3", { id }, title, " ", h("span", { class: "muted count" }, plural(total || 0, "version"))),
    items.length ? h("ul", { class: "artifact-list", "aria-labelledby": id }, items) : h("p", { class: "muted" }, "None."),
  );
}
