"""Consensus and agreement dock: majority classes, disputes and their resolution, kappas.

Thin over :mod:`napari_qsm_ms.rating`: ``Run consensus`` calls
:func:`~napari_qsm_ms.rating.consensus.run_consensus` for the subject (writing its lesions.tsv) and
:func:`~napari_qsm_ms.rating.agreement.write_agreement` for the study (agreement.tsv), then shows
per candidate every rater's vote, the class and how it was reached; disputed candidates get a
resolution (class + reason) recorded with :func:`~napari_qsm_ms.rating.consensus.resolve`.
Fleiss' kappa, pairwise Cohen's kappa, per-class counts and the confusion table of a chosen rater
pair are shown below. ``Propose candidates`` writes automatic candidates for the raters.

The round is chosen at the top: the class round (above) or the rim and vein round (round 2,
:mod:`napari_qsm_ms.rating.markers`). For round 2, ``Run consensus`` calls
:func:`~napari_qsm_ms.rating.markers.run_round_consensus` over the study's subjects with the
study's stored panel -- exactly what ``qsm-ms consensus --round rim`` does -- and shows per
lesion every rater's PRL and CVS answers and the majority per marker, then Fleiss' and Cohen's
kappa per marker as written to ``agreement_round-rim.tsv`` (and those of the loaded subject, from
the same :func:`~napari_qsm_ms.rating.markers.marker_agreement`).

While a rater is signed in on the same viewer (rater mode or the rim round) the dock shows nothing.
"""

from __future__ import annotations

import math

import napari
import numpy as np
import pandas as pd
from qtpy.QtCore import Qt
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..errors import QSMMSError
from ..io.layout import StudyFiles, SubjectFiles, round_agreement_tsv
from ..rating.agreement import AgreementReport, agreement, ratings_matrix, write_agreement
from ..rating.consensus import read_lesion_classes, resolve, run_consensus
from ..rating.markers import MARKERS, ROUND, list_round_raters, marker_agreement, read_round_votes
from ..rating.markers import run_round_consensus
from ..rating.panel import read_panel, write_panel
from ..rating.proposals import propose_subject
from ..rating.votes import list_raters, read_all_votes
from ..roi.rules import CONSENSUS_CLASSES, RESOLUTION_CLASSES, VOTE_CLASSES
from ._layers import current_subject, find_layer, show_lesion
from ._worker import ProgressPanel, run_with_progress
from ._scroll import scroll_contents
from .rating import _unwrapped, rater_mode

_CLASS_COLOURS = {
    "wm": "#2b6cb0",
    "cortical": "#b7791f",
    "mixed": "#6b46c1",
    "rejected": "#4a5568",
    "disputed": "#c53030",
}


#: The rounds the dock can show: (key, title); ``class`` is the paper's round, the others are
#: reading rounds of :mod:`napari_qsm_ms.rating.markers`.
ROUNDS = (("class", "Lesion class (round 1)"), (ROUND, "Rim and vein (round 2)"))
_MARKER_TITLES = {"prl": "PRL", "cvs": "CVS"}


def _fmt_kappa(value: float) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def _find_data(combo: QComboBox, data) -> int:
    """Index of the item holding ``data`` (Python objects: QComboBox.findData cannot compare them)."""
    for k in range(combo.count()):
        if combo.itemData(k) == data:
            return k
    return -1


def _table(rows: int = 0, cols: int = 0) -> QTableWidget:
    t = QTableWidget(rows, cols)
    t.setEditTriggers(QAbstractItemView.NoEditTriggers)
    t.setSelectionBehavior(QAbstractItemView.SelectRows)
    t.verticalHeader().setVisible(False)
    t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
    return t


