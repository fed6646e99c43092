"""The identity layer's errors, with IAM's codes: the IAM API answers them as they are, the CLI
prints their message, the control socket passes their code."""

from __future__ import annotations

from appliance.engine.errors import StowageError


class NoSuchEntity(StowageError):
    """The request referenced a resource entity that does not exist."""

    code = "NoSuchEntity"


class EntityAlreadyExists(StowageError):
    """The request was rejected because it attempted to create a resource that already exists."""

    code = "EntityAlreadyExists"


class LimitExceeded(StowageError):
    """The request was rejected because it attempted to create resources beyond the current quotas."""

    code = "LimitExceeded"


class DeleteConflict(StowageError):
    """The request was rejected because it attempted to delete a resource that has subordinate entities."""

    code = "DeleteConflict"


class MalformedPolicyDocument(StowageError):
    """The policy document is malformed."""

    code = "MalformedPolicyDocument"


class ValidationError(StowageError):
    """A parameter does not satisfy its constraints (IAM's pattern and length checks)."""

    code = "ValidationError"


class InvalidInput(StowageError):
    """The request was rejected because an invalid or out-of-range value was supplied for an input parameter."""

    code = "InvalidInput"


class UnmodifiableEntity(StowageError):
    """The request was rejected because it attempted to change an entity that cannot be changed."""

    code = "UnmodifiableEntity"
