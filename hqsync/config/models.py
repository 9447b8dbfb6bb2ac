"""Pydantic models of the configuration kinds, one class per YAML mapping.

Field names are the YAML keys. Every model forbids unknown fields and runs in
strict mode, so a YAML 1.1 ``no`` is never silently a string and ``010`` is
never silently an id. Cross-document checks (unique names, references) live
in ``hqsync.config.validate``; these models check one document at a time.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

_INVISIBLE_BMP = (
    r"\u0000-\u001F\u007F-\u009F\u00AD\u0600-\u0605\u061C\u06DD\u070F"
    r"\u0890-\u0891\u08E2\u180E\u200B-\u200F\u2028-\u202E\u2060-\u2064"
    r"\u2066-\u206F\uE000-\uF8FF\uFEFF\uFFF9-\uFFFB"
)
"""The characters of categories Cc, Cf, Zl, Zp and Co below U+10000 (Unicode
14.0), as a regex class; ``name_problem`` checks every plane."""

NAME_PATTERN = (
    rf"^[^\s/{_INVISIBLE_BMP}](?:[^/{_INVISIBLE_BMP}]*[^\s/{_INVISIBLE_BMP}])?$"
)
"""A name: not empty, no slash, no whitespace at either end, no control or
invisible characters; other Unicode is allowed."""

_INVISIBLE_CATEGORIES = {
    "Cc": "a control character",
    "Cf": "an invisible character",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
    "Co": "a private-use character",
    "Cs": "a surrogate code point",
}


def name_problem(name: str) -> str | None:
    """Describe why ``name`` is not a valid name, or return None if it is."""
    for character in name:
        kind = _INVISIBLE_CATEGORIES.get(unicodedata.category(character))
        if kind is not None:
            return f"name contains {describe_character(character)}, {kind}"
    if not name:
        return "a name must not be empty"
    if name != name.strip():
        return "a name does not start or end with whitespace"
    if "/" in name:
        return "a name has no '/'"
    return None


def describe_character(character: str) -> str:
    """Return ``U+200B ZERO WIDTH SPACE``, or only the code point if unnamed."""
    code_point = f"U+{ord(character):04X}"
    label = unicodedata.name(character, "")
    return f"{code_point} {label}" if label else code_point


def printable_name(name: str) -> str:
    """Return ``name`` with control and invisible characters as ``\\uXXXX``."""
    return "".join(
        character.encode("unicode_escape").decode("ascii")
        if unicodedata.category(character) in _INVISIBLE_CATEGORIES
        else character
        for character in name
    )


def _check_name(name: str) -> str:
    # The pattern covers the characters below U+10000; this covers the rest.
    problem = name_problem(name)
    if problem is not None:
        raise ValueError(problem)
    return name


Name = Annotated[
    str,
    Field(min_length=1, max_length=200, pattern=NAME_PATTERN),
    AfterValidator(_check_name),
]
FolderPath = Annotated[str, Field(min_length=1, max_length=1000, pattern=r"^/")]

TRIGGER_TYPES = (
    "isheet_item_added",
    "isheet_item_updated",
    "file_added",
    "file_updated",
)
ISHEET_TRIGGERS = ("isheet_item_added", "isheet_item_updated")
FILE_TRIGGERS = ("file_added", "file_updated")
OPERATORS_WITHOUT_VALUE = ("is_empty", "is_not_empty", "changed")
OPERATORS_NEEDING_PREVIOUS = ("changed", "changed_to")

TriggerType = Literal[
    "isheet_item_added", "isheet_item_updated", "file_added", "file_updated"
]
Operator = Literal[
    "equals",
    "not_equals",
    "in",
    "contains",
    "is_empty",
    "is_not_empty",
    "changed",
    "changed_to",
]
ColumnType = Literal["text", "number", "date", "choice", "user", "checkbox"]
Scalar = str | int | float


LOCATED_CHECKS = "hqsync.located_checks"
"""Validation context key: the caller runs the cross-field checks itself.

