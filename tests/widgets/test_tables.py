"""A fitted table never elides a number: numeric columns keep the width of their values."""

from qtpy.QtWidgets import QTableWidget, QTableWidgetItem

from napari_qsm_ms._widgets._tables import fit_columns


def test_numbers_in_a_narrow_fitted_table_are_not_elided(qtbot):
    headers = ["Subject", "Class", "Rel. (ppm)", "Lesion (ppm)", "Ref. (ppm)", "Voxels", "Flags"]
    rows = [["01", "disputed", "+0.0148", "-0.0404", "-0.0256", "39", "class:disputed"],
            ["01", "wm", "+0.0212", "+0.0147", "n/a", "57", ""]]
    table = QTableWidget(len(rows), len(headers))
    qtbot.addWidget(table)
    table.setHorizontalHeaderLabels(headers)
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            table.setItem(r, c, QTableWidgetItem(text))
    table.resize(470, 200)
    table.show()
    fitter = fit_columns(table, len(headers) - 1)
    fitter.fit()
    for c in (2, 3, 4, 5):  # the numeric columns
        assert table.columnWidth(c) >= table.sizeHintForColumn(c), headers[c]
    assert table.columnWidth(len(headers) - 1) >= 24
