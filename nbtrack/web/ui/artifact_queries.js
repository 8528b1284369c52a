// The artifact pages' GraphQL queries, in the artifact part of the schema
// (nbtrack/server/artifacts.graphql: W&B's shapes, paged connections of edges and nodes). Sizes
// (`first`) are kept so a query stays well under the server's cost limit (graphql_cost.py).

// The list page: types × collections, each with its version count and its newest version.
export const TYPES_SHOWN = 20;
export const COLLECTIONS_SHOWN = 100;

export const ARTIFACTS = `query Artifacts($entity: String, $project: String!) {
  project(name: $project, entityName: $entity) {
    name entityName
    artifactTypes(first: ${TYPES_SHOWN}) {
      pageInfo { hasNextPage }
      edges { node { name
        artifactCollections(first: ${COLLECTIONS_SHOWN}) {
          pageInfo { hasNextPage }
          edges { node { name createdAt updatedAt
            artifacts(first: 1) { totalCount edges { version node { size createdAt } } }
          } }
        }
      } }
    }
  }
}`;

// A version as a link names it: its collection, number, type and project.
const VERSION_REF = "versionIndex artifactSequence { name project { name entityName } } artifactType { name }";
const RUN_REF = "name displayName state project { name entityName }";
export const LINEAGE_SHOWN = 50;
export const VERSIONS_SHOWN = 100;
export const FILES_SHOWN = 1000;

// The artifact page: the collection's versions, and the chosen version with its files and its
// lineage one hop either side (the logging run's inputs; the users' outputs).
export const ARTIFACT = `query Artifact($entity: String, $project: String!, $collection: String!, $name: String!) {
  project(name: $project, entityName: $entity) {
    artifactCollection(name: $collection) {
      name description
      artifacts(first: ${VERSIONS_SHOWN}) { totalCount edges { version node { id versionIndex createdAt size fileCount aliases { alias } } } }
    }
    artifact(name: $name) {
      id versionIndex description metadata digest createdAt size fileCount state
      artifactType { name }
      aliases { alias }
      createdBy { __typename ... on Run { ${RUN_REF}
        inputArtifacts(first: ${LINEAGE_SHOWN}) { edges { node { ${VERSION_REF} } } } } }
      usedBy(first: ${LINEAGE_SHOWN}) { edges { node { ${RUN_REF}
        outputArtifacts(first: ${LINEAGE_SHOWN}) { edges { node { ${VERSION_REF} } } } } } }
      files(first: ${FILES_SHOWN}) { edges { node { name sizeBytes url } } }
    }
  }
}`;

// A run page's section: what the run logged and what it used.
export const RUN_ARTIFACTS = `query RunArtifacts($entity: String, $project: String!, $run: String!) {
  project(name: $project, entityName: $entity) {
    run(name: $run) {
      outputArtifacts(first: ${LINEAGE_SHOWN}) { totalCount edges { node { ${VERSION_REF} size createdAt aliases { alias } } } }
      inputArtifacts(first: ${LINEAGE_SHOWN}) { totalCount edges { node { ${VERSION_REF} size createdAt aliases { alias } } } }
    }
  }
}`;

/** The nodes of a connection ({edges: [{node}]}), nulls left out. */
export function nodesOf(connection) {
  return connection && Array.isArray(connection.edges) ? connection.edges.map((edge) => edge.node).filter(Boolean) : [];
}
