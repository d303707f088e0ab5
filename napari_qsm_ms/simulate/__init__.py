"""Numerical 7 T head phantom with MS lesions, GRE forward model and simulated studies.

* :mod:`.phantom`: :func:`~.phantom.make_phantom` (anatomy, lesions, susceptibility, contrasts);
* :mod:`.head_model`: the analytic head model (region codes, tissue properties, veins);
* :mod:`.lesion_placement`: the designed lesion offsets (Table 3) and their placement on a grid;
* :mod:`.mni`: real brain anatomy from the MNI ICBM152 2009 templates shipped with nilearn;
* :mod:`.forward`: :func:`~.forward.local_field_ppm` (dipole convolution) and
  :func:`~.forward.gre_signal` (magnitude and wrapped phase with background field and noise);
* :mod:`.study`: :func:`~.study.simulate_study` writes a whole study with ground truth;
* :mod:`.truth`: :class:`~.truth.TruthFiles`, the file names of the ground truth;
* :mod:`.sample_study`: regenerates the shipped ``sample_data/study``.
"""