The YAML loader sets it and reports those problems at the exact field with
``rule_body_problems`` and ``project_problems``. Other callers leave it out
and get the same checks as a plain ValueError.
"""

FieldPath = tuple[str | int, ...]


def _deferred(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get(LOCATED_CHECKS))


class Model(BaseModel):
    """Base of every config model: strict types, unknown fields rejected."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# Secrets ---------------------------------------------------------------------


class FromEnv(Model):
    """A value read from an environment variable at load time."""

    from_env: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class FromFile(Model):
    """A value read from a file (path relative to the config directory)."""

    from_file: Annotated[str, Field(min_length=1)]


class Generate(Model):
    """A header key the instance generates at create time and shows once."""

    generate: Literal[True]


SecretSource = FromEnv | FromFile
"""The source of a secret; a literal string is never accepted."""


# External services -----------------------------------------------------------


class OAuth2Auth(Model):
    """OAuth 2.0 client-credentials authentication (the only grant allowed)."""

    type: Literal["oauth2"]
    grant_type: Literal["client_credentials"] = "client_credentials"
    token_url: Annotated[str, Field(min_length=1)]
    client_id: Annotated[str, Field(min_length=1)] | SecretSource
    client_secret: SecretSource
    scope: str | None = None
    token_auth_method: Literal["client_secret_post", "client_secret_basic"] = (
        "client_secret_post"
    )


class HeaderAuth(Model):
    """Authentication by a shared key sent as the ``HighQ-Auth-Key`` header."""

    type: Literal["header"]
    key: SecretSource | Generate


Auth = Annotated[OAuth2Auth | HeaderAuth, Field(discriminator="type")]


class ExternalService(Model):
    """An external service that rules notify with a POST."""

    kind: Literal["ExternalService"]
    name: Name
    description: str | None = None
    url: Annotated[str, Field(min_length=1)] | SecretSource
    status: Literal["active", "inactive"] = "active"
    auth: Auth
    ca_bundle: str | None = None
    max_concurrency: Annotated[int, Field(ge=1, le=1000)] | None = None
    timeout_seconds: Annotated[float, Field(gt=0, le=300)] | None = None


# Sites -----------------------------------------------------------------------


class Column(Model):
    """An iSheet column; its order in the list is the column order."""

    name: Name
    title: str | None = None
    type: ColumnType = "text"
    choices: list[str] | None = None

    @model_validator(mode="after")
    def _choices_match_type(self) -> Column:
        if self.type == "choice" and not self.choices:
            raise ValueError("a choice column needs a non-empty 'choices' list")
        if self.type != "choice" and self.choices is not None:
            raise ValueError(
                f"'choices' is only valid on a choice column, not {self.type}"
            )
        return self


class ISheet(Model):
    """An iSheet: a list of items with typed columns."""

    name: Name
    title: str | None = None
    columns: list[Column] = Field(default_factory=list)


class Site(Model):
    """A site with its iSheets and folders, written out or made from a template."""

    kind: Literal["Site"]
    name: Name
    title: str | None = None
    isheets: list[ISheet] = Field(default_factory=list)
    folders: list[FolderPath] = Field(default_factory=list)
    template: Name | None = None
    service_map: dict[str, Name] = Field(default_factory=dict)
    disable_unmapped: bool = False

    @model_validator(mode="after")
    def _template_or_content(self, info: ValidationInfo) -> Site:
        if not _deferred(info):
            for _, message in site_problems(self):
                raise ValueError(message)
        return self


def site_problems(site: Site) -> list[tuple[FieldPath, str]]:
    """Check that template fields and content fields are not mixed."""
    problems: list[tuple[FieldPath, str]] = []
    if site.template is None:
        for name in ("service_map", "disable_unmapped"):
            if getattr(site, name):
                problems.append(((name,), f"'{name}' is only valid with 'template'"))
    else:
        for name in ("isheets", "folders"):
            if getattr(site, name):
                noun = "iSheets" if name == "isheets" else name
                message = (
                    f"a site made from a template takes its {noun} from the "
                    f"template; remove '{name}' or 'template'"
                )
                problems.append(((name,), message))
    return problems


# Rules -----------------------------------------------------------------------


