"""What a GraphQL query may ask for: its size, its repeats and its cost, all checked before it runs.

The depth limit (graphql_schema.py) bounds nesting; these bound breadth:
- the query text (MAX_QUERY_CHARS) and its selections (MAX_SELECTIONS, counted as written),
  checked before validation, whose overlapping-fields rule is quadratic in repeats of a name;
- repeats of one field in one selection set, with or without aliases (MAX_SAME_FIELD): aliases
  would otherwise make one request read the same history a thousand times;
- the cost (MAX_COST), with fragments expanded: each field costs 1, a heavy one more (WEIGHTS,
  plus one per SIZE_UNIT of its samples/limit/points argument), and a list of objects costs its
  fields once per item: `first` items if given, else a guess at a long list (LIST_GUESS).
The costs are estimates fixed by the query and its variables, so refusing costs no store access.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLArgument,
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_list_type,
)
from graphql.utilities import get_operation_ast

__all__ = [
    "MAX_COST",
    "MAX_QUERY_CHARS",
    "MAX_SAME_FIELD",
    "MAX_SELECTIONS",
    "check_shape",
    "check_text",
    "query_cost",
]

# nbtrack's own queries are under 3,000 characters; W&B's under 10,000.
MAX_QUERY_CHARS = 64 * 1024
# Selections (fields, fragment spreads) as written; the compare page's 10 runs take ~250.
MAX_SELECTIONS = 2000
# The compare page asks for 10 runs in one query (aliases r0..r9).
MAX_SAME_FIELD = 20
# The UI's runs table (1000 runs of 14 fields) costs ~14,000 and an Api().runs() ~23,000.
MAX_COST = 50_000
# They read many rows each: one query reads at most ~50 histories or charts.
WEIGHTS = {"history": 1000, "chart": 1000, "systemChart": 1000, "output": 10, "events": 10}
SIZE_ARGUMENTS = ("samples", "limit", "points")
SIZE_UNIT = 100  # rows (or points) of a size argument that cost one more
# Items a list without `first` is taken to have; others: DEFAULT_GUESS. An artifact version has
# a few aliases and no tags here (W&B's ArtifactFragment asks both of each of 100 versions).
LIST_GUESS = {"runs": 1000, "aliases": 10, "tags": 1}
DEFAULT_GUESS = 100
# W&B's paged connections (`runs(first: N) { edges { node } }`): the list of edges inside has the
# connection's `first` items; a connection that is always (nearly) empty here has its size.
CONNECTION_SIZES = {"teams": 1, "apiKeys": 1}
INTROSPECTION_COST = 100  # a whole __schema or __type, bounded by the (small) schema


def check_text(query: str) -> None:
    """GraphQLError if the query text is longer than MAX_QUERY_CHARS."""
    if len(query) > MAX_QUERY_CHARS:
        raise GraphQLError(f"the query is longer than this server's limit of {MAX_QUERY_CHARS} characters")


def check_shape(document: DocumentNode) -> None:
    """GraphQLError if the document has more selections than MAX_SELECTIONS, or repeats a field
    more than MAX_SAME_FIELD times in one selection set (aliases included)."""
    selections = 0
    stack: list[Any] = list(document.definitions)
    while stack:
        node = stack.pop()
        selection_set: SelectionSetNode | None = getattr(node, "selection_set", None)
        if selection_set is None:
            continue
        selections += len(selection_set.selections)
        if selections > MAX_SELECTIONS:
            raise GraphQLError(f"the query selects more than this server's limit of {MAX_SELECTIONS} fields")
        counts: dict[str, int] = {}
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                name = selection.name.value
                counts[name] = counts.get(name, 0) + 1
                if counts[name] > MAX_SAME_FIELD:
                    raise GraphQLError(
                        f"the query asks for {name!r} more than {MAX_SAME_FIELD} times in one selection "
                        f"(aliases included), over this server's limit of {MAX_SAME_FIELD}",
                        selection,
                    )
            stack.append(selection)


def query_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    limit: int = MAX_COST,
) -> int:
    """The cost of the operation that would run (0 if none would), counted only until it passes limit.

    For a validated document: every field exists and no fragment spreads itself.
    """
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return 0  # no such operation: execution refuses it without running anything
    root = schema.mutation_type if operation.operation == OperationType.MUTATION else schema.query_type
    if root is None:
        return 0
    counter = _Counter(document, operation, variables or {})
    return counter.selections(operation.selection_set, root, limit)


class _Counter:
    def __init__(
        self, document: DocumentNode, operation: OperationDefinitionNode, variables: Mapping[str, Any]
    ) -> None:
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.variables = dict(variables)
        self.page_sizes: list[int | None] = []  # of the connections around the field being counted
        for definition in operation.variable_definitions or ():
            name = definition.variable.name.value
            if name not in self.variables and isinstance(definition.default_value, IntValueNode):
                self.variables[name] = int(definition.default_value.value)

    def selections(self, selection_set: SelectionSetNode, parent: GraphQLObjectType, budget: int) -> int:
        """The cost of a selection set; stops once past budget, so a fragment bomb costs no time."""
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self.field(selection, parent, budget - total)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments.get(selection.name.value)
                if fragment is not None:
                    total += self.selections(fragment.selection_set, parent, budget - total)
            elif isinstance(selection, InlineFragmentNode):
                # The schema has no interfaces or unions: a type condition can only name the parent.
                total += self.selections(selection.selection_set, parent, budget - total)
            if total > budget:
                break
        return total

    def field(self, node: FieldNode, parent: GraphQLObjectType, budget: int) -> int:
        name = node.name.value
        if name.startswith("__"):
            return 1 if name == "__typename" else INTROSPECTION_COST
        definition = parent.fields.get(name)
        if definition is None:
            return 1
        arguments = self.int_arguments(node, {arg: _default(d) for arg, d in definition.args.items()})
        cost = WEIGHTS.get(name, 1)
        for argument in SIZE_ARGUMENTS:
            if argument in arguments:
                cost += math.ceil(max(arguments[argument], 0) / SIZE_UNIT)
        item_type = get_named_type(definition.type)
        if node.selection_set is None or not isinstance(item_type, GraphQLObjectType):
            return cost
        if not is_list_type(get_nullable_type(definition.type)):
            size = arguments.get("first", CONNECTION_SIZES.get(name, LIST_GUESS.get(name)))
            self.page_sizes.append(size)
            try:
                return cost + self.selections(node.selection_set, item_type, budget - cost)
            finally:
                self.page_sizes.pop()
        page = self.page_sizes[-1] if self.page_sizes and name == "edges" else None
        items = arguments.get("first", page if page is not None else LIST_GUESS.get(name, DEFAULT_GUESS))
        items = max(items, 0)
        if items == 0:
            return cost
        # Each item costs the same: count one, within the budget left for one.
        return cost + items * self.selections(node.selection_set, item_type, (budget - cost) // items + 1)

    def int_arguments(self, node: FieldNode, defaults: Mapping[str, Any]) -> dict[str, int]:
        """The field's integer arguments, from literals, variables or the schema's defaults."""
        values = {name: value for name, value in defaults.items() if type(value) is int}
        for argument in node.arguments or ():
            value: Any = None
            if isinstance(argument.value, IntValueNode):
                value = int(argument.value.value)
            elif isinstance(argument.value, VariableNode):
                value = self.variables.get(argument.value.name.value)
            if type(value) is int:
                values[argument.name.value] = value
            else:
                values.pop(argument.name.value, None)  # null, or not an integer: the resolver's default
        return values


def _default(argument: GraphQLArgument) -> int | None:
    """An argument's integer default in the schema (chart's points = 1000), else None."""
    default = getattr(argument, "default", None)  # graphql-core 3.3; 3.2 has default_value only
    if default is None:
        value = getattr(argument, "default_value", None)
        return value if type(value) is int else None
    literal = getattr(default, "literal", None)
    if isinstance(literal, IntValueNode):
        return int(literal.value)
    value = getattr(default, "value", None)
    return value if type(value) is int else None
