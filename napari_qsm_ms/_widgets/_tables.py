"""Tables that fit their dock: every column, Flags included, visible without horizontal scrolling,
and no number elided (headers and text columns narrow first)."""

from __future__ import annotations

from qtpy.QtCore import QObject, QEvent, Qt
from qtpy.QtWidgets import QAbstractItemView, QHeaderView

#: Width the Flags column keeps at least (px); wider columns before it are narrowed (elided) instead.
MIN_FLAGS_PX = 110


def column_widths(
    natural: list[int],
    available: int,
    flags_column: int,
    min_flags: int = MIN_FLAGS_PX,
    floors: list[int] | None = None,
) -> list[int]:
    """Widths that fill ``available`` px: the natural widths if they fit (Flags takes the rest),
    else every other column narrowed toward its floor (``floors``, default 24 px; the width of its
    numbers for a numeric column, so a number is never elided) in proportion to its slack, Flags
    keeping ``min_flags`` px. When even the floors do not fit, the floors are returned (the view then
    scrolls rather than hide a number)."""
    floors = [24] * len(natural) if floors is None else [min(f, w) for f, w in zip(floors, natural)]
    others = sum(w for k, w in enumerate(natural) if k != flags_column)
    room = max(available - others, 0)
    widths = list(natural)
    if room >= min(natural[flags_column], min_flags):
        widths[flags_column] = max(room, min(natural[flags_column], min_flags))
        return widths
    slack = sum(w - f for k, (w, f) in enumerate(zip(natural, floors)) if k != flags_column)
    floor_sum = sum(f for k, f in enumerate(floors) if k != flags_column)
    share = min(max(available - min_flags - floor_sum, 0) / max(slack, 1), 1.0)
    for k, (w, f) in enumerate(zip(natural, floors)):
        widths[k] = min_flags if k == flags_column else f + int((w - f) * share)
    return widths


SHORT_TOKEN_CHARS = 5
"""Cells of at most this many characters (yes, no, small, a dash) keep their width like numbers."""


def _is_number(text) -> bool:
    text = str(text).strip()
    if text in ("", "n/a", "nan") or len(text) <= SHORT_TOKEN_CHARS:
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True


def number_floors(view: QAbstractItemView, rows: int = 50) -> list[int]:
    """Per column: the width its contents need when every shown value is a number or a short token, else 24 px."""
    model = view.model()
    floors = []
    for c in range(model.columnCount()):
        values = [model.index(r, c).data() for r in range(min(model.rowCount(), rows))]
        numeric = bool(values) and all(_is_number(v) for v in values)
        floors.append(view.sizeHintForColumn(c) if numeric else 24)
    return floors


class _Fitter(QObject):
    def __init__(self, view: QAbstractItemView, flags_column: int) -> None:
        super().__init__(view)
        self.view = view
        self.flags_column = flags_column

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt API
        if event.type() == QEvent.Resize:
            self.fit()
        return False

    def fit(self) -> None:
        view = self.view
        model = view.model()
        if model is None or model.columnCount() <= self.flags_column:
            return
        header = view.horizontalHeader()
        columns = range(model.columnCount())
        natural = [max(view.sizeHintForColumn(c), header.sectionSizeHint(c)) for c in columns]
        floors = number_floors(view)
        widths = column_widths(natural, view.viewport().width(), self.flags_column, floors=floors)
        for c, w in enumerate(widths):
            header.resizeSection(c, w)


def fit_columns(view: QAbstractItemView, flags_column: int) -> _Fitter:
    """Keep ``view``'s columns within its width (refit on resize; call ``.fit()`` after new data)."""
    header = view.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    header.setStretchLastSection(False)
    header.setMinimumSectionSize(24)
    view.setHorizontalScrollBarPolicy(Qt.ScrollBarAsNeeded)  # only when the numbers need it
    view.setTextElideMode(Qt.ElideRight)
    fitter = _Fitter(view, flags_column)
    view.viewport().installEventFilter(fitter)
    return fitter
