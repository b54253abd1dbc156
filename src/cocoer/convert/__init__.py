"""The converter of the authors' released checkpoint (``cocoer-convert``): the mapping
rules (:mod:`cocoer.convert.authors`) and the conversion report
(:mod:`~cocoer.convert.report`)."""
