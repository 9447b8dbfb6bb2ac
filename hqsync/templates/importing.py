"""Import a site template: map its services, write the Site file, validate it first.

An import writes the declarative form itself: the ``SiteTemplate`` document
and a ``kind: Site`` with ``template:``, ``service_map:`` and, when asked,
``disable_unmapped:``. The configuration loader expands that Site, so an
import and a hand-written Site give the same sites and rules by construction.
Before the file is written, the whole configuration is loaded from a copy of
the config directory with the new file in place, so a rejected import leaves
nothing behind.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hqsync.config import LoadedConfig, load_config
from hqsync.config.documents import display_path
from hqsync.config.files import MAX_CONFIG_FILE_BYTES, FileReadError, read_limited
from hqsync.config.models import SendToExternalService, SiteTemplate
from hqsync.config.render import literal_data
from hqsync.errors import ConfigError, Problem, TemplateError
from hqsync.store import LiveResource, name_key
from hqsync.templates.document import dump_documents, template_data

log = logging.getLogger(__name__)

STAGING_FOLDER = "_template_import"
"""Folder in the staged copy for a file written outside the config directory."""


@dataclass(frozen=True)
class RuleService:
    """One external action of a template rule and the service it calls on the target."""

    rule: str
    service: str
    target: str | None  # None: unmapped, so the rule is imported disabled
    auth_type: str | None  # the target service's auth type, when known
    expected_auth_type: str | None  # the auth type the template records


@dataclass
class ServiceResolution:
    """The mapping of a template's services to the target instance's services."""

    service_map: dict[str, str] = field(default_factory=dict)
    rules: list[RuleService] = field(default_factory=list)

    @property
    def disabled_rules(self) -> list[str]:
        """Return the rules imported disabled because a service has no mapping."""
        names = [entry.rule for entry in self.rules if entry.target is None]
        return list(dict.fromkeys(names))


def template_services(template: SiteTemplate) -> dict[str, list[str]]:
    """Map each service a template's rules call to the rules that call it."""
    used: dict[str, list[str]] = {}
    for rule in template.rules:
        for action in rule.actions:
            if isinstance(action, SendToExternalService):
                rules = used.setdefault(action.service, [])
                if rule.name not in rules:
                    rules.append(rule.name)
    return used


def resolve_services(
    template: SiteTemplate,
    declared: Mapping[str, Any],
    live: list[LiveResource],
    requested: Mapping[str, str],
    *,
    disable_unmapped: bool,
) -> ServiceResolution:
    """Map every service the template uses to a declared service on the target.

    ``declared`` is the target configuration's services by name. A service
    maps to ``requested[service]``, else to a declared service of the same
    name. Raises TemplateError listing every problem: a mapping of a service
    the template does not use, a target that is not declared, and (unless
    ``disable_unmapped``) every rule whose service has no mapping.
    """
    used = template_services(template)
    declared_by_key = {name_key(name): name for name in declared}
    live_by_key = {name_key(r.name): r for r in live if r.kind == "service"}
    requested_by_key = {
        name_key(source): target for source, target in requested.items()
    }
    problems = _mapping_problems(used, declared_by_key, live_by_key, requested)

    resolution = ServiceResolution()
    unmapped: list[str] = []
    expected = {(d.rule, d.service): d.auth_type for d in template.dependencies}
    for service, rules in used.items():
        target = requested_by_key.get(name_key(service))
        if target is None:
            target = declared_by_key.get(name_key(service))
        elif name_key(target) not in declared_by_key:
            continue  # an invalid --map-service, reported by _mapping_problems
        if target is None:
            unmapped.extend(f"    rule '{rule}' calls '{service}'" for rule in rules)
        else:
            target = declared_by_key[name_key(target)]
            resolution.service_map[service] = target
        live_service = live_by_key.get(name_key(target)) if target else None
        auth = _declared_auth(declared, target) or _live_auth(live_service)
        resolution.rules.extend(
            RuleService(rule, service, target, auth, expected.get((rule, service)))
            for rule in rules
        )
    resolution.rules.sort(key=lambda entry: (name_key(entry.rule), entry.service))
    if unmapped and not disable_unmapped:
        problems.append(
            f"{len(unmapped)} external actions call services that have no mapping "
            "on the target instance:\n"
            + "\n".join(unmapped)
            + "\n  Map each service with --map-service OLD=NEW, or pass "
            "--disable-unmapped to import those rules disabled."
        )
    if problems:
        lines = "\n".join(f"  {problem}" for problem in problems)
        raise TemplateError(f"cannot import site template '{template.name}':\n{lines}")
    return resolution


