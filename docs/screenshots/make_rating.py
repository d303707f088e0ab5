"""Screenshots of rater mode and of the consensus dock (docs/rating.md).

Run under Xvfb: ``xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/screenshots/make_rating.py``
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import napari
from qtpy.QtCore import QTimer

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from tests.rating._helpers import make_phantom_subject  # noqa: E402

from napari_qsm_ms._widgets._layers import load_subject_into_viewer  # noqa: E402
from napari_qsm_ms._widgets.rating import RaterWidget  # noqa: E402
from napari_qsm_ms.rating.votes import record_vote  # noqa: E402


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="rating-shots-"))
    subject, ph = make_phantom_subject(tmp / "study", shape=(128, 128, 48), voxel_size_mm=(1.2, 1.2, 3.0))
    viewer = napari.Viewer(title="napari-qsm-ms: rater mode")
    viewer.window.resize(1550, 980)
    load_subject_into_viewer(viewer, subject)
    rater = RaterWidget(viewer)
    viewer.window.add_dock_widget(rater, name="Rater mode (blinded)", area="right")
    rater.rater_edit.setText("ann")
    rater.sign_in("ann", blocking=True)
    rater.vote("wm")
    rater.vote("mixed")
    rater.comment_edit.setText("touches the cortex on the slice above")

    def close_toasts() -> None:
        from napari._qt.dialogs.qt_notification import NapariQtNotification

        for toast in viewer.window._qt_window.findChildren(NapariQtNotification):
            toast.close()

    def shoot_rater() -> None:
        close_toasts()
        out = HERE / "rating_rater_mode.png"
        viewer.screenshot(str(out), canvas_only=False, flash=False)
        print(f"wrote {out}")
        rater.sign_out()
        viewer.window.remove_dock_widget(rater)
        QTimer.singleShot(500, consensus_step)

    def consensus_step() -> None:
        from napari_qsm_ms._widgets.consensus import ConsensusWidget

        classes = dict(zip(ph.lesion_table["lesion_id"], ph.lesion_table["class"]))
        import numpy as np

        rng = np.random.default_rng(3)
        for name, err in (("ann", 0.2), ("ben", 0.35), ("cat", 0.45)):
            for lid, cls in classes.items():
                vote = cls if rng.random() > err else str(rng.choice(["wm", "cortical", "mixed", "not_lesion"]))
                record_vote(subject, name, int(lid), vote)
        cons = ConsensusWidget(viewer)
        viewer.window.add_dock_widget(cons, name="Consensus and agreement", area="right")
        cons.run_consensus()
        disputed = cons.disputed_ids()
        if disputed:
            cons.select_lesion(disputed[0])
        QTimer.singleShot(1500, lambda: shoot_consensus(cons))

    def shoot_consensus(cons) -> None:
        close_toasts()
        out = HERE / "consensus_dock.png"
        cons.grab().save(str(out))
        out2 = HERE / "consensus_viewer.png"
        viewer.screenshot(str(out2), canvas_only=False, flash=False)
        print(f"wrote {out} and {out2}")
        viewer.close()

    QTimer.singleShot(2500, shoot_rater)
    napari.run()


if __name__ == "__main__":
    main()
