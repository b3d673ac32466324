"""One Slack workspace kept in memory: people, channels with members, messages and threads, cursor paging.

Pure data, no HTTP: the caller holds the sandbox's lock, checks the token's scopes, and turns `SlackError`
into Slack's `{"ok": false, "error": ...}`. Visibility follows Slack's rules for a bot: every public channel
is listed, a private one only once the bot is a member; history, threads and posting need membership.
"""

import base64
import binascii
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SlackError", "Workspace"]

TEAM_ID, TEAM_NAME, TEAM_NUMBER = "T0SANDBOX1", "Switchboard Sandbox", "4200000001"
APP_ID, BOT_ID, BOT_USER_ID = "A0SANDBOX1", "B0SANDBOX1", "U0SBBOT001"
INSTALLER = "U0ADA00001"
_MAX_LIMIT = 999
_MAX_TEXT = 40_000


class SlackError(Exception):
    """A Web API failure: Slack's error string, the HTTP status (200 for nearly all) and extra body fields."""

    def __init__(self, error: str, status_code: int = 200, **extra: Any) -> None:
        super().__init__(error)
        self.error, self.status_code, self.extra = error, status_code, extra


@dataclass(slots=True)
class _User:
    id: str
    name: str
    real_name: str
    email: str
    title: str = ""
    tz: str = "Europe/London"
    is_bot: bool = False
    deleted: bool = False
    is_admin: bool = False

    def as_json(self, *, with_email: bool) -> dict[str, Any]:
        profile: dict[str, Any] = {
            "title": self.title,
            "phone": "",
            "skype": "",
            "real_name": self.real_name,
            "real_name_normalized": self.real_name,
            "display_name": self.name,
            "display_name_normalized": self.name,
            "status_text": "",
            "status_emoji": "",
            "avatar_hash": "g" + self.id[-10:].lower(),
            "image_24": f"https://avatars.example.com/{self.id}_24.png",
            "image_72": f"https://avatars.example.com/{self.id}_72.png",
            "team": TEAM_ID,
        }
        if with_email and not self.is_bot:
            profile["email"] = self.email
        return {
            "id": self.id,
            "team_id": TEAM_ID,
            "name": self.name,
            "deleted": self.deleted,
            "color": "9f69e7",
            "real_name": self.real_name,
            "tz": self.tz,
            "tz_label": "Greenwich Mean Time",
            "tz_offset": 0,
            "profile": profile,
            "is_admin": self.is_admin,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": 1_700_000_000,
        }


@dataclass(slots=True)
class _Message:
    ts: str
    user: str
    text: str
    thread_ts: str | None = None  # on a reply: its parent's ts; on a parent with replies: its own ts
    broadcast: bool = False  # a reply also shown in the channel
    replies: list["_Message"] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": "message", "user": self.user, "text": self.text, "ts": self.ts, "team": TEAM_ID}
        if self.user == BOT_USER_ID:
            body["bot_id"] = BOT_ID
        if self.thread_ts is not None:
            body["thread_ts"] = self.thread_ts
        if self.broadcast:
            body["subtype"] = "thread_broadcast"
        if self.replies:
            body |= {
                "reply_count": len(self.replies),
                "reply_users_count": len({r.user for r in self.replies}),
                "latest_reply": self.replies[-1].ts,
                "reply_users": sorted({r.user for r in self.replies}),
                "subscribed": False,
            }
        return body


