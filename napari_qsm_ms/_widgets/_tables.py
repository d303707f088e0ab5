"""Tables that fit their dock: every column, Flags included, visible without horizontal scrolling."""

from __future__ import annotations

from qtpy.QtCore import QObject, QEvent, Qt
from qtpy.QtWidgets import QAbstractItemView, QHeaderView

#: Width the Flags column keeps at least (px); wider columns before it are narrowed (elided) instead.
MIN_FLAGS_PX = 110


def column_widths(
    natural: list[int], available: int, flags_column: int, min_flags: int = MIN_FLAGS_PX
) -> list[int]:
    """Widths that fill ``available`` px: the natural widths if they fit (Flags takes the rest),
    else the other columns scaled down together so that Flags keeps ``min_flags`` px."""
    others = sum(w for k, w in enumerate(natural) if k != flags_column)
    room = max(available - others, 0)
    widths = list(natural)
    if room >= min(natural[flags_column], min_flags):
        widths[flags_column] = max(room, min(natural[flags_column], min_flags))
        return widths
    factor = max(available - min_flags, len(natural) * 24) / max(others, 1)
    for k, w in enumerate(natural):
        widths[k] = min_flags if k == flags_column else max(int(w * factor), 24)
    return widths


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
        for c, w in enumerate(column_widths(natural, view.viewport().width(), self.flags_column)):
            header.resizeSection(c, w)


def fit_columns(view: QAbstractItemView, flags_column: int) -> _Fitter:
    """Keep ``view``'s columns within its width (refit on resize; call ``.fit()`` after new data)."""
    header = view.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    header.setStretchLastSection(False)
    header.setMinimumSectionSize(24)
    view.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
    view.setTextElideMode(Qt.ElideRight)
    fitter = _Fitter(view, flags_column)
    view.viewport().installEventFilter(fitter)
    return fitter
