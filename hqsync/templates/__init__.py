"""Site templates: carry a site's iSheets, folders and rules to another instance.

:func:`export_template` builds a ``SiteTemplate`` from live state, with a
dependency report of the rules that call external services;
:func:`resolve_services` and :func:`site_file_text` turn a template into the
target's declarative ``kind: Site`` file, which :func:`validate_staged`
checks before anything is written.
"""

from __future__ import annotations

from hqsync.templates.document import (
    FORMAT_VERSION,
    SUPPORTED_FORMAT_VERSIONS,
    dump_documents,
    read_template,
    template_data,
)
from hqsync.templates.export import dependencies_of, export_template
from hqsync.templates.importing import (
    RuleService,
    ServiceResolution,
    check_overwrite,
    resolve_services,
    reuses_template,
    site_file_text,
    template_services,
    validate_staged,
)

__all__ = [
    "FORMAT_VERSION",
    "SUPPORTED_FORMAT_VERSIONS",
    "RuleService",
    "ServiceResolution",
    "check_overwrite",
    "dependencies_of",
    "dump_documents",
    "export_template",
    "read_template",
    "resolve_services",
    "reuses_template",
    "site_file_text",
    "template_data",
    "template_services",
    "validate_staged",
]
