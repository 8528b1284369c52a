"""What the W&B dialect does not serve, said plainly instead of as a schema error.

Artifacts are served (artifacts.graphql) but not all of W&B's: registries, portfolios,
linkArtifact, collection deletion and the like are not. A request asking for such a field or type
is refused with one error naming it, not with "Cannot query field 'linkArtifact' on type
'Mutation'"; the client reports it and the run itself (its rows, its files) goes on. A request
that is invalid for another reason gets the schema's own errors.
"""

from __future__ import annotations

from graphql import DocumentNode, FieldNode, GraphQLError, GraphQLSchema, NamedTypeNode, visit
from graphql.language import Visitor

__all__ = ["unsupported_error"]


class _Names(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def enter_field(self, node: FieldNode, *_args: object) -> None:
        self.names.add(node.name.value)

    def enter_named_type(self, node: NamedTypeNode, *_args: object) -> None:
        self.names.add(node.name.value)


def unsupported_error(document: DocumentNode, schema: GraphQLSchema) -> GraphQLError | None:
    """The error for a request (invalid in both schemas) that asks for a part of W&B's artifacts
    that schema does not have; None if it asks for none."""
    names = _Names()
    visit(document, names)
    known = set(schema.type_map)
    for named in schema.type_map.values():
        known.update(getattr(named, "fields", {}) or {})
    asked = sorted(name for name in names.names - known if "artifact" in name.lower())
    if not asked:
        return None
    return GraphQLError(
        "this part of W&B's artifacts is not served by nbtrack (asked: "
        f"{', '.join(asked[:5])}): log_artifact, use_artifact, Api().artifact, their lineage, alias edits "
        "and deleting a version are; "
        "the run's rows, summary and files are kept"
    )
