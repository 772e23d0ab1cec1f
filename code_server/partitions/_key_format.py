"""Formatting wall times as partition keys with a strftime format, and parsing keys back, fast.

``datetime.strftime`` and ``strptime`` cost microseconds per key, which dominates generating tens
of thousands of keys. A format is therefore split into a *date part* (directives that depend on the
day only) and a *time part* (directives that depend on the time of day only), each computed once per
day or per time of day and concatenated. The date parts of a run of days are built a month at a time
from a template with the day of the month left open. Numeric directives (``%Y %m %d %H %M %S``) are
rendered with ``%``-formatting instead of strftime. Keys in the default formats are parsed with
``date.fromisoformat``/``datetime.fromisoformat`` (C speed), other all-numeric formats with one
regular expression, and anything else with ``strptime``. Formats that the fast paths cannot split
(directives of both kinds interleaved, UTC offsets, locale-dependent whole-datetime directives)
fall back to ``strftime``/``strptime`` on every key, which is always correct.

A parsed key may carry an explicit UTC offset: either from ``%z`` in the format, or as the suffix
that time-window partitions append to the second of two equal wall times on a fall-back day.
"""

from __future__ import annotations

import re
from calendar import monthrange
from collections.abc import Callable
from datetime import date, datetime, time, timedelta

from code_server.partitions._cron_grid import EPOCH_ORDINAL, SECONDS_PER_DAY

_DATE_DIRECTIVES = frozenset("YmdyjaAbBhUWuwGgVCDFxe")
_MONTH_DIRECTIVES = frozenset("YybBhCm")  # depend on the year and month only
_TIME_DIRECTIVES = frozenset("HMSIpfRTXklPr")
_OFFSET_DIRECTIVES = frozenset("zZ")
_NUMERIC_WIDTHS = {"Y": 4, "m": 2, "d": 2, "H": 2, "M": 2, "S": 2}
_TOKEN = re.compile(r"%(.?)", re.DOTALL)
_DAYS_OF_MONTH = [f"{day:02d}" for day in range(32)]
_EPOCH = datetime(1970, 1, 1)
#: Wall time of 1000-01-01: strftime renders earlier years with fewer than four digits.
EXACT_FROM_WALL = (date(1000, 1, 1).toordinal() - EPOCH_ORDINAL) * SECONDS_PER_DAY
_date_from_iso = date.fromisoformat
_datetime_from_iso = datetime.fromisoformat
_SUFFIX = re.compile(r"([+-])(\d\d)(\d\d)(\d\d)?", re.ASCII)

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
        if letter == "%":
            tokens.append(("", "%"))
        else:
            tokens.append((letter or "?", match.group(0)))
        position = match.end()
    if position < len(fmt):
        tokens.append(("", fmt[position:]))
    return tokens


def _strftime_format(tokens: list[Token]) -> str:
    return "".join(text.replace("%", "%%") if not kind else text for kind, text in tokens)


def _numeric_format(tokens: list[Token]) -> tuple[str, tuple[str, ...]] | None:
    """A ``%``-format and the fields it takes, if every directive is numeric (``%Y %m %d %H %M %S``)."""
    parts: list[str] = []
    fields: list[str] = []
    for kind, text in tokens:
        if not kind:
            parts.append(text.replace("%", "%%"))
        elif kind in _NUMERIC_WIDTHS:
            parts.append(f"%0{_NUMERIC_WIDTHS[kind]}d")
            fields.append(kind)
        else:
            return None
    return "".join(parts), tuple(fields)


