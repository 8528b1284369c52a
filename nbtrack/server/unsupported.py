"""What the W&B dialect does not serve yet, said plainly instead of as a schema error.

Artifacts are a separate issue: wandb's `run.log_code()`, `wandb.Table`, `wandb.Artifact` and
`use_artifact` ask for them (`ArtifactType`, `CreateArtifact`, ...). Such a request is refused
with one error naming that, not with "Cannot query field 'artifact' on type 'Project'"; the
client reports it and the run itself (its rows, its files) goes on.
"""

from __future__ import annotations

from graphql import DocumentNode, FieldNode, GraphQLError, NamedTypeNode, visit
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


def unsupported_error(document: DocumentNode) -> GraphQLError | None:
    """The error for a request (invalid in both schemas) that asks for a feature not served yet."""
    names = _Names()
    visit(document, names)
    asked = sorted(name for name in names.names if "artifact" in name.lower())
    if not asked:
        return None
    return GraphQLError(
        "artifacts are not supported by this nbtrack server yet (asked: "
        f"{', '.join(asked[:5])}): run.log_code(), wandb.Table, wandb.Artifact and use_artifact "
        "need them; the run's rows, summary and files are kept"
    )
