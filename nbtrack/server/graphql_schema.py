"""The executable GraphQL schema: schema.graphql's SDL, its scalars, resolvers and a depth limit."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any

from graphql import (
    ConstValueNode,
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    ValidationContext,
    ValidationRule,
    build_schema,
)

from nbtrack import jsonutil
from nbtrack.server.artifact_mutations import ARTIFACT_MUTATIONS
from nbtrack.server.artifact_resolvers import ARTIFACT_RESOLVERS
from nbtrack.server.body import MAX_NESTING, too_deep
from nbtrack.server.mutations import MUTATIONS
from nbtrack.server.resolvers import RESOLVERS
from nbtrack.server.wandb_resolvers import WANDB_FIELDS, WANDB_RESOLVERS

__all__ = ["MAX_DEPTH", "MaxDepthRule", "schema", "wandb_schema"]

# The deepest query nbtrack's clients send is 11 fields deep: W&B's ProjectArtifacts (project >
# artifactType > artifactCollection > artifacts > edges > node > aliases > artifactCollection >
# project > entity > name).
MAX_DEPTH = 12
_INT64 = range(-(2**63), 2**63)


# The W&B dialect: where wandb's public API asks a field of nbtrack's schema in another shape
# (a paged connection, a list of JSON texts), the dialect's schema has W&B's shape instead. A
# request runs in nbtrack's schema if it is valid there, else in the dialect's; one with
# operationName "" (as wandb's public API sends) the other way round (graphql_http.py).
_WANDB_FIELDS = {
    "runs(first: Int, order: String): [Run!]!": (
        "runs(first: Int, after: String, order: String, filters: JSONString): RunConnection!"
    ),
    "history(keys: [String!], samples: Int, minStep: Int64, maxStep: Int64): JSONString!": (
        "history(samples: Int, minStep: Int64, maxStep: Int64): [String!]!"
    ),
    "historyKeys: [String!]!": "historyKeys: JSON",
    "createdAt: Float!\n  lastActivity: Float!": "createdAt: String!\n  lastActivity: Float!",
    "createdAt: Float!\n  updatedAt: Float!\n  heartbeatAt: Float!": (
        "createdAt: String!\n  updatedAt: String!\n  heartbeatAt: String!"
    ),
    "events(offset: Int, limit: Int): [String!]!": "events(samples: Int): [String!]!",
    "files: [RunFile!]!": (
        "files(names: [String], after: String, first: Int, pattern: String): FileConnection!"
    ),
}


def _sdl() -> str:
    """schema.graphql, then artifacts.graphql (which extends its types)."""
    folder = files("nbtrack.server")
    return "\n".join(
        (folder / name).read_text(encoding="utf-8") for name in ("schema.graphql", "artifacts.graphql")
    )


@cache
def schema() -> GraphQLSchema:
    """nbtrack's own schema (schema.graphql)."""
    return _build(_sdl(), _merged(RESOLVERS, WANDB_FIELDS, ARTIFACT_RESOLVERS))


@cache
def wandb_schema() -> GraphQLSchema:
    """The W&B dialect of the schema: _WANDB_FIELDS changed, with their resolvers."""
    sdl = _sdl()
    for ours, theirs in _WANDB_FIELDS.items():
        if sdl.count(ours) != 1:
            raise TypeError(f"schema.graphql no longer has exactly one field {ours!r}")
        sdl = sdl.replace(ours, theirs)
    return _build(sdl, _merged(RESOLVERS, WANDB_FIELDS, WANDB_RESOLVERS, ARTIFACT_RESOLVERS))


