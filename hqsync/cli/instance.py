"""The store of the instance a command runs against."""

from __future__ import annotations

from hqsync.config import ProjectContext
from hqsync.config.urls import redact_url
from hqsync.errors import StoreError
from hqsync.store import Store, open_store


def open_instance_store(project: ProjectContext, *, migrate: bool = True) -> Store:
    """Open the store of the chosen instance; a remote instance is an error.

    Remote instances (``url:`` in hqsync.yaml) need ``hqsync serve``, which is
    not built yet, so every command that reads or writes live state stops here
    rather than open a local default store by mistake.
    """
    if project.instance.url is not None:
        raise StoreError(
            f"instance {project.instance_name} is remote (url: "
            f"{redact_url(project.instance.url)}), and remote instances are not "
            "supported yet; run this command on the host that has the store, "
            "with an instance that names it in 'store:'"
        )
    return open_store(project.store_url, migrate=migrate)