def _mapping_problems(
    used: dict[str, list[str]],
    declared_by_key: dict[str, str],
    live_by_key: dict[str, LiveResource],
    requested: Mapping[str, str],
) -> list[str]:
    problems: list[str] = []
    used_keys = {name_key(service) for service in used}
    for source, target in requested.items():
        if name_key(source) not in used_keys:
            listed = ", ".join(sorted(used)) or "none"
            problems.append(
                f"--map-service {source}={target}: no rule of the template calls "
                f"service '{source}' (services used: {listed})"
            )
        if name_key(target) in declared_by_key:
            continue
        if name_key(target) in live_by_key:
            problems.append(
                f"--map-service {source}={target}: service '{target}' exists on the "
                "target instance but is not declared in its configuration, and a "
                "Site may only call declared services; add its ExternalService "
                "document (hqsync export writes one) and import again"
            )
            continue
        known = ", ".join(sorted(declared_by_key.values())) or "none"
        problems.append(
            f"--map-service {source}={target}: service '{target}' is neither "
            f"declared in the target configuration nor live on the target "
            f"(declared: {known})"
        )
    return problems


def _declared_auth(declared: Mapping[str, Any], target: str | None) -> str | None:
    service = declared.get(target) if target else None
    auth = getattr(service, "auth", None)
    value = getattr(auth, "type", None)
    return str(value) if value is not None else None


def _live_auth(service: LiveResource | None) -> str | None:
    if service is None:
        return None
    auth = service.spec.get("auth") or {}
    return "oauth2" if auth.get("type") == "oauth2" else "header"


def site_file_text(
    template: SiteTemplate,
    site: str,
    title: str | None,
    resolution: ServiceResolution,
    *,
    include_template: bool,
    header: str = "",
) -> str:
    """Return the YAML of the import: the template (unless reused) and its Site."""
    site_document: dict[str, Any] = {"kind": "Site", "name": site}
    if title is not None:
        site_document["title"] = title
    site_document["template"] = template.name
    if resolution.service_map:
        site_document["service_map"] = dict(resolution.service_map)
    if resolution.disabled_rules:
        site_document["disable_unmapped"] = True
    documents = [template_data(template)] if include_template else []
    # The title, site name and service names come from options and from the
    # template file, whose text was rendered already. They are written as
    # literal text so that the loader does not render them again.
    documents.append(literal_data(site_document))
    return dump_documents(documents, header)


def reuses_template(
    config: LoadedConfig, template: SiteTemplate, out_file: Path
) -> bool:
    """Tell whether the target already declares this template in another file.

    Raises TemplateError when it declares a different template of that name.
    """
    existing = _by_name_key(config.templates, template.name)
    if existing is None:
        return False
    file, line, column = config.location("SiteTemplate", existing.name)
    if _same_file(Path(file), out_file):
        return False
    if existing == template:
        return True
    raise TemplateError(
        f"site template '{template.name}' is already declared at {file}:{line}:"
        f"{column} with other content; rename the template in the imported file "
        "(its 'name') or remove the old one"
    )


def _by_name_key(items: Mapping[str, SiteTemplate], name: str) -> SiteTemplate | None:
    for key, value in items.items():
        if name_key(key) == name_key(name):
            return value
    return None


def _same_file(first: Path, second: Path) -> bool:
    return first.resolve() == second.resolve()


