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

from ..stats.marker_view import NOT_WM, marker_decisions
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
    ("rim_score_ppm", "Rim ppm", "Rim score (ppm): mean paramagnetic excess of the lesion's rim sectors (12 per "
     "slice) over its reference, on QSM (roi.rim; the value of stats/lesions.tsv; coverage in the Review dock)"),
    ("prl", "PRL", "Paramagnetic rim lesion as qsm-ms stats counts it: the rim round's consensus where the raters "
     "agreed, else the measured suggestion (rim score >= 0.006 ppm); the cell's tooltip says which"),
    ("vein_score", "Vein", "Vein score: vesselness of a dark vein crossing the lesion centre on two consecutive "
     "slices of the T2* magnitude (roi.veins; the value of stats/lesions.tsv)"),
    ("cvs", "CVS", "Central vein sign as qsm-ms stats counts it (rim round's consensus where agreed, else measured): "
     "yes / no, or excluded: 'small' (under 3 mm across) or 'excl' (confluent, several veins, rated; see the tooltip)"),
]
FLAGS_COLUMN = [c for c, _, _ in COLUMNS].index("flags")
MARKER_COLUMNS = ("rim_score_ppm", "prl", "vein_score", "cvs")
_MARKER_EXTRAS = ("rim_coverage", "cvs_eligible", "prl_source", "cvs_source")
#: further columns of marker_table that :func:`.marker_view.marker_decisions` reads
_DECISION_EXTRAS = ("cvs_exclusion_reason", "confluent_with", "prl_rated", "cvs_rated")
MISSING = "\u2014"
"""What a cell shows when its measure is missing (its tooltip says what to run)."""
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
    markers: pd.DataFrame | None = None,
    marker_notes: dict[str, str] | None = None,
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
    markers : DataFrame, optional
        ``stats.marker_view.dock_marker_table`` output (``lesion_id`` + the marker columns).
    marker_notes : dict, optional
        marker column -> why it is missing (what to run), shown as the tooltip of its empty cells.
    """
    consensus = consensus or {}
    marker_rows = {} if markers is None else {int(r["lesion_id"]): r for r in markers.to_dict("records")}
    marker_notes = marker_notes or {}
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
                **_marker_cells(marker_rows.get(lid), marker_notes),
            }
        )
    columns = [c for c, _, _ in COLUMNS] + ["first_slice", "excluded", *_MARKER_EXTRAS, *_DECISION_EXTRAS,
                                                 "marker_notes", "marker_decisions"]
    return pd.DataFrame(rows, columns=columns)


def _marker_cells(row: dict | None, notes: dict[str, str]) -> dict:
    """The marker values of one lesion (NaN where not measured), the notes of its missing cells
    and the tooltips of its PRL / CVS decisions (:func:`.marker_view.marker_decisions`)."""
    row = row or {}
    out = {c: row.get(c, np.nan) for c in (*MARKER_COLUMNS, *_MARKER_EXTRAS, *_DECISION_EXTRAS)}
    missing = {}
    for c in MARKER_COLUMNS:
        value = out[c]
        if c in notes:
            missing[c] = notes[c]
        elif value is None or (isinstance(value, float) and not np.isfinite(value)):
            missing[c] = "not measured yet" if not row else "no value for this lesion (see docs/markers.md)"
    if row and "rim_score_ppm" in missing and "rim_score_ppm" not in notes:
        missing.update(dict.fromkeys(("rim_score_ppm", "prl"), NOT_WM))
    if "vein_score" in missing:
        missing.setdefault("cvs", missing["vein_score"])
    decisions = marker_decisions(row) if row else {}
    for col in ("prl", "cvs"):  # decided (the rim round agreed, or measured): shown as qsm-ms stats counts it
        if decisions and decisions[col][0] is not None:
            missing.pop(col, None)
    out["marker_notes"] = missing
    out["marker_decisions"] = decisions
    return out


def _marker_text_and_key(column: str, rec: dict) -> tuple[str, float]:
    """Displayed text and numeric sort key of a marker cell (missing: a dash, sorted below all)."""
    if column in rec["marker_notes"]:
        return MISSING, -np.inf
    value = rec[column]
    if column == "rim_score_ppm":
        return f"{float(value):.3f}", float(value)
    if column == "vein_score":
        return f"{float(value):.2f}", float(value)
    word = rec["marker_decisions"][column][0]
    if column == "prl":  # sorted by the decision, then by the rim score behind it
        score = rec["rim_score_ppm"]
        score = float(score) if score is not None and np.isfinite(float(score)) else 0.0
        return word, (1.0 if word == "yes" else 0.0) + score
    # cvs: yes > no > excluded, then by the vein score
    vein = rec["vein_score"]
    vein = float(vein) if vein is not None and np.isfinite(float(vein)) else 0.0
    return word, {"yes": 2.0, "no": 1.0}.get(word, 0.0) + vein / 10.0


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
        self._tips: list[dict[str, str]] = []

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
        self._tips = []
        for rec in self._frame.to_dict("records"):
            cells, keys = [], []
            for column, _, _ in COLUMNS:
                text, key = _cell(column, rec)
                cells.append(text)
                keys.append(key)
            self._cells.append(cells)
            self._keys.append(keys)
            decided = {c: why for c, (_, why) in (rec.get("marker_decisions") or {}).items()}
            self._tips.append({**decided, **(rec.get("marker_notes") or {})})
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
        if role == Qt.ItemDataRole.TextAlignmentRole and COLUMNS[col][0] in _RIGHT_ALIGNED:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.BackgroundRole and self._flagged[row]:
            return _FLAG_BRUSH
        if role == Qt.ItemDataRole.ForegroundRole and self._excluded[row]:
            return _EXCLUDED_BRUSH
        if role == Qt.ItemDataRole.ToolTipRole:
            column = COLUMNS[col][0]
            if column == "flags":
                return self._cells[row][col] or None
            return self._tips[row].get(column)
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
        self._fitter = fit_columns(self, FLAGS_COLUMN)  # Flags visible without scrolling
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


_RIGHT_ALIGNED = {"lesion_id", "volume_mm3", "extent_mm", "cortex_pct", "rim_score_ppm", "vein_score"}
_NUMBER_DIGITS = {"volume_mm3": 1, "extent_mm": 1, "cortex_pct": 0}


def _cell(column: str, rec: dict) -> tuple[str, Any]:
    """Displayed text and sort key of one cell (numbers sort as numbers)."""
    if column in MARKER_COLUMNS:
        return _marker_text_and_key(column, rec)
    if column in _NUMBER_DIGITS:
        return _fmt(rec[column], _NUMBER_DIGITS[column]), rec[column]
    if column == "slices":
        return str(rec["slices"]), rec["first_slice"]
    return str(rec[column]), rec[column]


def _fmt(value: Any, digits: int) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    return "" if not np.isfinite(v) else f"{v:.{digits}f}"