class Trigger(Model):
    """The event that fires a rule: an iSheet item or a file added or updated."""

    type: TriggerType
    isheet: Name | None = None
    folder: FolderPath | None = None

    @model_validator(mode="after")
    def _target_matches_type(self) -> Trigger:
        if self.type in ISHEET_TRIGGERS:
            if self.isheet is None:
                raise ValueError(f"trigger {self.type} needs 'isheet'")
            if self.folder is not None:
                raise ValueError(
                    f"'folder' is only valid on file triggers, not {self.type}"
                )
        elif self.isheet is not None:
            raise ValueError(
                f"'isheet' is only valid on iSheet triggers, not {self.type}"
            )
        return self


class Condition(Model):
    """A test on an iSheet column (iSheet triggers) or a file field (file triggers)."""

    column: Name | None = None
    field: Literal["name", "extension", "folder"] | None = None
    operator: Operator
    value: Scalar | list[Scalar] | None = None

    @model_validator(mode="after")
    def _operands(self) -> Condition:
        if (self.column is None) == (self.field is None):
            raise ValueError("a condition names exactly one of 'column' or 'field'")
        if self.operator in OPERATORS_WITHOUT_VALUE:
            if self.value is not None:
                raise ValueError(f"operator {self.operator} takes no 'value'")
        elif self.operator == "in":
            if not isinstance(self.value, list) or not self.value:
                raise ValueError("operator in needs 'value' as a non-empty list")
        elif self.value is None or isinstance(self.value, list):
            raise ValueError(f"operator {self.operator} needs a single 'value'")
        return self


class SendToExternalService(Model):
    """The webhook action: notify a service with the ids of the changed object."""

    type: Literal["send_to_external_service"]
    service: Name
    columns: list[Name] = Field(default_factory=list)


class InternalAction(Model):
    """Any other HighQ action; hqsync keeps it as configuration only."""

    type: Literal["internal"]
    name: Name
    params: dict[str, Any] = Field(default_factory=dict)


Action = Annotated[SendToExternalService | InternalAction, Field(discriminator="type")]


class RuleBody(Model):
    """A rule without its site: the shape inside a site template."""

    name: Name
    description: str | None = None
    enabled: bool = True
    trigger: Trigger
    conditions: list[Condition] = Field(default_factory=list)
    actions: Annotated[list[Action], Field(min_length=1)]

    @model_validator(mode="after")
    def _conditions_fit_trigger(self, info: ValidationInfo) -> RuleBody:
        if not _deferred(info):
            for _, message in rule_body_problems(self):
                raise ValueError(message)
        return self

    @property
    def rule_type(self) -> str:
        """Derive HighQ's rule type: Internal, External or Internal and External."""
        kinds = {action.type for action in self.actions}
        if kinds == {"internal"}:
            return "Internal"
        if kinds == {"send_to_external_service"}:
            return "External"
        return "Internal and External"


class Rule(RuleBody):
    """A workflow rule on a site."""

    kind: Literal["Rule"]
    site: Name


class Dependency(Model):
    """One line of a template's dependency report."""

    rule: Name
    service: Name
    auth_type: Literal["oauth2", "header"]
    secrets: list[str] = Field(default_factory=list)


class SiteTemplate(Model):
    """A site's iSheets, folders and rules, portable between instances."""

    kind: Literal["SiteTemplate"]
    name: Name
    format_version: Literal[1] = 1
    description: str | None = None
    isheets: list[ISheet] = Field(default_factory=list)
    folders: list[FolderPath] = Field(default_factory=list)
    rules: list[RuleBody] = Field(default_factory=list)
    dependencies: list[Dependency] = Field(default_factory=list)


Resource = Annotated[
    ExternalService | Site | Rule | SiteTemplate, Field(discriminator="kind")
]
KINDS = ("ExternalService", "Site", "Rule", "SiteTemplate")


# The project file ------------------------------------------------------------


class Limits(Model):
    """Instance limits; inactive services do not count."""

    max_active_services: Annotated[int, Field(ge=0)] | None = None


