"""``awe verify`` and awecore.verify against real services: catalogue objects whose files
are, or are not, the ones their records describe."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from dataclasses import dataclass, field

import httpx
import numpy as np
import pytest
from astropy.io import fits
from conftest import ADMIN_TOKEN, CLI_ENV

import awecore as awe
from awecore.client import StorageClient
from awecore.client._problem import raise_for_problem
from awecore.errors import ChecksumMismatch, Conflict, error_class, problem_body
from awecore.ids import new_oid
from awecore.model import ObjectIn, parse_query
from awecore.verify import verify_catalogue

pytestmark = pytest.mark.integration


def fits_file(aweoid: str | None, value: float = 1.0, cards: int = 0) -> bytes:
    hdu = fits.PrimaryHDU(np.full((16, 16), value, dtype=np.float32))
    for i in range(cards):  # a long header: more than the first Range request reads
        hdu.header[f"PAD{i}"] = (i, "padding the header past its first blocks")
    if aweoid is not None:
        hdu.header["AWEOID"] = aweoid
    buf = io.BytesIO()
    hdu.writeto(buf)
    return buf.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Catalogue:
    catalog: awe.CatalogClient
    storage: StorageClient
    tag: str
    urls: dict[str, str]
    oids: dict[str, str] = field(default_factory=dict)

    def add(self, key: str, cls: str, filename: str, data: bytes | None,
            checksum: str | None = "of data", file_size: int | None = -1,
            attributes: dict[str, object] | None = None, oid: str | None = None) -> str:
        """Store ``data`` (unless None) under ``filename``, register the object."""
        oid = oid or new_oid()
        name = f"verify-{self.tag}/{filename}"
        if data is not None:
            self.storage.put(name, data)
        record = ObjectIn(
            type=cls, oid=oid, filename=name, privileges=1,
            checksum=sha(data or b"") if checksum == "of data" else checksum,
            file_size=len(data or b"") if file_size == -1 else file_size,
            attributes=attributes or {})
        self.catalog.create_batch([record])
        self.oids[key] = oid
        return oid

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {"AWE_CATALOG_URL": self.urls["catalog"], "AWE_STORAGE_URL": self.urls["storage"],
               "AWE_TOKEN": ADMIN_TOKEN, **CLI_ENV, "COLUMNS": "300"}
        return subprocess.run([sys.executable, "-m", "awecore.cli", "verify", *args],
                              capture_output=True, text=True, env=env, timeout=120, check=False)

    @property
    def mine(self) -> str:
        return f"DataObject.filename.like('verify-{self.tag}/*')"


@pytest.fixture
def catalogue(catalog_process: str, storage_process: str) -> Catalogue:
    """A product, a raw frame and a reduced frame with its weight map, all as recorded."""
    catalog = awe.CatalogClient(catalog_process, ADMIN_TOKEN)
    storage = StorageClient(storage_process, ADMIN_TOKEN)
    c = Catalogue(catalog, storage, os.urandom(4).hex(),
                  {"catalog": catalog_process, "storage": storage_process})
    bias = new_oid()
    c.add("bias", "BiasFrame", "ESO_CCD_#65/bias.fits", fits_file(bias), oid=bias)
    c.add("raw", "RawBiasFrame", "raw/ESO_CCD_#65/b1.fits", fits_file(None))
    red = new_oid()
    weight = f"verify-{c.tag}/ESO_CCD_#65/red.weight.fits"
    storage.put(weight, fits_file(red, 0.5, cards=120))
    c.add("reduced", "ReducedScienceFrame", "ESO_CCD_#65/red.fits",
          fits_file(red, cards=120), oid=red, attributes={"weight_filename": weight})
    return c


def test_verify_a_sound_catalogue_then_a_broken_one(catalogue: Catalogue) -> None:
    c = catalogue
    r = c.cli("--where", c.mine)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 DataObject objects, 4 files" in r.stdout and "all good" in r.stdout

    # a recorded checksum that is not the file's
    c.add("wrong_sum", "BiasFrame", "ESO_CCD_#66/bias.fits", fits_file(None, 2.0),
          checksum=sha(b"not these bytes"))
    # B's file stored under A's name: sizes and checksums agree, the AWEOID does not
    a, b = new_oid(), new_oid()
    b_file = fits_file(b, 3.0)
    c.add("b", "BiasFrame", "ESO_CCD_#67/b.fits", b_file, oid=b)
    c.add("a", "BiasFrame", "ESO_CCD_#67/a.fits", b_file, oid=a)
    # nothing vouches for this one's file
    c.add("no_sum", "BiasFrame", "ESO_CCD_#68/bias.fits", fits_file(None, 4.0),
          checksum=None)
    # recorded, never stored
    c.add("missing", "BiasFrame", "ESO_CCD_#69/bias.fits", None, checksum=sha(b"x"),
          file_size=1)
    # a size that is not the file's
    size_oid = new_oid()
    data = fits_file(size_oid, 5.0)
    c.add("size", "BiasFrame", "ESO_CCD_#70/bias.fits", data, file_size=len(data) + 2880,
          oid=size_oid)
    # a reduced frame whose weight map was never stored
    lost = new_oid()
    c.add("lost_weight", "ReducedScienceFrame", "ESO_CCD_#71/red.fits", fits_file(lost),
          oid=lost, attributes={"weight_filename": f"verify-{c.tag}/ESO_CCD_#71/w.fits"})
    # a raw frame may lack AWEOID, but one that has it must name the frame
    c.add("raw_other", "RawBiasFrame", "raw/ESO_CCD_#72/b.fits", fits_file(b, 6.0))

    report = verify_catalogue(c.catalog, c.storage, parse_query(c.mine), workers=4)
    assert report.objects == 11
    # the files found: one per object and the weight map, but the missing file and weight map
    assert report.files == 11 + 2 - 2
    found = {(m.oid, m.problem) for m in report.mismatches}
    o = c.oids
    assert found == {
        (o["wrong_sum"], "the sha256 is not the recorded checksum"),
        (o["a"], "AWEOID in the primary header is another object's"),
        (o["no_sum"], "no checksum recorded"),
        (o["no_sum"], "no AWEOID in the primary header"),
        (o["wrong_sum"], "no AWEOID in the primary header"),
        (o["missing"], "the file is missing from storage"),
        (o["size"], "the size is not the recorded file_size"),
        (o["lost_weight"], "weight map: the file is missing from storage"),
        (o["raw_other"], "AWEOID in the primary header is another object's"),
    }
    by = {(m.oid, m.problem): m for m in report.mismatches}
    wrong = by[(o["wrong_sum"], "the sha256 is not the recorded checksum")]
    assert wrong.expected == sha(b"not these bytes") and wrong.actual == sha(fits_file(None, 2.0))
    swapped = by[(o["a"], "AWEOID in the primary header is another object's")]
    assert swapped.expected == a and swapped.actual == b
    assert swapped.filename == f"verify-{c.tag}/ESO_CCD_#67/a.fits"

    r = c.cli("--where", c.mine)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "11 DataObject objects" in r.stdout and "9 mismatches" in r.stdout
    for key in ("wrong_sum", "a", "no_sum", "missing", "size", "lost_weight", "raw_other"):
        assert o[key] in r.stdout, key
    assert "another object's" in r.stdout and "no checksum recorded" in r.stdout
    # --class narrows the walk: the raw frames alone have one bad file
    r = c.cli("--class", "RawFrame", "--where", c.mine.replace("DataObject", "RawFrame"))
    assert r.returncode == 1 and "2 RawFrame objects" in r.stdout
    assert o["raw_other"] in r.stdout and o["a"] not in r.stdout
    # --limit: the first objects by oid, the sound ones registered first
    r = c.cli("--where", c.mine, "--limit", "3")
    assert r.returncode == 0 and "3 DataObject objects" in r.stdout, r.stdout
    # a --where on another class than --class is refused with the reason
    r = c.cli("--class", "RawFrame", "--where", c.mine)
    assert r.returncode == 1 and "not RawFrame or beneath it" in r.stderr


def test_download_verifies_the_object_file(catalogue: Catalogue) -> None:
    c = catalogue
    bias = c.catalog.get(c.oids["bias"])
    assert bias.record is not None
    data = c.storage.download(bias)
    assert fits.Header.fromstring(data[:2880].decode())["AWEOID"] == c.oids["bias"]
    assert c.storage.download(bias.record) == data
    bad = c.add("bad", "BiasFrame", "ESO_CCD_#73/bias.fits", fits_file(None, 9.0),
                checksum=sha(b"recorded for other bytes"))
    with pytest.raises(ChecksumMismatch) as exc:
        c.storage.download(c.catalog.get(bad))
    assert sha(b"recorded for other bytes") in str(exc.value)
    assert sha(fits_file(None, 9.0)) in str(exc.value)
    sized = c.add("sized", "BiasFrame", "ESO_CCD_#74/bias.fits", fits_file(None, 8.0),
                  checksum=None, file_size=10)
    with pytest.raises(ChecksumMismatch, match="size"):
        c.storage.download(c.catalog.get(sized))


def test_checksum_mismatch_travels_as_a_problem_document() -> None:
    """A service raising it and the client catching it agree on the class and the values."""
    err = ChecksumMismatch.of("products/X/ESO_CCD_#65/a.fits", "a" * 64, "b" * 64)
    body = problem_body(err, "/files/x")
    assert body["status"] == 409 and body["error"] == "checksum_mismatch"
    assert error_class("checksum_mismatch", 409) is ChecksumMismatch
    assert error_class("", 409) is Conflict  # the status alone still means Conflict
    assert not issubclass(ChecksumMismatch, Conflict)  # a taken name is not a bad file
    response = httpx.Response(409, json=body, request=httpx.Request("GET", "http://s/files/x"))
    with pytest.raises(ChecksumMismatch) as exc:
        raise_for_problem(response)
    assert exc.value.expected == "a" * 64 and exc.value.actual == "b" * 64
    assert "a" * 64 in str(exc.value) and "b" * 64 in str(exc.value)
