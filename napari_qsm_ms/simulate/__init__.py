"""Numerical 7 T head phantom with MS lesions, GRE forward model and simulated studies.

* :mod:`.phantom`: :func:`~.phantom.make_phantom` (anatomy, lesions, susceptibility, contrasts);
* :mod:`.forward`: :func:`~.forward.local_field_ppm` (dipole convolution) and
  :func:`~.forward.gre_signal` (magnitude and wrapped phase with background field and noise);
* :mod:`.study`: :func:`~.study.simulate_study` writes a whole study with ground truth.
"""