class ConsensusWidget(QWidget):
    """Run the consensus for the loaded subject and show classes, disputes and agreement.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self._subject: SubjectFiles | None = None
        self.table_frame: pd.DataFrame | None = None
        self.report: AgreementReport | None = None
        self.study_report: AgreementReport | None = None
        self.round_frame: pd.DataFrame | None = None  # round 2: consensus of the subject (long)
        self.round_agreement: pd.DataFrame | None = None  # round 2: the study's kappas (the file's)
        self.round_subject_agreement: pd.DataFrame | None = None
        self._build_ui()
        scroll_contents(self)  # fits a small screen: the dock's contents scroll
        rater_mode().changed.connect(self._on_rater_mode)
        self.viewer.layers.events.inserted.connect(self._on_layers_changed)
        self.viewer.layers.events.removed.connect(self._on_layers_changed)
        self._set_blinded(rater_mode().active(self.viewer))

    # ------------------------------------------------------------------------------------ UI
    def _build_ui(self) -> None:
        self.subject_label = QLabel("")
        self.round_combo = QComboBox()
        for key, title in ROUNDS:
            self.round_combo.addItem(title, key)
        self.round_combo.setToolTip("which reading round to run and show: the lesion class (the paper's) "
                                    "or the rim and vein markers (PRL, CVS)")
        self.round_combo.currentIndexChanged.connect(self._on_round_changed)
        self.run_button = QPushButton("Run consensus")
        self.run_button.setToolTip("majority rule over every rater's votes; writes lesions.tsv and agreement.tsv")
        self.run_button.clicked.connect(self._on_run)
        self.propose_button = QPushButton("Propose candidates")
        self.propose_button.setToolTip(
            "automatic candidates (hyperintense on T2* and FLAIR, hypointense on CSF-nulled MPRAGE, >= 2 mm), "
            "written to desc-proposals_dseg for the raters to vote on"
        )
        self.propose_button.clicked.connect(self._on_propose)
        self.panel_edit = QLineEdit()
        self.panel_edit.setPlaceholderText("panel of raters, e.g. anna ben cat (default: all with votes)")
        self.panel_edit.setToolTip(
            "The study's panel of raters, stored in derivatives/qsm-ms/raters.tsv and used by this dock "
            "and by qsm-ms consensus alike"
        )
        self.panel_button = QPushButton("Set panel")
        self.panel_button.clicked.connect(self._on_set_panel)
        self.panel = ProgressPanel()
        self.blind_label = QLabel("Hidden while a rater is signed in (rater mode).")
        self.blind_label.setStyleSheet("color: #e0a000; font-weight: bold")
        self.summary_label = QLabel("")
        self.summary_label.setWordWrap(True)

        self.lesion_table = _table()
        self.lesion_table.setMinimumHeight(180)
        self.lesion_table.itemSelectionChanged.connect(self._on_row_selected)

        self.dispute_box = QGroupBox("Consensus meeting (disputed candidates)")
        self.dispute_combo = QComboBox()
        self.resolution_combo = QComboBox()
        self.resolution_combo.addItems(RESOLUTION_CLASSES)
        self.reason_edit = QLineEdit()
        self.reason_edit.setPlaceholderText("reason (required)")
        self.resolve_button = QPushButton("Record resolution")
        self.resolve_button.clicked.connect(self._on_resolve)
        form = QFormLayout(self.dispute_box)
        form.addRow("Candidate", self.dispute_combo)
        form.addRow("Class", self.resolution_combo)
        form.addRow("Reason", self.reason_edit)
        form.addRow(self.resolve_button)

        self.kappa_label = QLabel("")
        self.kappa_label.setWordWrap(True)
        self.kappa_label.setTextFormat(Qt.RichText)
        self.counts_table = _table()
        self.counts_table.setMinimumHeight(130)
        self.pair_combo = QComboBox()
        self.pair_combo.currentIndexChanged.connect(self._show_confusion)
        self.confusion_table = _table()
        self.confusion_table.setMinimumHeight(150)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)

        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.propose_button)
        lay = QVBoxLayout(self)
        lay.addWidget(self.subject_label)
        round_row = QHBoxLayout()
        round_row.addWidget(QLabel("Round"))
        round_row.addWidget(self.round_combo, 1)
        lay.addLayout(round_row)
        lay.addLayout(buttons)
        panel_row = QHBoxLayout()
        panel_row.addWidget(self.panel_edit, 1)
        panel_row.addWidget(self.panel_button)
        lay.addLayout(panel_row)
        lay.addWidget(self.panel)
        lay.addWidget(self.blind_label)
        lay.addWidget(self.summary_label)
        lay.addWidget(self.lesion_table, 3)
        lay.addWidget(self.dispute_box)
        lay.addWidget(QLabel("<b>Agreement</b>"))
        lay.addWidget(self.kappa_label)
        self.counts_title = QLabel("Votes per class")
        lay.addWidget(self.counts_title)
        lay.addWidget(self.counts_table, 1)
        pair = QHBoxLayout()
        self.confusion_label = QLabel("Confusion table")
        pair.addWidget(self.confusion_label)
        pair.addWidget(self.pair_combo, 1)
        lay.addLayout(pair)
        lay.addWidget(self.confusion_table, 1)
        lay.addWidget(self.status_label)
        self._refresh_subject_label()

    def _on_layers_changed(self, event=None) -> None:
        self._refresh_subject_label()

    def _refresh_subject_label(self) -> None:
        subject = self.subject
        self.subject_label.setText(f"subject: {subject.sub}" if subject else "subject: (none loaded)")

    @property
    def subject(self) -> SubjectFiles | None:
        return self._subject or current_subject(self.viewer)

    def set_subject(self, subject: SubjectFiles) -> None:
        self._subject = subject
        self._refresh_subject_label()

    # ------------------------------------------------------------------------------ blinding
    def _on_rater_mode(self, viewer, active: bool) -> None:
        # the registry holds the real viewer; docks from the Plugins menu hold a public proxy of it
        if _unwrapped(viewer) is _unwrapped(self.viewer):
            self._set_blinded(active)

    @property
    def round_name(self) -> str:
        """The round shown: ``class`` or a marker round (``rim``)."""
        return self.round_combo.currentData()

    def _on_round_changed(self) -> None:
        self._clear()
        self._set_blinded(self.blinded)
        self.status_label.setText("")

    def _set_blinded(self, blinded: bool) -> None:
        self.blinded = blinded
        self.blind_label.setVisible(blinded)
        class_round = self.round_name == "class"
        for w in (self.run_button, self.panel_button, self.round_combo):
            w.setEnabled(not blinded)
        for w in (self.propose_button, self.dispute_box, self.pair_combo):  # class round only
            w.setEnabled(not blinded and class_round)
        for w in (self.dispute_box, self.confusion_label, self.pair_combo, self.confusion_table):
            w.setVisible(class_round)
        self.counts_title.setText("Votes per class" if class_round else "Answers per value")
        if blinded:
            self._clear()

    def _clear(self) -> None:
        self.table_frame = None
        self.round_frame = self.round_agreement = self.round_subject_agreement = None
        self.report = self.study_report = None
        for t in (self.lesion_table, self.counts_table, self.confusion_table):
            t.clearContents()
            t.setRowCount(0)
            t.setColumnCount(0)
        self.dispute_combo.clear()
        self.pair_combo.blockSignals(True)
        self.pair_combo.clear()
        self.pair_combo.blockSignals(False)
        self.kappa_label.setText("")
        self.summary_label.setText("")

    # ------------------------------------------------------------------------------- actions
    def _on_run(self) -> None:
        try:
            self.run_consensus()
        except QSMMSError as exc:
            self.status_label.setText(f"error: {exc}")

    def _on_set_panel(self) -> None:
        try:
            self.set_panel(self.panel_edit.text().replace(",", " ").split())
        except QSMMSError as exc:
            self.status_label.setText(f"error: {exc}")

    def set_panel(self, raters: list[str]) -> None:
        """Store the study's panel of raters (``rating.panel.write_panel``), honoured from now on."""
        if self.subject is None:
            raise QSMMSError("no subject loaded")
        path = write_panel(StudyFiles.at(self.subject.study), raters)
        self.status_label.setText(f"panel of raters {', '.join(raters)} -> {path.name}")

    def run_consensus(self) -> pd.DataFrame:
        """Run the consensus of the chosen round for the subject and the study's agreement; show both."""
        if self.blinded:
            raise QSMMSError("the consensus is hidden while a rater is signed in")
        subject = self.subject
        if subject is None:
            raise QSMMSError("no subject loaded")
        if self.round_name != "class":
            return self.run_round(subject)
        table = run_consensus(subject)  # the study's stored panel (raters.tsv), as qsm-ms consensus
        study = StudyFiles.at(subject.study)
        with_votes = [s.label for s in study.subjects() if len(list_raters(s)) >= 2]
        _, self.study_report = write_agreement(study, with_votes, read_panel(study))
        self.status_label.setText(f"wrote {subject.lesions_tsv.name} and {study.agreement_tsv.name}")
        self._show(subject, table)
        return table

    def _show(self, subject: SubjectFiles, table: pd.DataFrame) -> None:
        self.table_frame = table
        raters = table["raters"].iloc[0].split(";") if len(table) else list_raters(subject)
        self.panel_edit.setPlaceholderText(f"panel in use: {' '.join(raters)} (type names + Set panel to change)")
        votes = read_all_votes(subject, raters).assign(subject=subject.label)
        ratings = ratings_matrix(votes, raters)
        self.report = agreement(ratings, raters)
        # per-candidate table
        cols = ["source", "lesion", "class", "consensus", *raters, "votes", "agreement", "reason"]
        self.lesion_table.clear()
        self.lesion_table.setColumnCount(len(cols))
        self.lesion_table.setHorizontalHeaderLabels(cols)
        self.lesion_table.setRowCount(len(table))
        for i, (_, rec) in enumerate(table.iterrows()):
            rater_votes = []
            for r in raters:
                key = (subject.label, rec["candidate_source"], int(rec["lesion_id"]))
                v = ratings.loc[key, r] if key in ratings.index else None
                rater_votes.append(v or "-")
            cls = rec["class"]
            values = [rec["candidate_source"], str(rec["lesion_id"]), cls, rec["consensus"], *rater_votes,
                      rec["votes"] or "-", f"{float(rec['agreement']):.2f}", rec["resolution_reason"]]
            for j, v in enumerate(values):
                item = QTableWidgetItem(str(v))
                if j == 2:
                    item.setForeground(QColor("white"))
                    item.setBackground(QColor(_CLASS_COLOURS.get(cls, "#000000")))
                self.lesion_table.setItem(i, j, item)
        counts = table["class"].value_counts()
        self.summary_label.setText(
            f"{subject.sub}: {len(table)} candidates, {len(raters)} raters ({', '.join(raters)}): "
            + ", ".join(f"{c} {int(counts.get(c, 0))}" for c in CONSENSUS_CLASSES)
            + f"; {int((table['consensus'] == 'resolved').sum())} resolved"
        )
        # disputes
        self.dispute_combo.clear()
        for rec in table[table["consensus"].isin(["disputed", "resolved"])].itertuples(index=False):
            state = "resolved" if rec.consensus == "resolved" else "disputed"
            self.dispute_combo.addItem(
                f"{rec.candidate_source} {rec.lesion_id} ({state}; {rec.votes or 'no votes'})",
                (rec.candidate_source, int(rec.lesion_id)),
            )
        # agreement
        rep, srep = self.report, self.study_report
        lines = [f"{subject.sub}: Fleiss' kappa <b>{_fmt_kappa(rep.fleiss_kappa)}</b> (n={rep.fleiss_n_items})"]
        lines += [f"&nbsp;&nbsp;Cohen's kappa {a}/{b}: {_fmt_kappa(k)} (n={n})" for a, b, k, n in rep.cohen]
        if srep is not None:
            lines.append(
                f"study (agreement.tsv): Fleiss' kappa <b>{_fmt_kappa(srep.fleiss_kappa)}</b> (n={srep.fleiss_n_items})"
            )
        self.kappa_label.setText("<br>".join(lines))
        counts_frame = rep.class_counts.copy()
        counts_frame.loc["consensus"] = [
            int((table["class"] == ("rejected" if c == "not_lesion" else c)).sum()) for c in VOTE_CLASSES
        ]
        self._fill(self.counts_table, counts_frame, row_header="rater")
        self.pair_combo.blockSignals(True)
        self.pair_combo.clear()
        for a, b in rep.confusion:
            self.pair_combo.addItem(f"{a} (rows) vs {b} (columns)", (a, b))
        self.pair_combo.blockSignals(False)
        self._show_confusion()

    # ------------------------------------------------------------------- round 2 (rim and vein)
    def run_round(self, subject: SubjectFiles) -> pd.DataFrame:
        """``qsm-ms consensus --round <round>`` for the study (every subject, the stored panel);
        shows the loaded subject's consensus and the kappas written to the agreement file."""
        study = StudyFiles.at(subject.study)
        round_name = self.round_name
        done, table = run_round_consensus(study, study.subjects(), read_panel(study), round_name)
        if subject.label not in done:
            raise QSMMSError(f"{subject.sub}: fewer than 2 raters have answered the {round_name} round")
        self.round_agreement = table
        self.status_label.setText(f"wrote round-{round_name} consensus of {len(done)} subject(s) and "
                                  f"{round_agreement_tsv(study, round_name).name}")
        self._show_round(subject, done[subject.label])
        return done[subject.label]

    def _show_round(self, subject: SubjectFiles, cons: pd.DataFrame) -> None:
        self.round_frame = cons
        # the subject's panel as run_round_consensus takes it: the stored panel, else its raters
        raters = read_panel(StudyFiles.at(subject.study)) or list_round_raters(subject, self.round_name)
        votes = read_round_votes(subject, raters, self.round_name)
        self.round_subject_agreement = marker_agreement(votes, raters, subjects=subject.label)
        wide = cons.pivot(index="lesion_id", columns="marker", values=["value", "votes"])
        answers = votes.set_index(["lesion_id", "rater"])
        cols = ["lesion", *(f"{_MARKER_TITLES[m]}{h}" for m in MARKERS for h in ("", " votes")), *raters]
        self.lesion_table.clear()
        self.lesion_table.setColumnCount(len(cols))
        self.lesion_table.setHorizontalHeaderLabels(cols)
        self.lesion_table.setRowCount(len(wide))
        for i, lid in enumerate(wide.index):
            values = [str(lid)]
            for m in MARKERS:
                values += [wide.loc[lid, ("value", m)], wide.loc[lid, ("votes", m)] or "-"]
            for r in raters:
                a = answers.loc[(lid, r)] if (lid, r) in answers.index else None
                values.append("-" if a is None else f"{a['prl'] or '-'} / {a['cvs'] or '-'}"
                              + (f" ({a['cvs_exclusion']})" if a["cvs_exclusion"] else ""))
            for j, v in enumerate(values):
                item = QTableWidgetItem(str(v))
                if v == "disputed":
                    item.setForeground(QColor("white"))
                    item.setBackground(QColor(_CLASS_COLOURS["disputed"]))
                self.lesion_table.setItem(i, j, item)
        agreed = cons[cons["consensus"] == "agreed"]
        n_prl = int(((agreed["marker"] == "prl") & (agreed["value"] == "yes")).sum())
        n_cvs = int(((agreed["marker"] == "cvs") & (agreed["value"] == "present")).sum())
        self.summary_label.setText(
            f"{subject.sub}, round {self.round_name}: {len(wide)} lesions, {len(raters)} raters "
            f"({', '.join(raters)}): PRL {n_prl}, CVS present {n_cvs}, "
            f"disputed answers {int((cons['consensus'] == 'disputed').sum())}"
        )
        self.kappa_label.setText(self._round_kappa_html(subject))
        counts = {}
        for r in [*raters, "consensus"]:
            frame = votes[votes["rater"] == r] if r != "consensus" else None
            row = {}
            for m, vocab in MARKERS.items():
                values = frame[m] if frame is not None else cons.loc[cons["marker"] == m, "value"]
                row.update({f"{_MARKER_TITLES[m]} {v}": int((values == v).sum()) for v in vocab})
            counts[r] = row
        self._fill(self.counts_table, pd.DataFrame(counts).T, row_header="rater")
        self.dispute_combo.clear()
        self.confusion_table.setRowCount(0)

    def _round_kappa_html(self, subject: SubjectFiles) -> str:
        name = round_agreement_tsv(StudyFiles.at(subject.study), self.round_name).name
        lines = []
        for title, table in ((f"study ({name})", self.round_agreement), (subject.sub, self.round_subject_agreement)):
            for m in MARKERS:
                rows = table[table["marker"] == m]
                fk = rows[rows["measure"] == "fleiss_kappa"].iloc[0]
                lines.append(f"{title}: {_MARKER_TITLES[m]} Fleiss' kappa <b>{_fmt_kappa(fk['value'])}</b> "
                             f"(n={fk['n_items']})")
                if title.startswith("study"):
                    lines += [f"&nbsp;&nbsp;{_MARKER_TITLES[m]} Cohen's kappa {rec.raters.replace(';', '/')}: "
                              f"{_fmt_kappa(rec.value)} (n={rec.n_items})"
                              for rec in rows[rows["measure"] == "cohen_kappa"].itertuples(index=False)]
        return "<br>".join(lines)

    def _fill(self, widget: QTableWidget, frame: pd.DataFrame, row_header: str) -> None:
        widget.clear()
        widget.setColumnCount(len(frame.columns) + 1)
        widget.setHorizontalHeaderLabels([row_header, *map(str, frame.columns)])
        widget.setRowCount(len(frame))
        for i, (idx, row) in enumerate(frame.iterrows()):
            widget.setItem(i, 0, QTableWidgetItem(str(idx)))
            for j, v in enumerate(row):
                widget.setItem(i, j + 1, QTableWidgetItem(str(v)))

    def _show_confusion(self) -> None:
        pair = self.pair_combo.currentData()
        if self.report is None or pair is None:
            self.confusion_table.setRowCount(0)
            return
        a, b = pair
        self._fill(self.confusion_table, self.report.confusion[(a, b)], row_header=f"{a} \\ {b}")

    def disputed_ids(self) -> list[int]:
        """Lesion ids of the disputed candidates in the current table."""
        if self.table_frame is None:
            return []
        return [int(i) for i in self.table_frame.loc[self.table_frame["consensus"] == "disputed", "lesion_id"]]

    def _on_resolve(self) -> None:
        try:
            self.resolve_current()
        except QSMMSError as exc:
            self.status_label.setText(f"error: {exc}")

    def resolve_current(self) -> None:
        """Record the resolution chosen in the dispute box for the selected candidate."""
        data = self.dispute_combo.currentData()
        if data is None or self.subject is None:
            raise QSMMSError("no disputed candidate selected")
        source, lesion_id = data
        cls = self.resolution_combo.currentText()
        resolve(self.subject, lesion_id, cls, self.reason_edit.text(), candidate_source=source)
        self.reason_edit.clear()
        self.status_label.setText(f"{source} {lesion_id} resolved as {cls}")
        self._show(self.subject, read_lesion_classes(self.subject))

    def select_lesion(self, lesion_id: int, source: str = "drawn") -> None:
        """Select a candidate's row (and its dispute entry) and centre the viewer on it."""
        if self.table_frame is None:
            return
        rows = np.flatnonzero(
            (self.table_frame["lesion_id"] == lesion_id) & (self.table_frame["candidate_source"] == source)
        )
        if rows.size:
            self.lesion_table.selectRow(int(rows[0]))
        k = _find_data(self.dispute_combo, (source, int(lesion_id)))
        if k >= 0:
            self.dispute_combo.setCurrentIndex(k)

    def _on_row_selected(self) -> None:
        rows = self.lesion_table.selectionModel().selectedRows() if self.lesion_table.selectionModel() else []
        if rows and self.round_frame is not None:
            item = self.lesion_table.item(rows[0].row(), 0)
            self._centre_on_lesion(int(item.text())) if item is not None else None
            return
        if not rows or self.table_frame is None:
            return
        rec = self.table_frame.iloc[rows[0].row()]
        k = _find_data(self.dispute_combo, (rec["candidate_source"], int(rec["lesion_id"])))
        if k >= 0:
            self.dispute_combo.setCurrentIndex(k)
        if rec["candidate_source"] == "drawn":
            self._centre_on_lesion(int(rec["lesion_id"]))

    def _centre_on_lesion(self, lesion_id: int) -> None:
        layer = find_layer(self.viewer, "lesions", self.subject)
        if layer is None:
            return
        show_lesion(self.viewer, layer, lesion_id)

    def _on_propose(self) -> None:
        subject = self.subject
        if subject is None:
            self.status_label.setText("error: no subject loaded")
            return
        self.worker = run_with_progress(
            propose_subject, self.panel, subject=subject,
            on_returned=lambda path: self.status_label.setText(f"proposals written to {path.name}"),
            on_error=lambda exc: self.status_label.setText(f"error: {exc}"),
        )
