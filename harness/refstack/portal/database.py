"""Engine, pool and sessions (contract section 9).

VoxBento calls ``create_async_engine(DATABASE_URL)`` with no pool arguments, which gives a QueuePool of
5 + 10 overflow and a 30 s timeout on a SQLite file; here the same numbers are the defaults of knobs so
pool exhaustion can be reproduced quickly. Every unit of work is ``async with get_session()``: a
transaction that commits at block exit, as in VoxBento.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from .config import Settings
from .models import Base

# Contract 14.22: VoxBento's list helpers return at most the first 100 rows (events, rooms, booths, users).
LIST_CAP = 100


class Database:
    def __init__(self, settings: Settings) -> None:
        # hide_parameters: error messages and DEBUG echo must not carry tokens or password hashes.
        kwargs: dict = {"echo": settings.debug, "hide_parameters": True}
        if ":memory:" not in settings.database_url:
            kwargs.update(
                poolclass=AsyncAdaptedQueuePool,
                pool_size=settings.db_pool_size,
                max_overflow=settings.db_max_overflow,
                pool_timeout=settings.db_pool_timeout_s,
            )
        self.engine: AsyncEngine = create_async_engine(settings.database_url, **kwargs)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    async def init_db(self) -> None:
        """Contract 1.3: the schema comes from create_all (VoxBento's migrations fail on fresh SQLite)."""
        async with self.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)

    @contextlib.asynccontextmanager
    async def get_session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as session:
            async with session.begin():
                yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
