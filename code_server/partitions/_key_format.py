"""Formatting wall times as partition keys with a strftime format, and parsing keys back, fast.

``datetime.strftime`` and ``strptime`` cost microseconds per key, which would dominate generating
tens of thousands of keys. A format is therefore split into a *date part* (directives that depend
on the day only) and a *time part* (directives that depend on the time of day only), each rendered
once per day or per time of day and concatenated. The date parts of a run of days are built a month
at a time, from the month's text around an open day of the month. Numeric directives
(``%Y %m %d %H %M %S``) are rendered with ``%``-formatting rather than strftime. Keys in the default
formats are parsed with ``date.fromisoformat``/``datetime.fromisoformat`` (C speed), other
all-numeric formats with one regular expression, anything else with ``strptime``. Formats the fast
paths cannot split (directives of both kinds interleaved, UTC offsets, whole-datetime directives)
use ``strftime``/``strptime`` for every key, which is always correct.

A parsed key may carry an explicit UTC offset: from ``%z`` in the format, or as the suffix that
time-window partitions append to the second of two equal wall times on a fall-back day.
"""

from __future__ import annotations

import re
from calendar import monthrange
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from operator import attrgetter

from code_server.partitions._cron_grid import EPOCH_ORDINAL, SECONDS_PER_DAY, wall_of

_DATE_DIRECTIVES = frozenset("YmdyjaAbBhUWuwGgVCDFxe")
_MONTH_DIRECTIVES = frozenset("YybBhCm")  # depend on the year and month only
_TIME_DIRECTIVES = frozenset("HMSIpfRTXklPr")
_OFFSET_DIRECTIVES = frozenset("zZ")
_NUMERIC = {
    "Y": (4, "year"),
    "m": (2, "month"),
    "d": (2, "day"),
    "H": (2, "hour"),
    "M": (2, "minute"),
    "S": (2, "second"),
}
_TOKEN = re.compile(r"%(.?)", re.DOTALL)
_SUFFIX = re.compile(r"([+-])(\d\d)(\d\d)(\d\d)?", re.ASCII)
_DAYS_OF_MONTH = [f"{day:02d}" for day in range(32)]
_EPOCH = datetime(1970, 1, 1)
_ONE_SECOND = timedelta(seconds=1)
#: Wall time of 1000-01-01: strftime renders earlier years with fewer than four digits, so the
#: exact parsers (which expect four) only vouch for later keys.
EXACT_FROM_WALL = (date(1000, 1, 1).toordinal() - EPOCH_ORDINAL) * SECONDS_PER_DAY
_date_from_iso = date.fromisoformat
_datetime_from_iso = datetime.fromisoformat

#: A token of a format: ``("", text)`` for literal text, ``(letter, "%letter")`` for a directive.
Token = tuple[str, str]


