"""Generated datasets in the real EMOTIC and CAER-S layouts (for tests, smoke runs, demos).

Labels are easy to learn from pixels, at every level: class ``i`` has a solid colour
``PALETTE[i]`` (the 26 colours ``{0, 128, 255}^3`` minus mid-grey). For every person each shown
class is painted

- on the head: vertical colour strips filling the head box (visible above and beside a
  face-like pattern: skin ellipse in the lower two thirds, dark eyes and mouth);
- on the body: horizontal stripes on the torso (body box below the head);
- in the context: round blobs outside every body box.

The background is low-saturation noise. A fraction ``conflict_rate`` of the images has ONE level
(head, body or context, uniformly) showing a wrong class instead of one true class (a context
conflict: the blobs of the replaced class are gone and the wrong class has blobs of its own; a
head or body conflict: one person's head or shirt). The painted areas are balanced (the shirt
covers the middle 70 % of the body box, three blobs per class in the context) so that the true
classes cover more of the image than the conflicting level. ``conflict_area`` (< 1) shrinks the
wrong class further where it is large in the whole image: on a conflicting shirt it fills that
share of the replaced stripe (the rest dark neutral), in a conflicting context it gets that
share of the blobs (at least one); the replaced class is gone from the level all the same, and
a conflicting head keeps full strips. A V-I branch reading the whole image then agrees with the
majority of the levels, while the zoomed level window still shows its wrong class: the planted
level is identifiable in principle. The side file
``cocoer_synthetic_meta.json`` records, per person, the true labels, the conflicting level and
the classes involved (and the bad cases, below). Everything is deterministic given ``seed``.

EMOTIC (:func:`generate_emotic`): JPEGs under ``emodb_small/images``, ``ade20k/images``,
``framesdb/images``, ``mscoco/images``; ``Annotations/Annotations.mat`` written with
``scipy.io.savemat`` as MATLAB struct arrays laid out like the official file (see
:mod:`cocoer.data.emotic`), and the CSV export ``emotic_pre/{train,val,test}.csv``. About 30% of
the images have two persons (sharing the label set). The head is drawn at
``head_from_body(body)`` plus a small jitter; ``head_box_fraction`` of the persons also carry
an annotated ``head_bbox``.

CAER-S (:func:`generate_caer_s`): PNGs in ``CAER-S/{train,test}/<Emotion>/``, one person per
image, and (``box_cache=True``) the true boxes in ``CAER-S/cocoer_boxes.jsonl`` with source
``"annotation"``.

``bad_cases=True`` adds inputs the data layer must handle (listed in the meta file under
``"bad_cases"`` with ``expected`` = ``"skip"``, ``"fixed"`` or ``"load"`` and a ``reason``
substring of the reported reason); the EMOTIC ones are the rows of
:data:`~cocoer.data.synthetic.bad_cases.EMOTIC_BAD_CASES`.

Modules: :mod:`.render` (drawing), :mod:`.emotic_writer` (``.mat``/CSV), :mod:`.emotic`,
:mod:`.caer_s` (the generators), :mod:`.bad_cases`, :mod:`.meta` (the side file).
"""

from cocoer.data.synthetic.bad_cases import EMOTIC_BAD_CASES, BadCase, write_png_header_only
from cocoer.data.synthetic.caer_s import generate_caer_s
from cocoer.data.synthetic.emotic import generate_emotic
from cocoer.data.synthetic.emotic_writer import write_emotic_csv, write_emotic_mat
from cocoer.data.synthetic.render import (
    CAER_S_COLOURS,
    EMOTIC_FOLDERS,
    LEVEL_NAMES,
    META_NAME,
    PALETTE,
)

__all__ = [
    "CAER_S_COLOURS",
    "EMOTIC_BAD_CASES",
    "EMOTIC_FOLDERS",
    "LEVEL_NAMES",
    "META_NAME",
    "PALETTE",
    "BadCase",
    "generate_caer_s",
    "generate_emotic",
    "write_emotic_csv",
    "write_emotic_mat",
    "write_png_header_only",
]