@dataclass(slots=True)
class _Channel:
    id: str
    name: str
    is_private: bool
    members: set[str]
    topic: str = ""
    purpose: str = ""
    archived: bool = False
    created: int = 1_600_000_000
    messages: list[_Message] = field(default_factory=list)  # top-level and broadcast replies, ts ascending
    by_ts: dict[str, _Message] = field(default_factory=dict)  # every message, replies included

    def as_json(self, viewer: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "is_channel": not self.is_private,
            "is_group": False,
            "is_im": False,
            "is_mpim": False,
            "is_private": self.is_private,
            "created": self.created,
            "is_archived": self.archived,
            "is_general": self.name == "general",
            "unlinked": 0,
            "name_normalized": self.name,
            "is_shared": False,
            "is_org_shared": False,
            "is_pending_ext_shared": False,
            "pending_shared": [],
            "is_ext_shared": False,
            "context_team_id": TEAM_ID,
            "parent_conversation": None,
            "creator": INSTALLER,
            "is_member": viewer in self.members,
            "topic": {"value": self.topic, "creator": INSTALLER if self.topic else "", "last_set": 0},
            "purpose": {"value": self.purpose, "creator": INSTALLER if self.purpose else "", "last_set": 0},
            "previous_names": [],
            "num_members": len(self.members),
        }


def _cursor(kind: str, value: str) -> str:
    return base64.b64encode(f"{kind}:{value}".encode()).decode()