def offset_suffix(offset: int) -> str:
    """``offset`` (seconds east of UTC) as ``%z`` renders it: ``-0600``, ``+0530``, ``+001730``."""
    sign = "-" if offset < 0 else "+"
    hours, rest = divmod(abs(offset), 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{sign}{hours:02d}{minutes:02d}{seconds:02d}" if seconds else f"{sign}{hours:02d}{minutes:02d}"


def _parse_suffix(text: str) -> int | None:
    match = _SUFFIX.fullmatch(text)
    if match is None:
        return None
    sign, hours, minutes, seconds = match.groups()
    offset = int(hours) * 3600 + int(minutes) * 60 + int(seconds or 0)
    return -offset if sign == "-" else offset


def _tokenize(fmt: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    for match in _TOKEN.finditer(fmt):
        if match.start() > position:
            tokens.append(("", fmt[position : match.start()]))
        letter = match.group(1)
        tokens.append(("", "%") if letter == "%" else (letter or "?", match.group(0)))
        position = match.end()
    if position < len(fmt):
        tokens.append(("", fmt[position:]))
    return tokens


class _Fragment:
    """A run of tokens of a format, rendered from a date, a time or a datetime."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.kinds = [kind for kind, _ in tokens if kind]
        self.strftime_format = "".join(text if kind else text.replace("%", "%%") for kind, text in tokens)
        numeric = all(kind in _NUMERIC for kind in self.kinds)
        self._percent_format = (
            "".join(f"%0{_NUMERIC[kind][0]}d" if kind else text.replace("%", "%%") for kind, text in tokens)
            if numeric
            else None
        )
        attributes = [_NUMERIC[kind][1] for kind in self.kinds] if numeric else []
        self._values: Callable[[object], object] = (
            attrgetter(*attributes) if attributes else (lambda moment: ())
        )
        self._has_year = "Y" in self.kinds

    def render(self, moment: date | time) -> str:
        if self._percent_format is not None and not (self._has_year and moment.year < 1000):  # type: ignore[union-attr]
            return self._percent_format % self._values(moment)
        return moment.strftime(self.strftime_format)


class KeyFormat:
    """A strftime format for partition keys, compiled for fast formatting and parsing."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        tokens = _tokenize(fmt)
        kinds = [kind for kind, _ in tokens if kind]
        if not kinds:
            raise ValueError(f"format {fmt!r} has no date or time directive, so every key would be the same")
        #: Keys carry their own UTC offset (``%z``/``%Z``), so a repeated wall time needs no suffix.
        self.uses_offset = any(kind in _OFFSET_DIRECTIVES for kind in kinds)
        #: Whether a key is a date part and a time part, rendered separately (``date_first`` says
        #: which comes first); if not, every key is rendered with strftime.
        self.splits = False
        self.date_first = True
        date_tokens: list[Token] = []
        time_tokens: list[Token] = []
        date_positions = [i for i, (kind, _) in enumerate(tokens) if kind in _DATE_DIRECTIVES]
        time_positions = [i for i, (kind, _) in enumerate(tokens) if kind in _TIME_DIRECTIVES]
        if len(date_positions) + len(time_positions) == len(kinds):
            if not time_positions or (date_positions and date_positions[-1] < time_positions[0]):
                cut = date_positions[-1] + 1 if time_positions else len(tokens)
                date_tokens, time_tokens = tokens[:cut], tokens[cut:]
                self.splits = True
            elif not date_positions or time_positions[-1] < date_positions[0]:
                cut = time_positions[-1] + 1
                time_tokens, date_tokens = tokens[:cut], tokens[cut:]
                self.splits, self.date_first = True, False
        self._date = _Fragment(date_tokens)
        self._time = _Fragment(time_tokens)
        self._month_template = self._split_at_day(date_tokens)
        self._time_parts: dict[int, str] = {}
        self._parser = _KeyParser(fmt, tokens, self.uses_offset)
        self.parse = self._parser.parse
        #: If nonzero, keys parse exactly: a key is the key of wall time ``w`` exactly when
        #: ``exact_wall(key)`` is ``w`` truncated to this many seconds.
        self.exact_unit = self._parser.exact_unit
        #: Parses an unsuffixed key exactly to its wall time (None if it does not, or is before
        #: year 1000); None when the format has no exact parser.
        self.exact_wall = self._parser.exact_wall

    # -- formatting -----------------------------------------------------------------------------

    def format_wall(self, wall: int) -> str:
        """The key of the naive wall time ``wall`` (for formats without ``%z``/``%Z``)."""
        if not self.splits:
            return (_EPOCH + timedelta(seconds=wall)).strftime(self.fmt)
        day, time_of_day = divmod(wall, SECONDS_PER_DAY)
        day_part = self.day_part(day)
        time_part = self._time_parts.get(time_of_day)
        if time_part is None:
            time_part = self.time_part(time_of_day)
        return day_part + time_part if self.date_first else time_part + day_part

    def day_part(self, day: int) -> str:
        """The date part of keys on ``day`` (days since 1970-01-01)."""
        return self._date.render(date.fromordinal(day + EPOCH_ORDINAL)) if self._date.tokens else ""

    def time_part(self, time_of_day: int) -> str:
        """The time part of keys at ``time_of_day`` seconds after midnight (cached)."""
        text = self._time_parts.get(time_of_day)
        if text is None:
            hour, rest = divmod(time_of_day, 3600)
            text = self._time.render(time(hour, *divmod(rest, 60))) if self._time.tokens else ""
            self._time_parts[time_of_day] = text
        return text

    def day_parts(self, first_day: int, stop_day: int) -> list[str]:
        """The date parts of the days ``first_day`` to ``stop_day - 1``, built a month at a time."""
        if not self._date.tokens:
            return [""] * (stop_day - first_day)
        if self._month_template is None:
            return [self.day_part(day) for day in range(first_day, stop_day)]
        before_day, after_day, has_day = self._month_template
        parts: list[str] = []
        day = first_day
        while day < stop_day:
            today = date.fromordinal(day + EPOCH_ORDINAL)
            count = min(stop_day - day, monthrange(today.year, today.month)[1] - today.day + 1)
            first_of_month = today.replace(day=1)
            prefix = before_day.render(first_of_month)
            if not has_day:
                parts.extend([prefix] * count)
            else:
                suffix = after_day.render(first_of_month)
                days = _DAYS_OF_MONTH[today.day : today.day + count]
                parts.extend(
                    [prefix + text + suffix for text in days] if suffix else [prefix + text for text in days]
                )
            day += count
        return parts

    @staticmethod
    def _split_at_day(date_tokens: list[Token]) -> tuple[_Fragment, _Fragment, bool] | None:
        """The date part around its one ``%d``, if every other directive depends on the month only."""
        kinds = [kind for kind, _ in date_tokens if kind]
        if not all(kind in _MONTH_DIRECTIVES or kind == "d" for kind in kinds) or kinds.count("d") > 1:
            return None
        if "d" not in kinds:
            return _Fragment(date_tokens), _Fragment([]), False
        cut = next(i for i, (kind, _) in enumerate(date_tokens) if kind == "d")
        return _Fragment(date_tokens[:cut]), _Fragment(date_tokens[cut + 1 :]), True


class _KeyParser:
    """Reads keys back to ``(wall time, explicit UTC offset or None)``."""

    def __init__(self, fmt: str, tokens: list[Token], uses_offset: bool) -> None:
        self.fmt = fmt
        self.uses_offset = uses_offset
        kinds = [kind for kind, _ in tokens if kind]
        self._pattern: re.Pattern[str] | None = None
        self._fields: tuple[str, ...] = ()
        if fmt == "%Y-%m-%d":
            self.mode, self.exact_unit = "iso-date", SECONDS_PER_DAY
        elif len(fmt) == 14 and fmt.startswith("%Y-%m-%d") and fmt.endswith("%H:%M") and fmt[8] in "-T _/":
            self.mode, self.exact_unit = "iso-minute", 60
        elif all(kind in _NUMERIC for kind in kinds) and len(set(kinds)) == len(kinds):
            self.mode = "numeric"
            pattern = "".join(
                rf"(\d{{{_NUMERIC[kind][0]}}})" if kind else re.escape(text) for kind, text in tokens
            )
            self._pattern = re.compile(pattern + r"([+-]\d{4}(?:\d\d)?)?", re.ASCII)
            self._fields = tuple(kinds)
            units = {"Ymd": SECONDS_PER_DAY, "YmdH": 3600, "YmdHM": 60, "YmdHMS": 1}
            self.exact_unit = next((unit for chain, unit in units.items() if set(kinds) == set(chain)), 0)
        else:
            self.mode, self.exact_unit = "strptime", 0
        self.exact_wall = self._exact_parser() if self.exact_unit else None

    def parse(self, key: str) -> tuple[int, int | None] | None:
        """``(wall time, explicit UTC offset or None)`` of ``key``, or None if it does not parse.

        Parsing may accept keys that formatting would not produce (``strptime`` is lenient), so
        callers compare the key of the parsed time with the input.
        """
        mode, length = self.mode, len(key)
        if mode == "iso-date" and length in (10, 15) and key[4] == "-" and key[7] == "-":
            try:
                wall = (_date_from_iso(key[:10]).toordinal() - EPOCH_ORDINAL) * SECONDS_PER_DAY
            except ValueError:
                return None
            return self._with_suffix(wall, key[10:])
        if mode == "iso-minute" and length in (16, 21) and key[10] == self.fmt[8] and key[13] == ":":
            try:
                wall = wall_of(_datetime_from_iso(key[:16]))
            except ValueError:
                return None
            return self._with_suffix(wall, key[16:])
        if mode == "numeric":
            assert self._pattern is not None
            match = self._pattern.fullmatch(key)
            if match is not None:
                return self._numeric(match)
        return self._strptime(key)

    @staticmethod
    def _with_suffix(wall: int, suffix: str) -> tuple[int, int | None] | None:
        if not suffix:
            return wall, None
        offset = _parse_suffix(suffix)
        return None if offset is None else (wall, offset)

    def _numeric(self, match: re.Match[str]) -> tuple[int, int | None] | None:
        values = {"Y": 1900, "m": 1, "d": 1, "H": 0, "M": 0, "S": 0}  # strptime's defaults
        groups = match.groups()
        values.update((field, int(text)) for field, text in zip(self._fields, groups, strict=False))
        if values["H"] > 23 or values["M"] > 59 or values["S"] > 59:
            return None
        try:
            day = date(values["Y"], values["m"], values["d"]).toordinal() - EPOCH_ORDINAL
        except ValueError:
            return None
        wall = day * SECONDS_PER_DAY + values["H"] * 3600 + values["M"] * 60 + values["S"]
        return self._with_suffix(wall, groups[-1] or "")

    def _strptime(self, key: str) -> tuple[int, int | None] | None:
        try:
            moment = datetime.strptime(key, self.fmt)
        except ValueError:
            if self.uses_offset:
                return None
            try:
                moment = datetime.strptime(key, self.fmt + "%z")
            except ValueError:
                return None
        offset = moment.utcoffset()
        return wall_of(moment), None if offset is None else offset // _ONE_SECOND

    def _exact_parser(self) -> Callable[[str], int | None]:
        """The hot path of reading keys: no tuples, no suffixes, one C-level parse where possible."""
        if self.mode == "iso-date":

            def exact_date(key: str) -> int | None:
                if len(key) != 10 or key[4] != "-" or key[7] != "-":
                    return None
                try:
                    wall = (_date_from_iso(key).toordinal() - EPOCH_ORDINAL) * SECONDS_PER_DAY
                except ValueError:
                    return None
                return wall if wall >= EXACT_FROM_WALL else None

            return exact_date
        if self.mode == "iso-minute":
            separator = self.fmt[8]

            def exact_minute(key: str) -> int | None:
                if len(key) != 16 or key[10] != separator or key[4] != "-" or key[13] != ":":
                    return None
                try:
                    moment = _datetime_from_iso(key)
                except ValueError:
                    return None
                wall = (
                    (moment.toordinal() - EPOCH_ORDINAL) * SECONDS_PER_DAY
                    + moment.hour * 3600
                    + moment.minute * 60
                )
                return wall if wall >= EXACT_FROM_WALL else None

            return exact_minute

        def exact_numeric(key: str) -> int | None:
            parsed = self.parse(key)
            if parsed is None or parsed[1] is not None or parsed[0] < EXACT_FROM_WALL:
                return None
            return parsed[0]

        return exact_numeric
