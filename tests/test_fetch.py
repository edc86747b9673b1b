"""``clustergrid data fetch`` and ``data list`` against a local HTTP server: the catalogue's
FR-DEEP entry points at a small archive made here in FR-DEEP's own layout (pickled
batches), so nothing is downloaded from the internet. A wrong checksum is refused in one
line, a second fetch uses the data folder, and a fetched set is read offline."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
import sys
import tarfile
import threading
from dataclasses import replace
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from clustergrid import public_data
from clustergrid.errors import ClustergridError
from clustergrid.public_data import CATALOGUE, DATA_VARIABLE, RemoteFile

ROOT = Path(__file__).parents[1]
ARCHIVE = "FIRST_PNG_dataset.tar.gz"
#: images per batch and their side: FR-DEEP's 12 batches of 50 150x150 images, made small
PER_BATCH, SIDE = 2, 8
BATCHES = [*(f"data_batch_{i}" for i in range(1, 12)), "test_batch"]


def batches() -> dict[str, tuple[np.ndarray, list[int]]]:
    """Noise images (never constant) with alternating FR I / FR II codes, per batch."""
    rng = np.random.default_rng(0)
    return {name: (rng.integers(0, 256, (PER_BATCH, SIDE * SIDE), dtype=np.uint8),
                   [i % 2 for i in range(PER_BATCH)]) for name in BATCHES}


def frdeep_archive() -> bytes:
    """A .tar.gz laid out as FR-DEEP's: ``FIRST_PNG_dataset/`` with the batches and
    ``batches.meta``, pickled with protocol 2 as Python 2 wrote them."""
    members = {name: {"data": data, "labels": labels, "batch_label": name}
               for name, (data, labels) in batches().items()}
    members["batches.meta"] = {"label_names": ["FRI", "FRII"], "num_vis": SIDE * SIDE}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in members.items():
            payload = pickle.dumps(content, protocol=2)
            info = tarfile.TarInfo(f"FIRST_PNG_dataset/{name}")
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


@pytest.fixture
def server(tmp_path):
    """A local HTTP server of a folder holding the archive; ``requests`` counts the GETs."""
    served = tmp_path / "served"
    served.mkdir()
    (served / ARCHIVE).write_bytes(frdeep_archive())
    requests: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):  # quiet
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/{ARCHIVE}"
    yield {"url": url, "requests": requests, "httpd": httpd, "archive": served / ARCHIVE}
    httpd.shutdown()
    httpd.server_close()


def point_frdeep_at(monkeypatch, url: str, checksum: str) -> None:
    monkeypatch.setitem(CATALOGUE, "frdeep", replace(
        CATALOGUE["frdeep"], files=(RemoteFile(url, checksum),)))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def data(tmp_path, monkeypatch):
    """The data folder, by ``$CLUSTERGRID_DATA``."""
    folder = tmp_path / "data"
    monkeypatch.setenv(DATA_VARIABLE, str(folder))
    return folder


def clustergrid(capsys, monkeypatch, *args: str) -> tuple[int, str, str]:
    """The command line in this process (the catalogue is patched here), as ``main`` runs
    it: exit status, standard output, standard error."""
    from clustergrid.cli import main

    monkeypatch.setattr(sys, "argv", ["clustergrid", *args])
    try:
        main()
        code = 0
    except SystemExit as exit:
        code = exit.code or 0
    out, err = capsys.readouterr()
    return code, out, err


def printed_entry(out: str) -> dict:
    """The dataset entry ``data fetch`` prints, read back as YAML."""
    block = out.split("datasets:\n", 1)[1].split("\nLook at it first:", 1)[0]
    (entry,) = yaml.safe_load(block)
    return entry


def test_fetch_converts_the_batches_prints_the_entry_and_then_uses_the_data_folder(
        server, data, capsys, monkeypatch):
    point_frdeep_at(monkeypatch, server["url"], f"sha256:{sha256(server['archive'])}")
    code, out, err = clustergrid(capsys, monkeypatch, "data", "fetch", "frdeep")
    assert code == 0, err
    assert "scholarly, educational and private non-commercial use" in out  # the licence
    assert "arXiv:1903.11921" in out  # the citation
    assert f"Downloaded, checksum checked: {ARCHIVE}" in out
    images = data / "frdeep" / "images"
    assert f"Data: {images}" in out
    assert printed_entry(out) == {"plugin": "images", "path": str(images),
                                  "labels_from": "folders", "channels": "gray",
                                  "on_error": "skip"}
    # One PNG per image, numbered across the batches in order, in its class's folder.
    expected = batches()
    number = 0
    for name in BATCHES:
        pixels, labels = expected[name]
        for row, code_ in zip(pixels, labels, strict=True):
            png = images / ["FRI", "FRII"][code_] / f"frdeep_{number:04d}.png"
            assert np.array_equal(np.asarray(Image.open(png)), row.reshape(SIDE, SIDE)), png
            number += 1
    assert len(list(images.rglob("*.png"))) == len(BATCHES) * PER_BATCH
    assert len(server["requests"]) == 1

    code, out, err = clustergrid(capsys, monkeypatch, "data", "fetch", "frdeep")
    assert code == 0, err
    assert f"Already in the data folder, checksum checked: {ARCHIVE}" in out
    assert "Downloaded" not in out
    assert len(server["requests"]) == 1  # nothing downloaded the second time


def test_a_checksum_mismatch_is_refused_in_one_line(server, tmp_path, capsys, monkeypatch):
    wrong = "sha256:" + "0" * 64
    point_frdeep_at(monkeypatch, server["url"], wrong)
    to = tmp_path / "elsewhere"
    code, _, err = clustergrid(capsys, monkeypatch, "data", "fetch", "frdeep", "--to", str(to))
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    got = sha256(server["archive"])
    assert lines[0].startswith(f"error: frdeep: {ARCHIVE}: checksum mismatch: "
                               f"expected {wrong}, got sha256:{got}"), lines[0]
    # Nothing of the download is kept, nor anything converted.
    assert not (to / "frdeep").exists() or list((to / "frdeep").rglob("*")) == []


def test_md5_checksums_as_the_radio_datasets_publish_them(server, data, capsys, monkeypatch):
    md5 = hashlib.md5(server["archive"].read_bytes()).hexdigest()
    point_frdeep_at(monkeypatch, server["url"], f"md5:{md5}")
    assert clustergrid(capsys, monkeypatch, "data", "fetch", "frdeep")[0] == 0
    point_frdeep_at(monkeypatch, server["url"], "md5:" + "f" * 32)
    (data / "frdeep" / ARCHIVE).unlink()
    code, _, err = clustergrid(capsys, monkeypatch, "data", "fetch", "frdeep")
    assert code == 1 and f"got md5:{md5}" in err and len(err.strip().splitlines()) == 1


def test_a_fetched_set_works_offline(server, data, tmp_path, capsys, monkeypatch):
    point_frdeep_at(monkeypatch, server["url"], f"sha256:{sha256(server['archive'])}")
    code, out, err = clustergrid(capsys, monkeypatch, "data", "fetch", "frdeep")
    assert code == 0, err
    entry = printed_entry(out)
    server["httpd"].shutdown()  # no network from here on
    server["httpd"].server_close()

    code, out, err = clustergrid(capsys, monkeypatch, "data", "fetch", "frdeep")
    assert code == 0, err  # from the data folder
    experiment = tmp_path / "fetched.yaml"
    experiment.write_text(yaml.safe_dump({
        "name": "fetched", "datasets": [entry], "encoders": [{"plugin": "pixels"}],
        "clusterers": [{"plugin": "kmeans", "n_clusters": 2}]}, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    code, out, err = clustergrid(capsys, monkeypatch, "inspect", str(experiment),
                                 "--montage", str(tmp_path / "montage.png"))
    assert code == 0, err
    assert f"{len(BATCHES) * PER_BATCH} items of shape (1, {SIDE}, {SIDE})" in out
    assert re.search(r"FRI\s+│?\s*12", out) and re.search(r"FRII\s+│?\s*12", out), out
    assert (tmp_path / "montage.png").is_file()


def test_a_download_that_fails_names_the_url(data, capsys, monkeypatch):
    import socket

    with socket.socket() as free:  # a port nothing listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    url = f"http://127.0.0.1:{port}/{ARCHIVE}"
    point_frdeep_at(monkeypatch, url, "sha256:" + "0" * 64)
    code, _, err = clustergrid(capsys, monkeypatch, "data", "fetch", "frdeep")
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and f"frdeep: cannot download {url}" in err


def test_an_unknown_name_is_refused_with_the_known_ones(data, capsys, monkeypatch):
    code, _, err = clustergrid(capsys, monkeypatch, "data", "fetch", "frdep")
    assert code == 1
    assert "no public dataset named 'frdep' (did you mean frdeep?" in err
    assert all(name in err for name in CATALOGUE)


def test_the_list_shows_each_dataset_with_its_licence_and_citation(
        server, data, capsys, monkeypatch):
    code, out, err = clustergrid(capsys, monkeypatch, "data", "list")
    assert code == 0, err
    assert f"Data folder: {data}" in out
    for dataset in CATALOGUE.values():
        assert f"{dataset.name}: {dataset.title} (not fetched)" in out
        assert f"licence: {dataset.licence}" in out and f"cite: {dataset.citation}" in out
    point_frdeep_at(monkeypatch, server["url"], f"sha256:{sha256(server['archive'])}")
    clustergrid(capsys, monkeypatch, "data", "fetch", "frdeep")
    out = clustergrid(capsys, monkeypatch, "data", "list")[1]
    assert f"(fetched: {data / 'frdeep' / 'images'})" in out


def test_the_batches_are_unpickled_without_running_anything(tmp_path):
    class Runs:
        def __reduce__(self):
            return (os.getcwd, ())

    batch = tmp_path / "data_batch_1"
    batch.write_bytes(pickle.dumps({"data": Runs(), "labels": [0]}, protocol=2))
    meta = tmp_path / "batches.meta"
    meta.write_bytes(pickle.dumps({"label_names": ["FRI"]}, protocol=2))
    convert = public_data.PickledBatches(batches=("data_batch_1",))
    with pytest.raises(ClustergridError, match=r"frdeep: data_batch_1: not an image batch "
                                               r"\(posix\.getcwd is not allowed"):
        convert.write([batch, meta], tmp_path / "out", "frdeep")


def test_every_entry_is_a_valid_dataset_entry(registry):
    """What ``data fetch`` prints for each dataset parses as a dataset entry."""
    from clustergrid.spec import parse_datasets

    for dataset in CATALOGUE.values():
        entry = public_data._filled(dataset.entry, f"/data/{dataset.name}/{dataset.location}")
        assert parse_datasets(yaml.safe_dump(entry), registry), dataset.name
        assert all(file.checksum.split(":")[0] in ("sha256", "md5")
                   and re.fullmatch(r"[0-9a-f]+", file.checksum.split(":")[1])
                   for file in dataset.files), dataset.name


def test_the_experiment_files_get_their_real_data_with_data_fetch():
    """No experiment file reads data outside the repository; one that reads a public
    dataset from the data folder says how to fetch it."""
    default = str(public_data.DEFAULT_DATA_FOLDER)
    fetched = set()
    for path in sorted((ROOT / "experiments").glob("*.yaml")):
        text = path.read_text()
        assert "../shared" not in text, path.name
        for name in re.findall(re.escape(default) + r"/([\w-]+)", text):
            assert name in CATALOGUE, (path.name, name)
            assert f"clustergrid data fetch {name}" in text, (path.name, name)
            fetched.add(name)
    assert {"frdeep", "simtel-samples"} <= fetched
