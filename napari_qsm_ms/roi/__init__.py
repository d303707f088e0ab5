"""Lesion labels, tissue classes, reference ROIs (rings with gaps, cortical strips) and QC.

Pure numpy/scipy, no Qt (docs/roi.md):

* :mod:`.lesions` -- lesion table, suggested class, label edits (merge, split, relabel, parts);
* :mod:`.references` -- :func:`~.references.build_references` (the paper's reference ROIs);
* :mod:`.study` -- :func:`~.study.build_subject_references` over the study layout (``qsm-ms rois``);
* :mod:`.tissue` -- tissue classes from FreeSurfer/SynthSeg/FAST, or a first estimate from images;
* :mod:`.vessels` -- vessel candidates on the susceptibility map, voxel removal;
* :mod:`.annotation` -- per-lesion exclusions, flags and notes (atomic JSON).
"""
