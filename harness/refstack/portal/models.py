"""ORM tables of the reference portal (contract sections 2, 4, 9).

Only what a load test touches is modelled; names follow VoxBento's (`events`, `rooms`, `booths`,
`invite_tokens`, `users`, ...) so a reader of the contract finds them.
"""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from ...contract.credentials import INVITE_TOKEN_BYTES, JOIN_CODE_ALPHABET, JOIN_CODE_LENGTH


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def generate_token() -> str:
    """Contract 2: invite tokens are 64 hex chars."""
    return secrets.token_hex(INVITE_TOKEN_BYTES)


def generate_join_code() -> str:
    """Contract 4.1: 6 characters of the join-code alphabet."""
    return "".join(secrets.choice(JOIN_CODE_ALPHABET) for _ in range(JOIN_CODE_LENGTH))


class Base(DeclarativeBase):
    pass


class Event(Base):
    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    display_name: Mapped[str] = mapped_column(String(255))
    join_code: Mapped[str | None] = mapped_column(String(16), nullable=True)
    is_deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    transcription_api_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    rooms: Mapped[list[Room]] = relationship(back_populates="event", cascade="all, delete-orphan", order_by="Room.id")


class Room(Base):
    __tablename__ = "rooms"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), index=True)
    display_name: Mapped[str] = mapped_column(String(255))
    # VoxBento's external (eventyay) room id; before d2bee53 the JSON shortcut's room_id is matched against it.
    eventyay_room_id: Mapped[str | None] = mapped_column(String(200), nullable=True, default=None)
    audio_delay_ms: Mapped[int] = mapped_column(Integer, default=0)  # contract 6.2: 0-10000
    floor_transcription_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # Contract 6.1: listener-data `rooms` carries these two flags and the room's translation languages.
    floor_translation_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    floor_tts_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    event: Mapped[Event] = relationship(back_populates="rooms")
    translation_languages: Mapped[list[TranslationLanguage]] = relationship(
        primaryjoin="Room.id == TranslationLanguage.room_id", order_by="TranslationLanguage.id", viewonly=True
    )
    booths: Mapped[list[Booth]] = relationship(back_populates="room", cascade="all, delete-orphan", order_by="Booth.id")


class Booth(Base):
    __tablename__ = "booths"
    __table_args__ = (UniqueConstraint("room_id", "language_code", name="uq_booth_room_language"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), index=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id"), index=True)
    language_code: Mapped[str] = mapped_column(String(8))
    language_name: Mapped[str] = mapped_column(String(64))
    instance: Mapped[str] = mapped_column(String(16), default="primary")
    transcription_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    transcription_provider: Mapped[str] = mapped_column(String(32), default="local")
    transcription_model: Mapped[str] = mapped_column(String(64), default="tiny")
    broadcast_unlocked: Mapped[bool] = mapped_column(Boolean, default=False)  # contract 8.1: never read for live state
    translation_enabled: Mapped[bool] = mapped_column(Boolean, default=False)  # contract 6.1 listener-data
    room: Mapped[Room] = relationship(back_populates="booths")
    translation_languages: Mapped[list[TranslationLanguage]] = relationship(
        primaryjoin="Booth.id == TranslationLanguage.booth_id", order_by="TranslationLanguage.id", viewonly=True
    )
    tokens: Mapped[list[InviteToken]] = relationship(back_populates="booth", cascade="all, delete-orphan", order_by="InviteToken.id")


class InviteToken(Base):
    __tablename__ = "invite_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token: Mapped[str] = mapped_column(String(64), unique=True, index=True, default=generate_token)
    booth_id: Mapped[int] = mapped_column(ForeignKey("booths.id"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    label: Mapped[str] = mapped_column(String(255), default="")
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    used: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    booth: Mapped[Booth] = relationship(back_populates="tokens")


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(255), unique=True, index=True)
    display_name: Mapped[str] = mapped_column(String(255), default="")
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class AuthToken(Base):
    """Contract 3.3: verification / magic-link / reset tokens (64 hex)."""

    __tablename__ = "auth_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token: Mapped[str] = mapped_column(String(64), unique=True, index=True, default=generate_token)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_type: Mapped[str] = mapped_column(String(32))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
    used: Mapped[bool] = mapped_column(Boolean, default=False)


class Membership(Base):
    """Contract 3.2: event_owner / room_coordinator / interpreter scoped roles of registered users."""

    __tablename__ = "memberships"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id"), nullable=True, index=True)
    room_id: Mapped[int | None] = mapped_column(ForeignKey("rooms.id"), nullable=True)
    booth_id: Mapped[int | None] = mapped_column(ForeignKey("booths.id"), nullable=True)


class TranscriptSegment(Base):
    """Contract 7.4: every final caption with a room id inserts one row (a write)."""

    __tablename__ = "transcript_segments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    booth_id: Mapped[str] = mapped_column(String(128), index=True)
    room_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    language_code: Mapped[str] = mapped_column(String(8))
    segment_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class TranslationLanguage(Base):
    """Contract 6.1: target languages of a booth (or of a room's floor audio), loaded by the listener page."""

    __tablename__ = "translation_languages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    booth_id: Mapped[int | None] = mapped_column(ForeignKey("booths.id"), nullable=True, index=True)
    room_id: Mapped[int | None] = mapped_column(ForeignKey("rooms.id"), nullable=True, index=True)
    language_code: Mapped[str] = mapped_column(String(8))
    language_name: Mapped[str] = mapped_column(String(64))


class WebhookSubscription(Base):
    """Contract 3.8: a developer's webhook target and the event types it wants (comma-separated)."""

    __tablename__ = "webhook_subscriptions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    target_url: Mapped[str] = mapped_column(String(1024))
    event_types: Mapped[str] = mapped_column(Text, default="")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class WebhookDelivery(Base):
    """Contract 14.26: the webhook loop claims pending rows once per second (an UPDATE even when idle)."""

    __tablename__ = "webhook_deliveries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text, default="{}")
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("webhook_subscriptions.id"), nullable=True, index=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
