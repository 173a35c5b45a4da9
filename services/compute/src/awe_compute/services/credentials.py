"""Credentials delegated by a submitter to the workers that make their products.

A product made for a user belongs to that user (issue 15), so the worker must register it
as them, yet must not hold their own token (which may do everything they may: create
tokens, curate, submit more work) nor act as an all-powerful service account. At
submission the compute service uses the caller's token once to create a token of scope
``make`` for the caller (``awecore.server.auth``: it may read what they may read, store
files and register objects, and nothing else) that expires after
``delegation_seconds``. The jobs keep it encrypted (Fernet, with the compute service's
key) so that the jobs table alone gives nobody a usable token; the API never returns it.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib

from cryptography.fernet import Fernet, InvalidToken

from awecore.client import AsyncCatalogClient
from awecore.errors import Unauthorized

from ..config import ComputeSettings

__all__ = ["Delegation"]


class Delegation:
    def __init__(self, catalog_url: str, key: str, lifetime: dt.timedelta) -> None:
        self.catalog_url = catalog_url
        # any string is a key: its SHA-256 is the 32 bytes Fernet wants
        self._fernet = Fernet(base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest()))
        self.lifetime = lifetime

    @classmethod
    def of(cls, settings: ComputeSettings) -> Delegation:
        """The API's and the workers' (they share the key: the settings' or the service
        token's)."""
        return cls(settings.catalog_url, settings.sealing_key(),
                   dt.timedelta(seconds=settings.delegation_seconds))

    async def mint(self, token: str, label: str) -> str:
        """A new ``make`` token of the caller of ``token``, encrypted for the jobs table."""
        catalog = AsyncCatalogClient(self.catalog_url, token)
        try:
            made = await catalog.request("POST", "/tokens", json={
                "label": label[:200], "scope": "make",
                "expires": (dt.datetime.now(dt.UTC) + self.lifetime).isoformat()})
        finally:
            await catalog.aclose()
        return self._fernet.encrypt(str(made["token"]).encode()).decode()

    def open(self, sealed: str) -> str:
        """The token in a job's credential; Unauthorized if this key did not seal it (the
        key changed since the job was submitted: resubmit it)."""
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise Unauthorized("this job's delegated credential cannot be read with the "
                               "compute service's present key: submit the target again") from None
