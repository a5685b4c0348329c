"""qplug built-in ``fullref`` plugin: full-reference scores of an encode against its source.

Run with ``--reference`` (a file, or a template such as ``masters/{stem}.mov``): ``psnr`` and
``psnr_yuv`` (as ffmpeg's ``psnr`` filter computes them), ``ssim`` (Wang et al. 2004) and ``vmaf``
(Netflix's VMAF through the libvmaf filter of the ffmpeg qplug uses). Only registration lives here;
numpy, OpenCV and ffmpeg are used when a scorer is built.
"""

from __future__ import annotations

from typing import Callable

from qplug import ScorerInfo, hookimpl

#: PSNR of identical pictures is infinite; reports need a number, so it is capped here (dB), far
#: above any lossy encode (visually lossless H.264 sits around 45-50 dB).
PSNR_CAP = 100.0

SCORERS: tuple[ScorerInfo, ...] = (
    ScorerInfo(name="psnr", factory="qplug_fullref.scorers:PsnrScorer",
               description="PSNR of luma against the reference, dB (ffmpeg's psnr filter, psnr_y); "
                           f"identical = {PSNR_CAP:g}",
               range=(0.0, PSNR_CAP), higher_is_better=True, inputs=("reference",), unit="dB", batch_size=8),
    ScorerInfo(name="psnr_yuv", factory="qplug_fullref.scorers:PsnrYuvScorer",
               description="PSNR of Y, U and V together, weighted by plane size, dB (ffmpeg's psnr_avg)",
               range=(0.0, PSNR_CAP), higher_is_better=True, inputs=("reference",), unit="dB", batch_size=8),
    ScorerInfo(name="ssim", factory="qplug_fullref.scorers:SsimScorer",
               description="SSIM of luma against the reference (Wang et al. 2004, 11x11 Gaussian window); 1 = identical",
               range=(-1.0, 1.0), higher_is_better=True, inputs=("reference",), unit="index", batch_size=8),
    # VMAF's scale: 0-100, where 20-point steps span "bad" to "excellent" (Netflix, vmaf_v0.6.1).
    ScorerInfo(name="vmaf", factory="qplug_fullref.vmaf:VmafScorer",
               description="VMAF (vmaf_v0.6.1) against the reference, by ffmpeg's libvmaf; input scaled to the "
                           "reference's size (bicubic), frames paired by time",
               range=(0.0, 100.0), higher_is_better=True, inputs=("reference_path",), unit="VMAF", batch_size=64),
)


@hookimpl
def register_scorers(register: Callable[[ScorerInfo], None]) -> None:
    """Register the full-reference scorers (they need ``--reference``)."""
    for info in SCORERS:
        register(info)