def _uncursor(kind: str, cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        found, _, value = base64.b64decode(cursor, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise SlackError("invalid_cursor") from None
    if found != kind or not value:
        raise SlackError("invalid_cursor")
    return value


def _limit(raw: Any, default: int) -> int:
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise SlackError("invalid_arguments") from None
    return default if value < 1 else min(value, _MAX_LIMIT)


def _ts_bound(raw: Any, error: str) -> float | None:
    if raw in (None, ""):
        return None
    try:
        return float(raw)
    except (TypeError, ValueError):
        raise SlackError(error) from None


def _flag(raw: Any) -> bool:
    return str(raw).lower() in ("1", "true")


def _in_range(ts: str, oldest: float | None, latest: float | None, inclusive: bool) -> bool:
    value = float(ts)
    if oldest is not None and (value < oldest or (value == oldest and not inclusive)):
        return False
    return not (latest is not None and (value > latest or (value == latest and not inclusive)))


class Workspace:
    """A small workspace with people and channels; the bot is in some channels and not in others."""

    def __init__(self, *, seed: bool = True) -> None:
        self.users: dict[str, _User] = {}
        self.channels: dict[str, _Channel] = {}
        # The last ts handed out, in microseconds: seeded messages start a day ago, a minute apart; new ones
        # take the current time, or one microsecond more than the last when the clock has not moved.
        self._last = int(time.time() * 1_000_000) - 86_400_000_000
        if seed:
            _seed(self)

    # -- people ------------------------------------------------------------------------------------------

    def user(self, user_id: str | None, *, with_email: bool) -> dict[str, Any]:
        found = self.users.get(user_id or "")
        if found is None:
            raise SlackError("user_not_found")
        return found.as_json(with_email=with_email)

    def user_by_email(self, email: str | None) -> dict[str, Any]:
        wanted = (email or "").strip().lower()
        for user in self.users.values():
            if user.email.lower() == wanted and wanted and not user.is_bot:
                return user.as_json(with_email=True)
        raise SlackError("users_not_found")

    # -- channels ----------------------------------------------------------------------------------------

    def channel_kind(self, channel_id: str | None, viewer: str) -> bool | None:
        """Whether a channel the viewer can see is private; None when it cannot see it (or it doesn't exist)."""
        channel = self.channels.get(channel_id or "")
        if channel is None or (channel.is_private and viewer not in channel.members):
            return None
        return channel.is_private

    def list_channels(
        self, viewer: str, *, types: Iterable[str], exclude_archived: bool, limit: Any, cursor: str | None
    ) -> dict[str, Any]:
        wanted = set(types)
        after = _uncursor("channel", cursor)
        page_size = _limit(limit, 100)
        visible = [
            c
            for c in sorted(self.channels.values(), key=lambda c: c.id)
            if ("private_channel" if c.is_private else "public_channel") in wanted
            and (not c.is_private or viewer in c.members)
            and not (exclude_archived and c.archived)
            and (after is None or c.id > after)
        ]
        page = visible[:page_size]
        more = len(visible) > page_size
        return {
            "ok": True,
            "channels": [c.as_json(viewer) for c in page],
            "response_metadata": {"next_cursor": _cursor("channel", page[-1].id) if more else ""},
        }

    def _readable(self, channel_id: str | None, viewer: str) -> _Channel:
        if self.channel_kind(channel_id, viewer) is None:
            raise SlackError("channel_not_found")
        channel = self.channels[channel_id or ""]
        if viewer not in channel.members:
            raise SlackError("not_in_channel")
        return channel

    def history(self, channel_id: str | None, viewer: str, params: Mapping[str, Any]) -> dict[str, Any]:
        channel = self._readable(channel_id, viewer)
        before = _uncursor("next_ts", params.get("cursor"))
        oldest = _ts_bound(params.get("oldest"), "invalid_ts_oldest")
        latest = _ts_bound(params.get("latest"), "invalid_ts_latest")
        inclusive = _flag(params.get("inclusive"))
        page_size = _limit(params.get("limit"), 100)
        newest_first = [
            m
            for m in reversed(channel.messages)
            if _in_range(m.ts, oldest, latest, inclusive) and (before is None or float(m.ts) < float(before))
        ]
        page, more = newest_first[:page_size], len(newest_first) > page_size
        return {
            "ok": True,
            "messages": [m.as_json() for m in page],
            "has_more": more,
            "pin_count": 0,
            "channel_actions_ts": None,
            "channel_actions_count": 0,
            "response_metadata": {"next_cursor": _cursor("next_ts", page[-1].ts) if more else ""},
        }

    def replies(self, channel_id: str | None, viewer: str, params: Mapping[str, Any]) -> dict[str, Any]:
        channel = self._readable(channel_id, viewer)
        ts = str(params.get("ts") or "")
        found = channel.by_ts.get(ts)
        if found is None:
            raise SlackError("thread_not_found")
        parent = channel.by_ts[found.thread_ts] if found.thread_ts and found.thread_ts != found.ts else found
        after = _uncursor("next_ts", params.get("cursor"))
        oldest = _ts_bound(params.get("oldest"), "invalid_ts_oldest")
        latest = _ts_bound(params.get("latest"), "invalid_ts_latest")
        inclusive = _flag(params.get("inclusive"))
        page_size = _limit(params.get("limit"), 100)
        replies = [
            r
            for r in parent.replies
            if _in_range(r.ts, oldest, latest, inclusive) and (after is None or float(r.ts) > float(after))
        ]
        # The parent opens the first page and counts towards its limit, as in Slack.
        head = [parent] if after is None else []
        room = max(page_size - len(head), 0)
        page, more = replies[:room], len(replies) > room
        messages = [m.as_json() for m in head + page]
        last = (head + page)[-1].ts
        return {
            "ok": True,
            "messages": messages,
            "has_more": more,
            "response_metadata": {"next_cursor": _cursor("next_ts", last) if more else ""},
        }

    def post(self, channel_id: str | None, author: str, params: Mapping[str, Any]) -> dict[str, Any]:
        channel = self._readable(channel_id, author)
        if channel.archived:
            raise SlackError("is_archived")
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise SlackError("no_text")
        if len(text) > _MAX_TEXT:
            raise SlackError("msg_too_long")
        message = self._append(
            channel, author, text, params.get("thread_ts") or None, _flag(params.get("reply_broadcast"))
        )
        return {"ok": True, "channel": channel.id, "ts": message.ts, "message": message.as_json()}

    def _append(
        self, channel: _Channel, author: str, text: str, thread_ts: Any, broadcast: bool, *, step: int | None = None
    ) -> _Message:
        message = _Message(self._next_ts(step=step), author, text)
        if thread_ts is not None:
            target = channel.by_ts.get(str(thread_ts))
            if target is None:
                raise SlackError("thread_not_found")
            # A reply to a reply joins the parent's thread.
            parent = channel.by_ts[target.thread_ts] if target.thread_ts and target.thread_ts != target.ts else target
            parent.thread_ts = parent.ts
            parent.replies.append(message)
            message.thread_ts = parent.ts
            message.broadcast = broadcast
            if broadcast:
                channel.messages.append(message)
        else:
            channel.messages.append(message)
        channel.by_ts[message.ts] = message
        return message

    # -- seeding -----------------------------------------------------------------------------------------

    def _next_ts(self, *, step: int | None = None) -> str:
        now = int(time.time() * 1_000_000)
        self._last = self._last + step if step is not None else max(now, self._last + 1)
        return f"{self._last // 1_000_000}.{self._last % 1_000_000:06d}"

    def add_user(self, user: _User) -> None:
        self.users[user.id] = user

    def add_channel(self, channel: _Channel) -> None:
        self.channels[channel.id] = channel

    def say(self, channel_id: str, user: str, text: str, *, thread: str | None = None) -> str:
        """Seed one message as `user`, whatever the channel's state; returns its ts."""
        return self._append(self.channels[channel_id], user, text, thread, False, step=60_000_000).ts


def _seed(ws: Workspace) -> None:
    people = [
        _User(INSTALLER, "ada", "Ada Lovelace", "ada@analytical-engines.example.com", "Founder", is_admin=True),
        _User("U0GRACE001", "grace", "Grace Hopper", "grace@navy.example.com", "Rear Admiral", "America/New_York"),
        _User("U0ALAN0001", "alan", "Alan Turing", "alan@bletchley.example.com", "Cryptanalyst"),
        _User("U0KATH0001", "katherine", "Katherine Johnson", "katherine@nasa.example.com", "Mathematician"),
        _User("U0CHAR0001", "charles", "Charles Babbage", "charles@difference.example.com", deleted=True),
        _User(BOT_USER_ID, "switchboard", "Switchboard", "", is_bot=True),
    ]
    for person in people:
        ws.add_user(person)
    humans = {INSTALLER, "U0GRACE001", "U0ALAN0001", "U0KATH0001"}
    bot = {BOT_USER_ID}
    for channel in (
        _Channel("C0GENERAL1", "general", False, humans | bot, "Company-wide announcements", "Everyone is here"),
        _Channel("C0RANDOM01", "random", False, humans | bot, "Non-work banter", "Water cooler"),
        _Channel("C0ENGINE01", "engineering", False, humans | bot, "Ship it", "Engineering discussion"),
        _Channel("C0DESIGN01", "design", False, {INSTALLER, "U0GRACE001"}, "", "The app is not in here"),
        _Channel("C0OLDNEWS1", "old-news", False, humans | bot, "", "Archived long ago", archived=True),
        _Channel("G0LEADERS1", "leadership", True, {INSTALLER, "U0GRACE001"} | bot, "Private", "Leadership team"),
        _Channel("G0PAYROLL1", "payroll", True, {INSTALLER}, "Private", "The app cannot see this one"),
    ):
        ws.add_channel(channel)
    ws.say("C0GENERAL1", INSTALLER, "Welcome to the Switchboard sandbox workspace!")
    launch = ws.say("C0GENERAL1", "U0GRACE001", "The Q3 launch review is on Thursday at 10:00.")
    ws.say("C0GENERAL1", "U0ALAN0001", "Can we move it to 11:00?", thread=launch)
    ws.say("C0GENERAL1", "U0GRACE001", "11:00 works, updated the invite.", thread=launch)
    ws.say("C0GENERAL1", "U0KATH0001", "Reminder: expense reports are due Friday.")
    ws.say("C0RANDOM01", "U0ALAN0001", "Anyone up for chess at lunch?")
    ws.say("C0ENGINE01", "U0KATH0001", "Deploy of build 1.4.2 finished; error rate is flat.")
    ws.say("C0ENGINE01", INSTALLER, "Please review the analytical engine PR before Friday.")
    ws.say("C0DESIGN01", "U0GRACE001", "New logo drafts are in the shared folder.")
    ws.say("C0OLDNEWS1", INSTALLER, "This channel is archived.")
    ws.say("G0LEADERS1", INSTALLER, "Board meeting notes are in the leadership folder.")
    ws.say("G0PAYROLL1", INSTALLER, "Salaries are confidential.")