def check_overwrite(out_file: Path, site: str) -> None:
    """Raise TemplateError unless ``out_file`` is absent or an import of ``site``."""
    if not out_file.exists():
        return
    rejection = (
        f"{out_file} already exists and is not an earlier import of site '{site}'; "
        "choose another --out or remove the file"
    )
    try:
        text = read_limited(out_file, MAX_CONFIG_FILE_BYTES).decode("utf-8")
        documents = list(yaml.safe_load_all(text))
    except (OSError, FileReadError, UnicodeDecodeError, yaml.YAMLError):
        raise TemplateError(rejection) from None
    kinds = [d.get("kind") if isinstance(d, dict) else None for d in documents]
    sites = [d for d in documents if isinstance(d, dict) and d.get("kind") == "Site"]
    if set(kinds) - {"Site", "SiteTemplate"} or len(sites) != 1:
        raise TemplateError(rejection)
    name = sites[0].get("name")
    if "template" not in sites[0]:
        raise TemplateError(rejection)
    if not isinstance(name, str) or name_key(name) != name_key(site):
        raise TemplateError(rejection)


def validate_staged(
    config_dir: Path,
    out_file: Path,
    text: str,
    *,
    instance: str | None,
    cli_vars: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
) -> None:
    """Load the configuration as it will be with ``text`` at ``out_file``.

    The load runs on a copy of ``config_dir``, so nothing is written when it
    fails. Problems are reported at the real paths.
    """
    relative = _relative_to(out_file, config_dir)
    with _staging_folder(config_dir) as staging:
        stage = Path(staging)
        try:
            # The loader never reads .git, and it can be large when the config
            # directory is a repository's root.
            shutil.copytree(
                config_dir,
                stage,
                symlinks=False,
                dirs_exist_ok=True,
                ignore=shutil.ignore_patterns(".git"),
            )
            target = stage / (relative or Path(STAGING_FOLDER) / out_file.name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise TemplateError(
                f"cannot copy {config_dir} to check the import: {exc}"
            ) from None
        try:
            load_config(stage, instance, cli_vars, environ)
        except ConfigError as exc:
            problems = [_moved(p, stage, config_dir, out_file) for p in exc.problems]
            raise ConfigError(problems) from None


def _staging_folder(config_dir: Path) -> tempfile.TemporaryDirectory[str]:
    # A sibling of the config directory, so that a relative from_file path
    # such as ../secrets/key resolves to the same file from the copy.
    try:
        return tempfile.TemporaryDirectory(
            prefix=".hqsync-import-", dir=config_dir.resolve().parent
        )
    except OSError as exc:
        # NOTE: from this fallback, a relative from_file path that leaves the
        # config directory does not resolve, so the check reports it missing.
        log.warning(
            "cannot create a staging folder beside %s (%s); using the system "
            "temporary folder",
            config_dir,
            exc,
        )
        return tempfile.TemporaryDirectory(prefix="hqsync-import-")


def _relative_to(path: Path, folder: Path) -> Path | None:
    try:
        return path.resolve().relative_to(folder.resolve())
    except ValueError:
        return None


def _moved(problem: Problem, stage: Path, config_dir: Path, out_file: Path) -> Problem:
    # Report problems at the real paths, not in the temporary copy.
    try:
        relative = Path(problem.file).resolve().relative_to(stage.resolve())
    except ValueError:
        return problem
    if relative.parts[:1] == (STAGING_FOLDER,):
        file = str(out_file)
    else:
        file = str(config_dir / relative)
    return Problem(
        file,
        problem.line,
        problem.column,
        _unstaged(problem.message, stage, config_dir, out_file),
    )


def _unstaged(message: str, stage: Path, config_dir: Path, out_file: Path) -> str:
    # Messages may cite another document's location as (file:line:column).
    staged_file = stage / STAGING_FOLDER / out_file.name
    for staged, real in ((staged_file, out_file), (stage, config_dir)):
        for form in {display_path(staged), str(staged), str(staged.resolve())}:
            message = message.replace(form, str(real))
    return message
