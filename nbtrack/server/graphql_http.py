"""POST /graphql: a GraphQL request body in, a status and a JSON body out.

A request GraphQL cannot run at all (not JSON, no query, a syntax or validation error, bad
variables, an unknown operation, over a limit of graphql_cost.py) is a 400 in the error shape.
Once it runs, errors of resolvers travel beside the data, each with extensions.code, as GraphQL
has it; the status is 200 (a NOT_FOUND is an answer), but 400 if an input was refused
(BAD_REQUEST: resending cannot help, and a client that only looks at the status must not take it
for success) and 500 if the server failed (INTERNAL). Blocking (resolvers call the store): run
it in a worker thread.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import orjson
from graphql import ExecutionResult, GraphQLError, execute_sync, parse, specified_rules, validate

from nbtrack import jsonutil
from nbtrack.server.body import parse_object
from nbtrack.server.context import RequestContext
from nbtrack.server.errors import ApiError
from nbtrack.server.graphql_cost import MAX_COST, check_shape, check_text, query_cost
from nbtrack.server.graphql_schema import MaxDepthRule, schema, wandb_schema
from nbtrack.server.unsupported import unsupported_error

__all__ = ["run_graphql"]

log = logging.getLogger("nbtrack.server")

_MAX_TOKENS = 50_000  # far above any real query; bounds the parser's work on junk
_RULES = (*specified_rules, MaxDepthRule)


def run_graphql(body: bytes, context: RequestContext) -> tuple[int, bytes]:
    """(HTTP status, JSON body) answering the GraphQL request in body."""
    request = parse_object(body, "GraphQL request")
    query, variables, operation = request.get("query"), request.get("variables"), request.get("operationName")
    if not isinstance(query, str) or not query.strip():
        raise ApiError("BAD_REQUEST", "the GraphQL request has no 'query' string")
    if variables is not None and not isinstance(variables, dict):
        raise ApiError("BAD_REQUEST", "the GraphQL request's 'variables' must be an object")
    if operation is not None and not isinstance(operation, str):
        raise ApiError("BAD_REQUEST", "the GraphQL request's 'operationName' must be a string")
    # wandb's public API (through wandb-core) sends "" for "no name": the document's one operation.
    # Those requests are read in the W&B dialect first (graphql_schema.py), others in nbtrack's.
    wandb_first = operation == ""
    operation = operation or None
    try:
        check_text(query)
        document = parse(query, max_tokens=_MAX_TOKENS)
        check_shape(document)  # before validation, whose work grows with repeats of a field
    except GraphQLError as exc:  # a syntax error, nesting beyond what the parser allows, too large
        return _errors(400, [exc])
    first, second = (wandb_schema(), schema()) if wandb_first else (schema(), wandb_schema())
    chosen = first
    invalid = validate(chosen, document, _RULES)
    if invalid and not validate(second, document, _RULES):
        chosen, invalid = second, []
    if invalid:
        unsupported = unsupported_error(document, chosen)  # said plainly, not as a schema error
        return _errors(400, [unsupported] if unsupported else invalid)
    cost = query_cost(chosen, document, operation, variables)
    if cost > MAX_COST:
        message = (
            f"the query costs more than this server's limit of {MAX_COST} (each field 1, history and "
            "chart 1000, output and events 10, times the items of each list around it: runs(first: N) "
            "or 1000 runs without first); ask for fewer fields, runs or samples"
        )
        return _errors(400, [GraphQLError(message)])
    result = execute_sync(
        chosen, document, context_value=context, variable_values=variables, operation_name=operation
    )
    errors = result.errors or []
    if result.data is None and errors and all(error.path is None for error in errors):
        return _errors(400, errors)  # the operation did not start: an unknown operation, bad variables
    return _respond(result)


def _respond(result: ExecutionResult) -> tuple[int, bytes]:
    body: dict[str, Any] = {"data": result.data}
    codes = set()
    if result.errors:
        body["errors"] = [_formatted(error, _code(error)) for error in result.errors]
        codes = {error["extensions"]["code"] for error in body["errors"]}
    status = 500 if "INTERNAL" in codes else 400 if "BAD_REQUEST" in codes else 200
    return status, jsonutil.dumps(body)  # a JSON value (W&B's history rows) may hold NaN


def _errors(status: int, errors: Sequence[GraphQLError]) -> tuple[int, bytes]:
    return status, orjson.dumps({"errors": [_formatted(error, "BAD_REQUEST") for error in errors]})


def _code(error: GraphQLError) -> str:
    """The code of an error raised while executing: an ApiError's own, else INTERNAL (and logged)."""
    original = error.original_error
    if isinstance(original, ApiError):
        return original.code
    log.error("GraphQL field %s failed", ".".join(map(str, error.path or ())), exc_info=original or error)
    return "INTERNAL"


def _formatted(error: GraphQLError, code: str) -> dict[str, Any]:
    formatted: dict[str, Any] = dict(error.formatted)
    if code == "INTERNAL":
        formatted["message"] = "the server failed to resolve this field; its log says why"
    formatted["extensions"] = {**formatted.get("extensions", {}), "code": code}
    return formatted
