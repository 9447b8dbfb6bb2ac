"""Checks across documents: unique names, references, URLs, secrets, templates.

Each document has already passed its pydantic model; the checks here need
more than one document or the instance's settings. Every problem is kept, so
the user sees all of them at once.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from hqsync.config.documents import (
    Document,
    Positions,
    lookalike_key,
    name_key,
    suggest,
)
from hqsync.config.models import (
    CREDENTIAL_QUERY_KEYS,
    FILE_TRIGGERS,
    ISHEET_TRIGGERS,
    ExternalService,
    FieldPath,
    FromEnv,
    FromFile,
    HeaderAuth,
    Instance,
    ISheet,
    OAuth2Auth,
    Rule,
    RuleBody,
    SendToExternalService,
    Site,
    SiteTemplate,
)
from hqsync.config.secrets import SecretSourceError, SecretValue, resolve_secret
from hqsync.errors import Problem

Location = tuple[str, int, int]
CHOICE_OPERATORS = ("equals", "not_equals", "changed_to", "in")


@dataclass
class CheckResult:
    """The resources that passed, keyed as LoadedConfig exposes them."""

    services: dict[str, ExternalService] = field(default_factory=dict)
    sites: dict[str, Site] = field(default_factory=dict)
    rules: dict[tuple[str, str], Rule] = field(default_factory=dict)
    templates: dict[str, SiteTemplate] = field(default_factory=dict)
    secrets: dict[tuple[str, str], SecretValue] = field(default_factory=dict)
    locations: dict[tuple[str, tuple[str, ...]], Location] = field(default_factory=dict)


@dataclass
class _Scope:
    """The iSheets and folders a rule may refer to, from a site or a template."""

    name: str
    label: str
    isheets: dict[str, ISheet]
    folders: set[str]
    complete: bool = True


class Checker:
    """Run every cross-document check and collect the problems."""

    def __init__(
        self,
        documents: Sequence[Document],
        instance_name: str,
        instance: Instance,
        config_dir: Path,
        environ: Mapping[str, str],
        invalid: set[tuple[str, str]] | None = None,
    ) -> None:
        self.documents = documents
        # (kind, name key) of documents that failed on their own: references
        # to them are not dangling, so they are not reported twice.
        self.invalid = invalid or set()
        self.instance_name = instance_name
        self.instance = instance
        self.config_dir = config_dir
        self.environ = environ
        self.problems: list[Problem] = []
        self.positions = Positions()
        self.result = CheckResult()
        self._template_rules: dict[str, list[tuple[Document, int, Rule]]] = {}

    def run(self) -> CheckResult:
        """Run every check; the result contains the resources, templates expanded."""
        services = self._unique("ExternalService")
        sites = self._unique("Site")
        templates = self._unique("SiteTemplate")
        rules = self._unique_rules()

        # Duplicates are checked too, so that fixing a name reveals nothing new.
        for document in self._of_kind("ExternalService"):
            self._check_service(document)
        self._check_active_limit(list(services.values()))
        for document in templates.values():
            self._check_template(document)
        scopes: dict[str, _Scope] = {}
        for key, document in sites.items():
            scopes[key] = self._check_site(document, templates, services)
        for document in self._duplicates("Site", sites):
            if document.model.template is None:
                self._check_contents(
                    document, document.model.isheets, document.model.folders
                )
        for document in self._of_kind("Rule"):
            self._check_rule_document(document, scopes, services)

        self._collect(services, sites, templates, rules)
        return self.result

    def _failed(self, kind: str, name: str) -> bool:
        return (kind, name_key(name)) in self.invalid

    def _duplicates(self, kind: str, firsts: dict[str, Document]) -> list[Document]:
        kept = {id(document) for document in firsts.values()}
        return [d for d in self._of_kind(kind) if id(d) not in kept]

    def _of_kind(self, kind: str) -> list[Document]:
        return [document for document in self.documents if document.kind == kind]

    def _add(self, document: Document, path: FieldPath, message: str) -> None:
        self.problems.append(self.positions.problem(document, path, message))

    # Unique names ----------------------------------------------------------

    def _unique(self, kind: str) -> dict[str, Document]:
        # The result is keyed by name_key, which references and the store use.
        # Clashes are found by the wider lookalike_key, so that two lookalike
        # names never both reach the store.
        seen: dict[str, Document] = {}
        lookalikes: dict[str, Document] = {}
        for document in self.documents:
            if document.kind != kind:
                continue
            first = lookalikes.get(lookalike_key(document.name))
            if first is None:
                seen[name_key(document.name)] = document
                lookalikes[lookalike_key(document.name)] = document
                continue
            self._add(document, ("name",), _duplicate(kind, document.name, first))
        return seen

    def _unique_rules(self) -> dict[tuple[str, str], Document]:
        seen: dict[tuple[str, str], Document] = {}
        lookalikes: dict[tuple[str, str], Document] = {}
        for document in self.documents:
            if document.kind != "Rule":
                continue
            key = (name_key(document.model.site), name_key(document.name))
            lookalike = (
                lookalike_key(document.model.site),
                lookalike_key(document.name),
            )
            first = lookalikes.get(lookalike)
            if first is None:
                seen[key] = document
                lookalikes[lookalike] = document
                continue
            site = f" on site '{document.model.site}'"
            self._add(
                document, ("name",), _duplicate("Rule", document.name, first, site)
            )
        return seen

    def _unique_items(
        self,
        document: Document,
        base: FieldPath,
        noun: str,
        names: Iterable[str],
        field_name: str | None,
    ) -> None:
        seen: dict[str, str] = {}
        for index, name in enumerate(names):
            key = lookalike_key(name)
            if key in seen:
                path = (*base, index, field_name) if field_name else (*base, index)
                same = _sameness(name, seen[key])
                message = f"duplicate {noun} '{name}': already in this list{same}"
                self._add(document, path, message)
            else:
                seen[key] = name

    # External services -----------------------------------------------------

    def _check_service(self, document: Document) -> None:
        service: ExternalService = document.model
        self._check_url(document, ("url",), service.url, "url")
        auth = service.auth
        if isinstance(auth, OAuth2Auth):
            self._check_url(
                document, ("auth", "token_url"), auth.token_url, "token_url"
            )
            if isinstance(auth.client_id, FromEnv | FromFile):
                self._secret(
                    document, ("auth", "client_id"), "client_id", auth.client_id
                )
            self._secret(
                document, ("auth", "client_secret"), "client_secret", auth.client_secret
            )
        elif isinstance(auth, HeaderAuth) and isinstance(auth.key, FromEnv | FromFile):
            self._secret(document, ("auth", "key"), "key", auth.key)

    def _check_url(
        self,
        document: Document,
        path: FieldPath,
        url: str | FromEnv | FromFile,
        field_name: str,
    ) -> None:
        if isinstance(url, FromEnv | FromFile):
            secret = self._secret(document, path, field_name, url)
            if secret is not None:
                problem = self._url_problem(
                    secret.reveal(), f"the {field_name} from {secret.source}"
                )
                if problem:
                    self._add(document, path, problem)
            return
        credentials = _credentials_in(url)
        if credentials and field_name == "token_url":
            self._add(
                document,
                path,
                f"token_url carries credentials ({credentials}); remove them, "
                "because the token request sends client_id and client_secret",
            )
            return
        if credentials:
            self._add(
                document,
                path,
                f"{field_name} carries credentials ({credentials}), so it is a secret: "
                "write it as {from_env: NAME} or {from_file: PATH}",
            )
            return
        problem = self._url_problem(url, f"{field_name} '{url}'")
        if problem:
            self._add(document, path, problem)

    def _url_problem(self, url: str, subject: str) -> str | None:
        """Check the scheme and host of ``url``; ``subject`` is safe to print."""
        try:
            parts = urlsplit(url)
            host = parts.hostname
        except ValueError:
            return f"{subject} is not a valid URL"
        allowed = ("https", "http") if self.instance.allow_http else ("https",)
        if parts.scheme not in allowed:
            if parts.scheme == "http":
                return (
                    f"{subject} uses http; use https, or set allow_http: true on "
                    f"instance '{self.instance_name}' for local testing"
                )
            return f"{subject} must be an https URL"
        if not host:
            return f"{subject} has no host"
        return None

    def _secret(
        self,
        document: Document,
        path: FieldPath,
        field_name: str,
        source: FromEnv | FromFile,
    ) -> SecretValue | None:
        try:
            secret = resolve_secret(source, self.environ, self.config_dir)
        except SecretSourceError as exc:
            self._add(document, path, f"{field_name}: {exc}")
            return None
        self.result.secrets[(document.name, field_name)] = secret
        return secret

    def _check_active_limit(self, services: list[Document]) -> None:
        limit = self.instance.limits.max_active_services
        if limit is None:
            return
        active = [d for d in services if d.model.status == "active"]
        if len(active) <= limit:
            return
        over = active[limit]
        self._add(
            over,
            ("status",),
            f"{len(active)} services are active but instance '{self.instance_name}' "
            f"allows {limit} (limits.max_active_services); set status: inactive on "
            "the ones not in use",
        )

    # Sites and templates ---------------------------------------------------

    def _check_contents(
        self, document: Document, isheets: list[ISheet], folders: list[str]
    ) -> _Scope:
        self._unique_items(
            document, ("isheets",), "iSheet", (i.name for i in isheets), "name"
        )
        for index, isheet in enumerate(isheets):
            base = ("isheets", index, "columns")
            self._unique_items(
                document, base, "column", (c.name for c in isheet.columns), "name"
            )
        self._unique_items(document, ("folders",), "folder", folders, None)
        label = f"{document.kind} '{document.name}'"
        return _Scope(document.name, label, {i.name: i for i in isheets}, set(folders))

    def _check_template(self, document: Document) -> None:
        template: SiteTemplate = document.model
        scope = self._check_contents(document, template.isheets, template.folders)
        self._unique_items(
            document, ("rules",), "rule", (r.name for r in template.rules), "name"
        )
        for index, body in enumerate(template.rules):
            self._check_rule(document, ("rules", index), body, scope, None)

    def _check_site(
        self,
        document: Document,
        templates: dict[str, Document],
        services: dict[str, Document],
    ) -> _Scope:
        site: Site = document.model
        if site.template is None:
            return self._check_contents(document, site.isheets, site.folders)
        template_document = templates.get(name_key(site.template))
        if template_document is None and self._failed("SiteTemplate", site.template):
            return _Scope(site.name, f"Site '{site.name}'", {}, set(), complete=False)
        if template_document is None:
            names = [d.name for d in templates.values()]
            self._add(
                document,
                ("template",),
                f"site template '{site.template}' is not defined"
                f"{suggest(site.template, names)}",
            )
            return _Scope(site.name, f"Site '{site.name}'", {}, set(), complete=False)
        template: SiteTemplate = template_document.model
        self._expand(document, template_document, services)
        return _Scope(
            site.name,
            f"Site '{site.name}'",
            {i.name: i for i in template.isheets},
            set(template.folders),
        )

    def _expand(
        self,
        document: Document,
        template_document: Document,
        services: dict[str, Document],
    ) -> None:
        site: Site = document.model
        template: SiteTemplate = template_document.model
        service_names = [d.name for d in services.values()]
        for source, target in site.service_map.items():
            failed = self._failed("ExternalService", target)
            if name_key(target) not in services and not failed:
                self._add(
                    document,
                    ("service_map", source),
                    f"service_map maps '{source}' to '{target}', which is not defined"
                    f"{suggest(target, service_names)}",
                )
        used = {
            action.service
            for body in template.rules
            for action in body.actions
            if isinstance(action, SendToExternalService)
        }
        used_keys = {name_key(name) for name in used}
        for source in site.service_map:
            if name_key(source) not in used_keys:
                self._add(
                    document,
                    ("service_map", source),
                    f"service_map maps '{source}', which no rule of site template "
                    f"'{template.name}' uses (used: {_names(used)})",
                )

        rules: list[tuple[int, Rule]] = []
        unmapped: list[str] = []
        for index, body in enumerate(template.rules):
            rule, missing = self._instantiate(site, body, services)
            unmapped.extend(
                f"rule '{body.name}' (service '{name}')" for name in missing
            )
            rules.append((index, rule))
        if unmapped and not site.disable_unmapped:
            self._add(
                document,
                ("template",),
                f"site template '{template.name}' has rules that call services this "
                f"instance does not define: {', '.join(unmapped)}; map them in "
                "service_map, or set disable_unmapped: true to keep those rules "
                "disabled",
            )
        self._template_rules.setdefault(name_key(site.name), []).extend(
            (template_document, index, rule) for index, rule in rules
        )

    def _instantiate(
        self, site: Site, body: RuleBody, services: dict[str, Document]
    ) -> tuple[Rule, list[str]]:
        # A service maps through service_map, else to a service of the same
        # name; names compare as everywhere else (NFC, case-folded).
        mapping = {name_key(k): v for k, v in site.service_map.items()}
        missing: list[str] = []
        actions: list[Any] = []
        for action in body.actions:
            if not isinstance(action, SendToExternalService):
                actions.append(action)
                continue
            mapped_name = mapping.get(name_key(action.service), action.service)
            declared = services.get(name_key(mapped_name))
            failed = self._failed("ExternalService", mapped_name)
            if declared is not None:
                target = declared.name
            elif name_key(action.service) in mapping or failed:
                target = mapped_name  # a missing service_map target, reported above
            else:
                missing.append(action.service)
                target = action.service
            actions.append(action.model_copy(update={"service": target}))
        fields = {name: getattr(body, name) for name in RuleBody.model_fields}
        fields.update(
            actions=actions,
            enabled=body.enabled and not missing,
        )
        rule = Rule.model_construct(kind="Rule", site=site.name, **fields)
        return rule, missing

    # Rules -----------------------------------------------------------------

    def _check_rule_document(
        self,
        document: Document,
        scopes: dict[str, _Scope],
        services: dict[str, Document],
    ) -> None:
        rule: Rule = document.model
        scope = scopes.get(name_key(rule.site))
        if scope is None and self._failed("Site", rule.site):
            return
        if scope is not None and not scope.complete:
            return
        if scope is None:
            names = [s.name for s in scopes.values()]
            self._add(
                document,
                ("site",),
                f"site '{rule.site}' is not defined{suggest(rule.site, names)}",
            )
            return
        self._check_rule(document, (), rule, scope, services)

    def _check_rule(
        self,
        document: Document,
        base: FieldPath,
        rule: RuleBody,
        scope: _Scope,
        services: dict[str, Document] | None,
    ) -> None:
        trigger = rule.trigger
        isheet: ISheet | None = None
        if trigger.type in ISHEET_TRIGGERS and trigger.isheet is not None:
            isheet = scope.isheets.get(trigger.isheet)
            if isheet is None:
                self._add(
                    document,
                    (*base, "trigger", "isheet"),
                    f"iSheet '{trigger.isheet}' is not defined on {scope.label}"
                    f"{suggest(trigger.isheet, list(scope.isheets))}",
                )
        folder = trigger.folder
        if trigger.type in FILE_TRIGGERS and folder and folder not in scope.folders:
            self._add(
                document,
                (*base, "trigger", "folder"),
                f"folder '{folder}' is not defined on {scope.label}"
                f"{suggest(folder, sorted(scope.folders))}",
            )
        for index, condition in enumerate(rule.conditions):
            self._check_condition(
                document, (*base, "conditions", index), condition, isheet
            )
        for index, action in enumerate(rule.actions):
            if isinstance(action, SendToExternalService):
                path = (*base, "actions", index)
                self._check_action(
                    document, path, action, trigger.type, isheet, services
                )

    def _check_condition(
        self, document: Document, path: FieldPath, condition: Any, isheet: ISheet | None
    ) -> None:
        if isheet is None or condition.column is None:
            return
        columns = {column.name: column for column in isheet.columns}
        column = columns.get(condition.column)
        if column is None:
            self._add(
                document,
                (*path, "column"),
                f"column '{condition.column}' is not defined in iSheet '{isheet.name}'"
                f"{suggest(condition.column, list(columns))}",
            )
            return
        if (
            column.type == "choice"
            and column.choices
            and condition.operator in CHOICE_OPERATORS
        ):
            for position, value in _condition_values(condition.value):
                value_path = (*path, "value", *position)
                if not isinstance(value, str):
                    # Numbers whose text differs were reported while loading.
                    if value_path not in document.numbers:
                        self._add(
                            document,
                            value_path,
                            f"`{value}` is a number, but the choices of column "
                            f"'{column.name}' are text; quote it: '{value}'",
                        )
                elif value not in column.choices:
                    self._add(
                        document,
                        value_path,
                        f"{value!r} is not a choice of column '{column.name}' "
                        f"(choices: {', '.join(column.choices)})",
                    )

    def _check_action(
        self,
        document: Document,
        path: FieldPath,
        action: SendToExternalService,
        trigger_type: str,
        isheet: ISheet | None,
        services: dict[str, Document] | None,
    ) -> None:
        if (
            services is not None
            and name_key(action.service) not in services
            and not self._failed("ExternalService", action.service)
        ):
            names = [d.name for d in services.values()]
            self._add(
                document,
                (*path, "service"),
                f"external service '{action.service}' is not defined"
                f"{suggest(action.service, names)}",
            )
        if trigger_type in FILE_TRIGGERS and action.columns:
            self._add(
                document,
                (*path, "columns"),
                f"'columns' lists iSheet column ids, which trigger {trigger_type} "
                "does not have",
            )
            return
        if isheet is None:
            return
        names = [column.name for column in isheet.columns]
        for index, column in enumerate(action.columns):
            if column not in names:
                self._add(
                    document,
                    (*path, "columns", index),
                    f"column '{column}' is not defined in iSheet '{isheet.name}'"
                    f"{suggest(column, names)}",
                )

    # Results ---------------------------------------------------------------

    def _collect(
        self,
        services: dict[str, Document],
        sites: dict[str, Document],
        templates: dict[str, Document],
        rules: dict[tuple[str, str], Document],
    ) -> None:
        result = self.result
        for document in services.values():
            result.services[document.name] = document.model
            result.locations[("ExternalService", (document.name,))] = _where(document)
        for document in templates.values():
            result.templates[document.name] = document.model
            result.locations[("SiteTemplate", (document.name,))] = _where(document)
        for document in sites.values():
            result.sites[document.name] = self._expanded_site(document, templates)
            result.locations[("Site", (document.name,))] = _where(document)
        for document in rules.values():
            rule: Rule = document.model
            result.rules[(rule.site, rule.name)] = rule
            result.locations[("Rule", (rule.site, rule.name))] = _where(document)
        self._collect_template_rules(sites, rules)

    def _expanded_site(
        self, document: Document, templates: dict[str, Document]
    ) -> Site:
        # NOTE: the copy keeps `template` and gains the template's iSheets and
        # folders, so Site.model_validate(expanded.model_dump()) would reject it.
        site: Site = document.model
        if site.template is None:
            return site
        template_document = templates.get(name_key(site.template))
        if template_document is None:
            return site
        template: SiteTemplate = template_document.model
        return site.model_copy(
            update={"isheets": template.isheets, "folders": template.folders}
        )

    def _collect_template_rules(
        self, sites: dict[str, Document], rules: dict[tuple[str, str], Document]
    ) -> None:
        for site_key, entries in self._template_rules.items():
            site_name = sites[site_key].name
            for template_document, index, rule in entries:
                explicit = rules.get((site_key, name_key(rule.name)))
                file = template_document.file
                line, column = template_document.item_marks[index]
                if explicit is not None:
                    self._add(
                        explicit,
                        ("name",),
                        f"rule '{explicit.name}' on site '{site_name}' is also "
                        f"defined by site template '{template_document.name}' "
                        f"({file}:{line}:{column})",
                    )
                    continue
                self.result.rules[(site_name, rule.name)] = rule
                self.result.locations[("Rule", (site_name, rule.name))] = (
                    file,
                    line,
                    column,
                )


def _where(document: Document) -> Location:
    return (document.file, document.line, document.column)


def _duplicate(kind: str, name: str, first: Document, scope: str = "") -> str:
    return (
        f"duplicate {kind} name '{name}'{scope}: already defined"
        f"{_sameness(name, first.name)} at {first.file}:{first.line}:{first.column}"
    )


def _sameness(name: str, first: str) -> str:
    """Explain why two different spellings count as the same name."""
    if name == first:
        return ""
    if unicodedata.normalize("NFC", name) == unicodedata.normalize("NFC", first):
        return (
            f" as '{first}', the same text in another Unicode normalisation form "
            "(names are compared after NFC normalisation)"
        )
    if name_key(name) == name_key(first):
        return f" as '{first}' (names are compared ignoring case)"
    return (
        f" as '{first}', the same text after Unicode compatibility normalisation "
        "(NFKC), which maps fullwidth and other lookalike forms to plain ones"
    )


def _credentials_in(url: str) -> str | None:
    """Name what makes ``url`` carry credentials, or return None."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.username or parts.password:
        return "user info before the host"
    keys = sorted(
        {
            key
            for key, _ in parse_qsl(parts.query, keep_blank_values=True)
            if CREDENTIAL_QUERY_KEYS.match(key)
        }
    )
    if keys:
        return "query parameter " + ", ".join(f"'{key}'" for key in keys)
    return None


def _condition_values(value: Any) -> list[tuple[tuple[int, ...], Any]]:
    if isinstance(value, list):
        return [((index,), item) for index, item in enumerate(value)]
    if value is None:
        return []
    return [((), value)]


def _names(names: Iterable[str]) -> str:
    return ", ".join(sorted(names)) or "none"