class KeyFormat:
    """A strftime format for partition keys, compiled for fast formatting and parsing."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        tokens = _tokenize(fmt)
        kinds = [kind for kind, _ in tokens if kind]
        if not kinds:
            raise ValueError(f"format {fmt!r} has no date or time directive, so every key would be the same")
        #: Keys carry their own UTC offset (``%z``/``%Z``), so ambiguous keys need no suffix.
        self.uses_offset = any(kind in _OFFSET_DIRECTIVES for kind in kinds)
        date_positions = [i for i, (kind, _) in enumerate(tokens) if kind in _DATE_DIRECTIVES]
        time_positions = [i for i, (kind, _) in enumerate(tokens) if kind in _TIME_DIRECTIVES]
        known = len(date_positions) + len(time_positions) == len(kinds)
        #: Whether keys are date part + time part (or time + date) that can be built separately.
        self.splits = False
        self.date_first = True
        date_tokens: list[Token] = []
        time_tokens: list[Token] = []
        if known:
            if not time_positions or (date_positions and date_positions[-1] < time_positions[0]):
                cut = date_positions[-1] + 1 if time_positions else len(tokens)
                date_tokens, time_tokens = tokens[:cut], tokens[cut:]
                self.splits = True
            elif not date_positions or time_positions[-1] < date_positions[0]:
                cut = time_positions[-1] + 1
                time_tokens, date_tokens = tokens[:cut], tokens[cut:]
                self.splits, self.date_first = True, False
        self._date_format = _strftime_format(date_tokens)
        self._time_format = _strftime_format(time_tokens)
        self._date_numeric = _numeric_format(date_tokens) if date_tokens else None
        self._time_numeric = _numeric_format(time_tokens) if time_tokens else None
        self._month_template = self._compile_month_template(date_tokens)
        self._time_parts: dict[int, str] = {}
        self._parse_mode, self._parse_pattern, self._parse_fields = self._compile_parser(fmt, tokens)
        #: If nonzero, parsing is exact and a key is the key of wall time ``w`` exactly when it parses
        #: to ``w`` truncated to this many seconds (for years 1000 and later, see ``EXACT_FROM_WALL``).
        self.exact_unit = self._exact_unit()
        #: Parses an unsuffixed key exactly, returning its wall time (None if it does not parse or is
        #: before year 1000); None when the format has no exact parser.
        self.exact_wall: Callable[[str], int | None] | None = (
            self._compile_exact_parser() if self.exact_unit else None
        )

    # -- formatting -----------------------------------------------------------------------------

    def format_wall(self, wall: int) -> str:
        """The key of the naive wall time ``wall`` (not for formats with ``%z``/``%Z``)."""
        if not self.splits:
            return (_EPOCH + timedelta(seconds=wall)).strftime(self.fmt)
        day, time_of_day = divmod(wall, SECONDS_PER_DAY)
        day_part = self.day_part(day)
        time_part = self._time_parts.get(time_of_day)
        if time_part is None:
            time_part = self.time_part(time_of_day)
        return day_part + time_part if self.date_first else time_part + day_part

    @staticmethod
    def format_aware(moment: datetime, fmt: str) -> str:
        return moment.strftime(fmt)

    def day_part(self, day: int) -> str:
        """The date part of keys on ``day`` (days since 1970-01-01)."""
        if not self._date_format:
            return ""
        today = date.fromordinal(day + EPOCH_ORDINAL)
        numeric = self._date_numeric
        if numeric is not None and today.year >= 1000:
            values = {"Y": today.year, "m": today.month, "d": today.day}
            return numeric[0] % tuple(values[field] for field in numeric[1])
        return today.strftime(self._date_format)

    def time_part(self, time_of_day: int) -> str:
        """The time part of keys at ``time_of_day`` seconds after midnight (cached)."""
        cached = self._time_parts.get(time_of_day)
        if cached is not None:
            return cached
        if not self._time_format:
            text = ""
        else:
            hour, rest = divmod(time_of_day, 3600)
            minute, second = divmod(rest, 60)
            numeric = self._time_numeric
            if numeric is not None:
                values = {"H": hour, "M": minute, "S": second}
                text = numeric[0] % tuple(values[field] for field in numeric[1])
            else:
                text = time(hour, minute, second).strftime(self._time_format)
        self._time_parts[time_of_day] = text
        return text

    def day_parts(self, first_day: int, stop_day: int) -> list[str]:
        """The date parts of the days ``first_day`` to ``stop_day - 1``, built a month at a time."""
        if not self._date_format:
            return [""] * (stop_day - first_day)
        template = self._month_template
        if template is None:
            return [self.day_part(day) for day in range(first_day, stop_day)]
        before_day, after_day, has_day = template
        parts: list[str] = []
        day = first_day
        while day < stop_day:
            today = date.fromordinal(day + EPOCH_ORDINAL)
            year, month, day_of_month = today.year, today.month, today.day
            last_day_of_month = monthrange(year, month)[1]
            count = min(stop_day - day, last_day_of_month - day_of_month + 1)
            prefix = self._month_part(before_day, year, month)
            if not has_day:
                parts.extend([prefix] * count)
            else:
                suffix = self._month_part(after_day, year, month)
                days = _DAYS_OF_MONTH[day_of_month : day_of_month + count]
                if suffix:
                    parts.extend([prefix + text + suffix for text in days])
                else:
                    parts.extend([prefix + text for text in days])
            day += count
        return parts

    def _compile_month_template(
        self, date_tokens: list[Token]
    ) -> (
        tuple[
            tuple[list[Token], tuple[str, tuple[str, ...]] | None],
            tuple[list[Token], tuple[str, tuple[str, ...]] | None],
            bool,
        ]
        | None
    ):
        """Split the date part at its one ``%d`` if every other directive depends on the month only."""
        kinds = [kind for kind, _ in date_tokens if kind]
        if not all(kind in _MONTH_DIRECTIVES or kind == "d" for kind in kinds) or kinds.count("d") > 1:
            return None
        if "d" not in kinds:
            return (date_tokens, _numeric_format(date_tokens)), ([], None), False
        cut = next(i for i, (kind, _) in enumerate(date_tokens) if kind == "d")
        before, after = date_tokens[:cut], date_tokens[cut + 1 :]
        return (before, _numeric_format(before)), (after, _numeric_format(after)), True

    @staticmethod
    def _month_part(
        part: tuple[list[Token], tuple[str, tuple[str, ...]] | None], year: int, month: int
    ) -> str:
        tokens, numeric = part
        if not tokens:
            return ""
        if numeric is not None and year >= 1000:
            values = {"Y": year, "m": month}
            return numeric[0] % tuple(values[field] for field in numeric[1])
        return date(year, month, 1).strftime(_strftime_format(tokens))

    # -- parsing --------------------------------------------------------------------------------

    @staticmethod
    def _compile_parser(fmt: str, tokens: list[Token]) -> tuple[str, re.Pattern[str] | None, tuple[str, ...]]:
        if fmt == "%Y-%m-%d":
            return "iso-date", None, ()
        if len(fmt) == 14 and fmt.startswith("%Y-%m-%d") and fmt.endswith("%H:%M") and fmt[8] in "-T _/":
            return "iso-minute", None, ()
        kinds = [kind for kind, _ in tokens if kind]
        if all(kind in _NUMERIC_WIDTHS for kind in kinds) and len(set(kinds)) == len(kinds):
            pattern = "".join(
                re.escape(text) if not kind else rf"(\d{{{_NUMERIC_WIDTHS[kind]}}})" for kind, text in tokens
            )
            return "numeric", re.compile(pattern + r"([+-]\d{4}(?:\d\d)?)?", re.ASCII), tuple(kinds)
        return "strptime", None, ()

    def _exact_unit(self) -> int:
        if self._parse_mode == "iso-date":
            return SECONDS_PER_DAY
        if self._parse_mode == "iso-minute":
            return 60
        if self._parse_mode == "numeric":
            fields = set(self._parse_fields)
            for chain, unit in (("Ymd", SECONDS_PER_DAY), ("YmdH", 3600), ("YmdHM", 60), ("YmdHMS", 1)):
                if fields == set(chain):
                    return unit
        return 0

    def _compile_exact_parser(self) -> Callable[[str], int | None]:
        mode = self._parse_mode
        if mode == "iso-date":

            def exact_date(key: str) -> int | None:
                if len(key) != 10 or key[4] != "-" or key[7] != "-":
                    return None
                try:
                    wall = (_date_from_iso(key).toordinal() - EPOCH_ORDINAL) * SECONDS_PER_DAY
                except ValueError:
                    return None
                return wall if wall >= EXACT_FROM_WALL else None

            return exact_date
        if mode == "iso-minute":
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

    def parse(self, key: str) -> tuple[int, int | None] | None:
        """``(wall time, explicit UTC offset or None)`` of ``key``, or None if it does not parse.

        Parsing may accept keys that formatting would not produce (``strptime`` is lenient), so
        callers compare the key of the parsed time with the input.
        """
        mode = self._parse_mode
        if mode == "iso-date":
            length = len(key)
            if length == 10 and key[4] == "-" and key[7] == "-":
                try:
                    return (_date_from_iso(key).toordinal() - EPOCH_ORDINAL) * SECONDS_PER_DAY, None
                except ValueError:
                    return None
            if length == 15 and key[4] == "-" and key[7] == "-":
                try:
                    day = _date_from_iso(key[:10]).toordinal() - EPOCH_ORDINAL
                except ValueError:
                    return None
                offset = _parse_suffix(key[10:])
                return (day * SECONDS_PER_DAY, offset) if offset is not None else None
        elif mode == "iso-minute":
            length = len(key)
            if (length == 16 or length == 21) and key[10] == self.fmt[8] and key[13] == ":" and key[4] == "-":
                try:
                    moment = _datetime_from_iso(key if length == 16 else key[:16])
                except ValueError:
                    return None
                wall = (
                    (moment.toordinal() - EPOCH_ORDINAL) * SECONDS_PER_DAY
                    + moment.hour * 3600
                    + moment.minute * 60
                )
                if length == 16:
                    return wall, None
                offset = _parse_suffix(key[16:])
                return (wall, offset) if offset is not None else None
        elif mode == "numeric":
            assert self._parse_pattern is not None
            match = self._parse_pattern.fullmatch(key)
            if match is None:
                return self._strptime(key)
            values = {"Y": 1900, "m": 1, "d": 1, "H": 0, "M": 0, "S": 0}
            groups = match.groups()
            for field, text in zip(self._parse_fields, groups, strict=False):
                values[field] = int(text)
            if values["H"] > 23 or values["M"] > 59 or values["S"] > 59:
                return None
            try:
                day = date(values["Y"], values["m"], values["d"]).toordinal() - EPOCH_ORDINAL
            except ValueError:
                return None
            wall = day * SECONDS_PER_DAY + values["H"] * 3600 + values["M"] * 60 + values["S"]
            suffix = groups[-1]
            if suffix is None:
                return wall, None
            offset = _parse_suffix(suffix)
            return (wall, offset) if offset is not None else None
        return self._strptime(key)

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
        wall = (
            (moment.toordinal() - EPOCH_ORDINAL) * SECONDS_PER_DAY
            + moment.hour * 3600
            + moment.minute * 60
            + moment.second
        )
        offset = moment.utcoffset()
        return wall, None if offset is None else offset // timedelta(seconds=1)