def _merged(*layers: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Resolvers by type, each layer's fields over the ones before."""
    merged: dict[str, dict[str, Any]] = {}
    for layer in layers:
        for name, fields in layer.items():
            merged.setdefault(name, {}).update(fields)
    return merged


def _build(sdl: str, resolvers_of: dict[str, dict[str, Any]]) -> GraphQLSchema:
    built = build_schema(sdl)
    _define_json_string(_scalar(built, "JSONString"))
    _define_int64(_scalar(built, "Int64"))
    _define_duration(_scalar(built, "Duration"))
    _scalar(built, "JSON").coerce_output_value = lambda value: value
    # The one member of the union that says who made an artifact version: a run.
    creator = built.get_type("ArtifactCreator")
    if not isinstance(creator, GraphQLUnionType):
        raise TypeError("schema.graphql has no union ArtifactCreator")
    creator.resolve_type = lambda *_args: "Run"
    mutations = {**MUTATIONS, **ARTIFACT_MUTATIONS}
    for type_name, resolvers in {**resolvers_of, "Mutation": mutations}.items():
        object_type = built.get_type(type_name)
        if not isinstance(object_type, GraphQLObjectType):
            raise TypeError(f"schema.graphql has no object type {type_name}")
        for field_name, resolve in resolvers.items():
            object_type.fields[field_name].resolve = resolve
    return built


def _scalar(built: GraphQLSchema, name: str) -> GraphQLScalarType:
    scalar = built.get_type(name)
    if not isinstance(scalar, GraphQLScalarType):
        raise TypeError(f"schema.graphql has no scalar {name}")
    return scalar


def _define_json_string(scalar: GraphQLScalarType) -> None:
    """JSONString: JSON text out (resolvers return text), parsed JSON in (a bad input is a bad request)."""

    def parse_value(value: Any) -> Any:
        if not isinstance(value, str):
            raise GraphQLError(f"a JSONString must be a string holding JSON, not {type(value).__name__}")
        try:
            parsed = jsonutil.loads(value)
        except (ValueError, RecursionError) as exc:
            raise GraphQLError(f"the string is not valid JSON: {exc}") from None
        if too_deep(parsed):
            raise GraphQLError(f"the JSON nests deeper than {MAX_NESTING} levels")
        return parsed

    def parse_literal(node: ConstValueNode) -> Any:
        if not isinstance(node, StringValueNode):
            raise GraphQLError("a JSONString must be a string holding JSON")
        return parse_value(node.value)

    # Set on the scalar build_schema made: graphql-core's way of giving an SDL scalar its behaviour.
    scalar.coerce_output_value = lambda value: value
    scalar.coerce_input_value = parse_value
    scalar.coerce_input_literal = parse_literal


def _define_int64(scalar: GraphQLScalarType) -> None:
    """Int64: GraphQL's Int is 32-bit, a step is not."""

    def parse_value(value: Any) -> int:
        if type(value) is not int or value not in _INT64:
            raise GraphQLError(f"an Int64 must be a 64-bit integer, not {value!r:.40}")
        return value

    def parse_literal(node: ConstValueNode) -> int:
        if not isinstance(node, IntValueNode):
            raise GraphQLError("an Int64 must be an integer")
        return parse_value(int(node.value))

    scalar.coerce_output_value = parse_value
    scalar.coerce_input_value = parse_value
    scalar.coerce_input_literal = parse_literal


def _define_duration(scalar: GraphQLScalarType) -> None:
    """Duration: milliseconds, a non-negative 64-bit integer."""

    def parse_value(value: Any) -> int:
        if type(value) is not int or value not in _INT64 or value < 0:
            raise GraphQLError(
                f"a Duration must be a non-negative integer of milliseconds, not {value!r:.40}"
            )
        return value

    def parse_literal(node: ConstValueNode) -> int:
        if not isinstance(node, IntValueNode):
            raise GraphQLError("a Duration must be an integer")
        return parse_value(int(node.value))

    scalar.coerce_output_value = parse_value
    scalar.coerce_input_value = parse_value
    scalar.coerce_input_literal = parse_literal


class MaxDepthRule(ValidationRule):
    """Refuses operations whose fields nest deeper than MAX_DEPTH (introspection excepted).

    A fragment's depth is worked out once and remembered: expanding every spread anew took time
    exponential in the fragments of a "fragment bomb" (each spreading the next one four times).
    """

    def __init__(self, context: ValidationContext) -> None:
        super().__init__(context)
        self._fragment_depths: dict[str, int] = {}

    def enter_operation_definition(self, node: OperationDefinitionNode, *_args: Any) -> None:
        if self._depth(node.selection_set, set()) > MAX_DEPTH:
            self.report_error(GraphQLError(f"the operation nests fields more than {MAX_DEPTH} deep", node))

    def _depth(self, selection_set: SelectionSetNode, expanding: set[str]) -> int:
        """How many fields deep the selection set goes (1: leaves only); stops once past MAX_DEPTH."""
        deepest = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                if selection.name.value.startswith("__"):  # introspection: bounded by the schema itself
                    continue
                below = selection.selection_set
                depth = 1 + (self._depth(below, expanding) if below is not None else 0)
            elif isinstance(selection, FragmentSpreadNode):
                depth = self._fragment_depth(selection.name.value, expanding)
            elif isinstance(selection, InlineFragmentNode):
                depth = self._depth(selection.selection_set, expanding)
            else:
                continue
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:
                break
        return deepest

    def _fragment_depth(self, name: str, expanding: set[str]) -> int:
        known = self._fragment_depths.get(name)
        if known is not None:
            return known
        fragment = self.context.get_fragment(name)
        if fragment is None or name in expanding:  # unknown or cyclic: other rules report it
            return 0
        expanding.add(name)
        depth = self._depth(fragment.selection_set, expanding)
        expanding.discard(name)
        self._fragment_depths[name] = depth
        return depth