class Safety(Model):
    """Apply's safety threshold, in the style of octoDNS's MAX_SAFE_* checks."""

    max_change_fraction: Annotated[float, Field(gt=0, le=1)] = 0.3
    min_existing: Annotated[int, Field(ge=0)] = 10


class DeliverySettings(Model):
    """Runner settings for one instance."""

    concurrency: Annotated[int, Field(ge=1, le=10_000)] = 200
    per_service_concurrency: Annotated[int, Field(ge=1, le=10_000)] = 50
    timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 30.0
    window_seconds: Annotated[int, Field(ge=1, le=86_400)] = 3600
    lease_seconds: Annotated[int, Field(ge=5, le=3600)] = 60


class Instance(Model):
    """One deployment: where its live state is stored and how it may deliver."""

    store: str | None = None
    url: str | None = None
    token: SecretSource | None = None
    base_url: str | None = None
    timezone: str = "UTC"
    limits: Limits = Field(default_factory=Limits)
    safety: Safety = Field(default_factory=Safety)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    allow_http: bool = False
    allow_networks: list[str] = Field(default_factory=list)
    ca_bundle: str | None = None
    prune: bool = False

    @field_validator("allow_networks")
    @classmethod
    def _networks_parse(cls, networks: list[str]) -> list[str]:
        for network in networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError as exc:
                raise ValueError(f"invalid network {network!r}: {exc}") from None
        return networks

    @model_validator(mode="after")
    def _one_location(self) -> Instance:
        if self.store is not None and self.url is not None:
            raise ValueError("an instance has 'store' or 'url', not both")
        return self


class Project(Model):
    """The project file ``hqsync.yaml``: instances and their variables."""

    default_instance: Name = "local"
    instances: dict[str, Instance] = Field(
        default_factory=lambda: {"local": Instance()}
    )
    variables: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _default_exists(self, info: ValidationInfo) -> Project:
        if not _deferred(info):
            for _, message in project_problems(self):
                raise ValueError(message)
        return self


def rule_body_problems(body: RuleBody) -> list[tuple[FieldPath, str]]:
    """Check that each condition fits the trigger; return (field path, message)."""
    problems: list[tuple[FieldPath, str]] = []
    trigger = body.trigger.type
    for index, condition in enumerate(body.conditions):
        path: FieldPath = ("conditions", index)
        if trigger in FILE_TRIGGERS and condition.column is not None:
            message = f"file triggers test 'field', not 'column' ({trigger})"
            problems.append(((*path, "column"), message))
        if trigger in ISHEET_TRIGGERS and condition.field is not None:
            message = f"iSheet triggers test 'column', not 'field' ({trigger})"
            problems.append(((*path, "field"), message))
        needs_previous = condition.operator in OPERATORS_NEEDING_PREVIOUS
        if needs_previous and trigger != "isheet_item_updated":
            message = (
                f"operator {condition.operator} needs previous values, which only "
                f"isheet_item_updated has, not {trigger}"
            )
            problems.append(((*path, "operator"), message))
    return problems


def project_problems(project: Project) -> list[tuple[FieldPath, str]]:
    """Check that every instance named exists; return (field path, message)."""
    problems: list[tuple[FieldPath, str]] = []
    known = ", ".join(sorted(project.instances)) or "none"
    if project.default_instance not in project.instances:
        message = (
            f"default_instance '{project.default_instance}' is not under "
            f"'instances' (defined: {known})"
        )
        problems.append((("default_instance",), message))
    for name in project.variables:
        if name not in project.instances:
            message = (
                f"variables are set for instance '{name}', which is not under "
                f"'instances' (defined: {known})"
            )
            problems.append((("variables", name), message))
    return problems


DEFAULT_STORE = "sqlite:///.hqsync/{instance}.db"
"""The store of an instance that names none, relative to the working directory."""

CREDENTIAL_QUERY_KEYS = re.compile(
    r"^(sig|signature|token|access_token|key|api[-_]?key|code|password|passwd|secret|"
    r"client_secret|auth)$",
    re.IGNORECASE,
)
"""Query parameters that carry credentials: a URL with one is a secret."""
