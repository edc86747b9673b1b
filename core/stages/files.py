"""The files stages write that are read elsewhere: the runner logs them, the report and
``clustergrid labels`` read them back from the store. Each stage lists those it writes in
its declaration (``Stage.files``)."""

#: sub-folder of a cache entry holding what its component saved (``Component.save``) and
#: the files its stage writes for the store
ARTIFACTS = "artifacts"
#: the map stage's 2-D coordinates of every item, as a step file
MAP = "map.npy"
#: the data stage's thumbnails: ``index`` (items shown), their ``ids``, ``images`` (uint8
#: RGB) and, for labelled data, ``labels``
THUMBNAILS = "thumbnails.npz"
#: the score stage's thumbnails of a combination's most unusual items: ``index`` (items,
#: the most unusual first) and ``images`` (uint8 RGB)
UNUSUAL = "unusual.npz"
#: the data stage's table of every item: ``id``, ``source`` (when the dataset knows where
#: each item comes from) and ``class`` (its true class name, empty when unknown)
ITEMS = "items.csv"
#: the cards stage's files: a row per cluster and descriptor, and every card as JSON
CARDS_CSV = "cards.csv"
CARDS_JSON = "cards.json"
