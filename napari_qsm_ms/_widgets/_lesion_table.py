"""Qt model and view of the lesion table (one row per lesion id).

The model shows a :class:`pandas.DataFrame` built by the annotation dock from
``roi.lesions.lesion_table`` plus the consensus class, the reference flags and the exclusions.
It is a plain :class:`QAbstractTableModel` (no per-cell widgets), so a refresh of 150 lesions is a
model reset of a few microseconds; sorting goes through a :class:`QSortFilterProxyModel` on
numeric sort keys.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from qtpy.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt, Signal
from qtpy.QtGui import QBrush, QColor
from qtpy.QtWidgets import QAbstractItemView, QTableView

from ._tables import fit_columns

#: (DataFrame column, header, tooltip)
COLUMNS: list[tuple[str, str, str]] = [
    ("lesion_id", "ID", "Label value of the lesion in the lesions layer"),
    ("volume_mm3", "Vol mm³", "Lesion volume in mm³ (voxel count x voxel volume)"),
    ("extent_mm", "Ext mm", "Largest in-plane extent of the lesion in mm"),
    ("slices", "Slices", "First-last slice (axial index) and the central slice in brackets"),
    ("cortex_pct", "Ctx %", "Percentage of lesion voxels on cortical GM (tissue 2)"),
    ("suggested_class", "Sugg.", "Class suggested from the cortex fraction: >75 % cortical, 25-75 % mixed"),
    ("consensus_class", "Cons.", "Class from the raters' consensus (sub-*_lesions.tsv), if any"),
    ("flags", "Flags", "Problems to look at (small lesion, small reference, excluded, ...)"),
]
ID_ROLE = Qt.ItemDataRole.UserRole + 1
SORT_ROLE = Qt.ItemDataRole.UserRole + 2
_FLAG_BRUSH = QBrush(QColor(255, 170, 60, 90))
_EXCLUDED_BRUSH = QBrush(QColor(128, 128, 128))


def display_frame(
    table: pd.DataFrame,
    *,
    consensus: dict[int, str] | None = None,
    extra_flags: dict[int, list[str]] | None = None,
    excluded: dict[int, str] | None = None,
) -> pd.DataFrame:
    """The rows the table shows, from ``roi.lesions.lesion_table`` output and per-lesion extras.

    Parameters
    ----------
    table : DataFrame
        ``lesion_table`` columns (lesion_id, volume_mm3, extent_mm, first_slice, last_slice,
        central_slice, cortex_fraction, suggested_class, flags, ...).
    consensus : dict, optional
        lesion id -> consensus class.
    extra_flags : dict, optional
        lesion id -> further flags (references, annotation state).
    excluded : dict, optional
        lesion id -> exclusion reason, for excluded lesions.
    """
    consensus = consensus or {}
    extra_flags = extra_flags or {}
    excluded = excluded or {}
    rows = []
    for rec in table.to_dict("records"):
        lid = int(rec["lesion_id"])
        flags = [f for f in str(rec.get("flags") or "").split(";") if f]
        for f in extra_flags.get(lid, []):
            if f and f not in flags:
                flags.append(f)
        if lid in excluded:
            reason = excluded[lid]
            flags.insert(0, f"excluded ({reason})" if reason else "excluded")
        first, last = int(rec.get("first_slice", -1)), int(rec.get("last_slice", -1))
        central = int(rec.get("central_slice", -1))
        rows.append(
            {
                "lesion_id": lid,
                "volume_mm3": float(rec.get("volume_mm3", np.nan)),
                "extent_mm": float(rec.get("extent_mm", np.nan)),
                "slices": f"{first}-{last} [{central}]" if first != last else f"{first}",
                "first_slice": first,
                "cortex_pct": 100.0 * float(rec.get("cortex_fraction", np.nan)),
                "suggested_class": str(rec.get("suggested_class", "")),
                "consensus_class": consensus.get(lid, ""),
                "flags": "; ".join(flags),
                "excluded": lid in excluded,
            }
        )
    columns = [c for c, _, _ in COLUMNS] + ["first_slice", "excluded"]
    return pd.DataFrame(rows, columns=columns)


class LesionTableModel(QAbstractTableModel):
    """Read-only table model over :func:`display_frame` output."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._frame = display_frame(pd.DataFrame(columns=["lesion_id"]))
        self._ids: list[int] = []
        self._cells: list[list[str]] = []
        self._keys: list[list[Any]] = []
        self._flagged: list[bool] = []
        self._excluded: list[bool] = []

    # --- data --------------------------------------------------------------------------------
    @property
    def frame(self) -> pd.DataFrame:
        return self._frame

    def lesion_ids(self) -> list[int]:
        return list(self._ids)

    def row_of(self, lesion_id: int) -> int:
        try:
            return self._ids.index(int(lesion_id))
        except ValueError:
            return -1

    def set_frame(self, frame: pd.DataFrame) -> None:
        """Replace the content (one model reset; formatting is done once here)."""
        self.beginResetModel()
        self._frame = frame.reset_index(drop=True)
        self._ids = [int(v) for v in self._frame["lesion_id"]] if len(self._frame) else []
        self._cells = []
        self._keys = []
        for rec in self._frame.to_dict("records"):
            self._cells.append(
                [
                    str(rec["lesion_id"]),
                    _fmt(rec["volume_mm3"], 1),
                    _fmt(rec["extent_mm"], 1),
                    str(rec["slices"]),
                    _fmt(rec["cortex_pct"], 0),
                    str(rec["suggested_class"]),
                    str(rec["consensus_class"]),
                    str(rec["flags"]),
                ]
            )
            self._keys.append(
                [
                    rec["lesion_id"],
                    rec["volume_mm3"],
                    rec["extent_mm"],
                    rec["first_slice"],
                    rec["cortex_pct"],
                    rec["suggested_class"],
                    rec["consensus_class"],
                    rec["flags"],
                ]
            )
        self._flagged = [bool(r["flags"]) for r in self._frame.to_dict("records")]
        self._excluded = [bool(r["excluded"]) for r in self._frame.to_dict("records")]
        self.endResetModel()

    # --- Qt API --------------------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._cells)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, col = index.row(), index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._cells[row][col]
        if role == SORT_ROLE:
            return self._keys[row][col]
        if role == ID_ROLE:
            return self._ids[row]
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (0, 1, 2, 4):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.BackgroundRole and self._flagged[row]:
            return _FLAG_BRUSH
        if role == Qt.ItemDataRole.ForegroundRole and self._excluded[row]:
            return _EXCLUDED_BRUSH
        if role == Qt.ItemDataRole.ToolTipRole and col == 7:
            return self._cells[row][col] or None
        return None

    def headerData(self, section: int, orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal:
            if role == Qt.ItemDataRole.DisplayRole:
                return COLUMNS[section][1]
            if role == Qt.ItemDataRole.ToolTipRole:
                return COLUMNS[section][2]
        return None


class LesionTableView(QTableView):
    """Sortable lesion table; emits ``lesion_clicked(id)`` and reports the selected ids."""

    lesion_clicked = Signal(int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.table_model = LesionTableModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.table_model)
        self.proxy.setSortRole(SORT_ROLE)
        self.setModel(self.proxy)
        self.setSortingEnabled(True)
        self.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.verticalHeader().setVisible(False)
        self.verticalHeader().setDefaultSectionSize(20)
        self.setMinimumHeight(6 * 20 + 28)  # several rows, even in a small dock
        self._fitter = fit_columns(self, len(COLUMNS) - 1)  # Flags visible without scrolling
        self.clicked.connect(self._on_clicked)

    def set_frame(self, frame: pd.DataFrame) -> None:
        """Show ``frame``, keeping the selected lesions selected when they still exist."""
        keep = self.selected_ids()
        self.table_model.set_frame(frame)
        self._fitter.fit()
        if keep:
            self.select_ids(keep, scroll=False)

    def _on_clicked(self, index: QModelIndex) -> None:
        lid = self.proxy.data(index, ID_ROLE)
        if lid is not None:
            self.lesion_clicked.emit(int(lid))

    def selected_ids(self) -> list[int]:
        rows = {i.row() for i in self.selectionModel().selectedRows()} if self.selectionModel() else set()
        ids = [self.proxy.data(self.proxy.index(r, 0), ID_ROLE) for r in sorted(rows)]
        return [int(i) for i in ids if i is not None]

    def select_ids(self, ids: list[int], *, scroll: bool = True) -> None:
        from qtpy.QtCore import QItemSelection, QItemSelectionModel

        selection = QItemSelection()
        first = None
        for lid in ids:
            row = self.table_model.row_of(lid)
            if row < 0:
                continue
            src = self.table_model.index(row, 0)
            idx = self.proxy.mapFromSource(src)
            if first is None:
                first = idx
            selection.select(idx, self.proxy.index(idx.row(), self.proxy.columnCount() - 1))
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        self.selectionModel().select(selection, flags)
        if first is not None and scroll:
            self.scrollTo(first)

    def row_texts(self) -> list[list[str]]:
        """Displayed text, row by row in the current (sorted) order (for tests and export)."""
        return [
            [str(self.proxy.data(self.proxy.index(r, c))) for c in range(self.proxy.columnCount())]
            for r in range(self.proxy.rowCount())
        ]


def _fmt(value: Any, digits: int) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    return "" if not np.isfinite(v) else f"{v:.{digits}f}"
