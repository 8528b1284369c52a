// The UI's GraphQL queries (schema: nbtrack/server/schema.graphql). Values always travel as
// variables, never pasted into query text; the compare query's text varies only by how many runs
// it asks for (aliases r0, r1, ...).

export const PROJECTS = `query Projects {
  viewer { entity }
  projects { name entityName runCount createdAt lastActivity }
}`;

// The search box of the projects page: runs of every project whose id, name, a tag or a config
// value holds each word. One more than is shown is asked for, to say there are more.
export const SEARCH_SHOWN = 50;

export const SEARCH_RUNS = `query SearchRuns($text: String!, $first: Int) {
  searchRuns(text: $text, first: $first) {
    name displayName state tags createdAt project { name entityName }
  }
}`;

// The runs table asks for this many runs, newest first; a project with more says so.
export const RUNS_LIMIT = 1000;

export const RUNS = `query Runs($entity: String, $project: String!, $first: Int) {
  project(name: $project, entityName: $entity) {
    name entityName runCount
    runs(first: $first) {
      name displayName state config summaryMetrics tags group createdAt updatedAt heartbeatAt runtime
    }
  }
}`;

const RUN_FIELDS = `name displayName state config summaryMetrics tags notes group jobType host program
  createdAt updatedAt heartbeatAt runtime exitCode historyLineCount lastStep attempts`;

// Console lines read per request; more are fetched on demand (and as a live run prints them).
export const OUTPUT_PAGE = 2000;

export const RUN = `query Run($entity: String, $project: String!, $run: String!, $x: String,
    $minX: Float, $maxX: Float, $outputLimit: Int) {
  project(name: $project, entityName: $entity) {
    run(name: $run) {
      ${RUN_FIELDS}
      files { name sizeBytes url updatedAt }
      alerts { title text severity createdAt }
      output(offset: 0, limit: $outputLimit)
      chart(x: $x, minX: $minX, maxX: $maxX)
    }
  }
}`;

// What a live run's page polls every second: cheap fields, and the console lines it has not seen.
export const RUN_LIVE = `query RunLive($entity: String, $project: String!, $run: String!, $outputFrom: Int,
    $outputLimit: Int) {
  project(name: $project, entityName: $entity) {
    run(name: $run) {
      state runtime heartbeatAt updatedAt exitCode historyLineCount lastStep summaryMetrics attempts
      alerts { title text severity createdAt }
      output(offset: $outputFrom, limit: $outputLimit)
    }
  }
}`;

export const RUN_OUTPUT = `query RunOutput($entity: String, $project: String!, $run: String!, $offset: Int, $limit: Int) {
  project(name: $project, entityName: $entity) { run(name: $run) { output(offset: $offset, limit: $limit) } }
}`;

// $attempt: one attempt of a notebook's run (a re-run cell whose steps went back), or all rows.
export const RUN_CHART = `query RunChart($entity: String, $project: String!, $run: String!, $x: String,
    $minX: Float, $maxX: Float, $attempt: Int) {
  project(name: $project, entityName: $entity) {
    run(name: $run) { historyLineCount chart(x: $x, minX: $minX, maxX: $maxX, attempt: $attempt) }
  }
}`;

// The rows holding some media keys (each cut to _step and those keys), at most $samples of them.
export const MEDIA_HISTORY = `query MediaHistory($entity: String, $project: String!, $run: String!, $keys: [String!],
    $samples: Int) {
  project(name: $project, entityName: $entity) { run(name: $run) { history(keys: $keys, samples: $samples) } }
}`;

export const COMPARE_FIELDS = RUN_FIELDS;
export const COMPARE_LIVE_FIELDS = "state runtime historyLineCount summaryMetrics";

/**
 * The compare page's query for `count` runs ($r0, $r1, ... aliased r0, r1, ...): the given fields of
 * each, and with `chart`, its chart for the page's x axis and range.
 */
export function compareQuery(count, fields, chart) {
  const params = Array.from({ length: count }, (_, i) => `$r${i}: String!`).join(", ");
  const chartField = chart ? " chart(x: $x, minX: $minX, maxX: $maxX)" : "";
  const chartParams = chart ? ", $x: String, $minX: Float, $maxX: Float" : "";
  const runs = Array.from({ length: count }, (_, i) => `r${i}: run(name: $r${i}) { ${fields}${chartField} }`).join("\n    ");
  return `query Compare($entity: String, $project: String!, ${params}${chartParams}) {
  project(name: $project, entityName: $entity) {
    ${runs}
  }
}`;
}
