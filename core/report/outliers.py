"""The explorer's gallery of unusual items: for each combination, the items with the
highest outlier scores (the higher, the more unusual), ranked among all items of the
dataset, with the thumbnails the score step made of them.

Rendered as HTML here, one block per combination; a few lines of script show the block
of the combination chosen in the explorer. Item ids are user text: escaped.
"""

from __future__ import annotations

import html

import numpy as np

from clustergrid.report.collect import ReportData
from clustergrid.report.png import png_data_uri

esc = html.escape
#: how many times larger than the stored thumbnails the gallery draws them
SCALE = 2

#: shows the block of the combination chosen (the select, or a row of the leaderboard)
_SCRIPT = """<script>(function () {
  var select = document.getElementById('combination');
  var blocks = document.querySelectorAll('#unusual .unusual-run');
  var none = document.getElementById('unusual-none');
  function sync(id) {
    var found = false;
    blocks.forEach(function (b) { b.hidden = b.dataset.run !== id; found = found || !b.hidden; });
    none.hidden = found;
  }
  function known(id) {
    return Array.prototype.some.call(select.options, function (o) { return o.value === id; });
  }
  select.addEventListener('change', function () { sync(select.value); });
  document.querySelectorAll('#leaderboard-table tbody tr').forEach(function (row) {
    row.addEventListener('click', function () {
      if (known(row.dataset.run)) { sync(row.dataset.run); }
    });
  });
  sync(select.value);
})();</script>"""


def unusual_gallery(data: ReportData, runs: list[dict]) -> str:
    """The gallery's HTML for the explorer's ``runs`` (``explorer_data``'s), the first
    one shown."""
    rules, blocks = [], []
    for number, run in enumerate(runs):
        files = data.files.get(run["id"])
        rows = files.unusual if files is not None else []
        if not rows:
            continue
        images = [_image(row, data.thumbnails.get(run["data"])) for row in rows]
        css = f"unusual-{number}"
        if any(image is not None for image in images):
            rules.append(f".{css}{{background-image:url({_strip(images)})}}")
        size = next((len(i) for i in images if i is not None), 0) * SCALE
        items = []
        for position, (row, image) in enumerate(zip(rows, images, strict=True)):
            picture = (f"<span class='thumb {css}' style='width:{size}px;height:{size}px;"
                       f"background-size:{len(images) * size}px auto;"
                       f"background-position:{-position * size}px 0'></span>"
                       if image is not None else "")
            items.append(f"<figure class='unusual-item' title='id {esc(row['id'])}'>{picture}"
                         f"<figcaption>#{row['rank']} {esc(row['id'])}<br>"
                         f"score {row['score']:.3g}</figcaption></figure>")
        hidden = " hidden" if blocks else ""
        blocks.append(f"<div class='unusual-run' data-run='{esc(run['id'])}'{hidden}>"
                      f"{''.join(items)}</div>")
    none = " hidden" if blocks else ""
    return ("<div id='unusual'><h3>Unusual items</h3><p class='note'>The items with the "
            "highest outlier scores (the higher, the more unusual), ranked among all items, "
            "not only those with a point on the map: the clusterer's own score (GLOSH for "
            "hdbscan, the distance to the nearest centroid over its cluster's median for "
            "k-means, the negative log-likelihood for gmm), else the mean distance to the "
            "10 nearest neighbours as a robust z-score.</p>"
            "<style>.unusual-item{display:inline-block;margin:0 6px 6px 0;font-size:11px;"
            "vertical-align:top}.unusual-item .thumb{display:block}"
            f"{''.join(rules)}</style>{''.join(blocks)}"
            f"<p class='note' id='unusual-none'{none}>No outlier scores were logged for this "
            f"combination.</p></div>{_SCRIPT}")


def _image(row: dict, thumbs: dict[str, np.ndarray] | None) -> np.ndarray | None:
    """The item's thumbnail: the score step's, else the data step's when it has one."""
    if row["image"] is not None:
        return row["image"]
    if thumbs is None:
        return None
    shown = thumbs["index"]
    position = int(np.searchsorted(shown, row["index"]))
    if position < len(shown) and shown[position] == row["index"]:
        return thumbs["images"][position]
    return None


def _strip(images: list[np.ndarray | None]) -> str:
    """The thumbnails side by side in one PNG (black where one is missing), a data URI."""
    size = next(len(i) for i in images if i is not None)
    strip = np.zeros((size, size * len(images), 3), dtype=np.uint8)
    for position, image in enumerate(images):
        if image is not None and image.shape[:2] == (size, size):
            strip[:, position * size:(position + 1) * size] = image
    return png_data_uri(strip)
