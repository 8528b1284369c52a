"""What the tracking server keeps in the store: API keys (as hashes, keys.py) and the secrets
every server on one database shares (the signing secret of upload URLs).
"""

from __future__ import annotations

import secrets
import time

from sqlalchemy import func, select

from nbtrack.store.engine import Database
from nbtrack.store.keys import hash_key, new_key, shown_prefix
from nbtrack.store.schema import KeyRow, api_keys, entities, server_secrets

__all__ = ["ServerKeys"]


class ServerKeys(Database):
    """Store's methods for the tracking server's keys and secrets."""

    def create_key(self, entity: str) -> str:
        """A new API key acting as entity; only its hash is stored, so this is the one time it is seen."""
        key = new_key()
        with self._write() as conn:
            entity_id = self._upserts.id_of(conn, entities, {"name": entity}, {})
            conn.execute(
                api_keys.insert().values(
                    entity_id=entity_id,
                    key_hash=hash_key(key),
                    prefix=shown_prefix(key),
                    created_at=time.time(),
                )
            )
        return key

    def entity_for_key(self, key: str) -> str | None:
        """The entity a key acts as, or None for an unknown key."""
        # The lookup is by hash of a high-entropy key: timing reveals nothing an attacker can use.
        stmt = (
            select(entities.c.name)
            .select_from(api_keys.join(entities))
            .where(api_keys.c.key_hash == hash_key(key))
        )
        with self._read() as conn:
            return conn.scalar(stmt)

    def key_count(self) -> int:
        with self._read() as conn:
            return int(conn.scalar(select(func.count()).select_from(api_keys)) or 0)

    def list_keys(self) -> list[KeyRow]:
        stmt = (
            select(entities.c.name, api_keys.c.prefix, api_keys.c.created_at)
            .select_from(api_keys.join(entities))
            .order_by(api_keys.c.created_at)
        )
        with self._read() as conn:
            return [KeyRow(*row) for row in conn.execute(stmt)]

    def server_secret(self, name: str) -> str:
        """The named secret every server on this database shares, created at first use."""
        with self._write() as conn:
            # DO NOTHING: when two servers start at once, the first insert wins and both read it.
            conn.execute(
                self._upserts.insert(server_secrets)
                .values(name=name, value=secrets.token_hex(32))
                .on_conflict_do_nothing(index_elements=[server_secrets.c.name])
            )
            value: str = conn.execute(
                select(server_secrets.c.value).where(server_secrets.c.name == name)
            ).scalar_one()
            return value
