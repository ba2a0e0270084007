import tarfile

import numpy as np
import pytest

from cifake_kit.errors import CifakeError
from dataset_builder.cifar10 import load_cifar10


def test_archive_and_folder_give_the_same_real_pixels(cifar10_archive, sample_photos, tmp_path):
    with tarfile.open(cifar10_archive) as tar:
        tar.extractall(tmp_path, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))  # < 3.11.4
    images, labels = sample_photos
    for split, per_class in (("train", 3), ("test", 2)):
        from_tar = load_cifar10(cifar10_archive, split)
        from_folder = load_cifar10(tmp_path / "cifar-10-batches-py", split)
        from_parent = load_cifar10(tmp_path, split)
        assert np.array_equal(from_tar.images, from_folder.images)
        assert np.array_equal(from_tar.images, from_parent.images)
        assert from_tar.images.shape == (10 * per_class, 32, 32, 3) and from_tar.images.dtype == np.uint8
        assert np.bincount(from_tar.labels, minlength=10).tolist() == [per_class] * 10
    # Pixels survive the format's channel-major layout: the first test image is the 4th of class 0.
    test = load_cifar10(cifar10_archive, "test")
    first_airplane = np.flatnonzero(labels == 0)[3]
    assert np.array_equal(test.images[test.labels == 0][0], images[first_airplane])


def test_first_per_class_follows_cifar_order(cifar10_archive):
    train = load_cifar10(cifar10_archive, "train")
    idx = train.first_per_class(2)
    assert train.labels[idx].tolist() == [c for c in range(10) for _ in range(2)]
    with pytest.raises(CifakeError, match=r"only 3 images of class 'airplane'.*at most 3"):
        train.first_per_class(4)


def test_missing_path(tmp_path):
    with pytest.raises(CifakeError, match=r"does not exist\. Pass --cifar10 PATH"):
        load_cifar10(str(tmp_path / "nope" / "cifar-10-python.tar.gz"), "train")


def test_archive_without_test_batch(tmp_path, cifar10_archive):
    broken = tmp_path / "no-test.tar.gz"
    with tarfile.open(cifar10_archive) as src, tarfile.open(broken, "w:gz") as dst:
        for member in src.getmembers():
            if not member.name.endswith("test_batch"):
                dst.addfile(member, src.extractfile(member))
    with pytest.raises(CifakeError, match="has no 'test_batch' member"):
        load_cifar10(broken, "test")
    assert len(load_cifar10(broken, "train").labels) == 30


def test_file_that_is_not_an_archive(tmp_path):
    fake = tmp_path / "cifar-10-python.tar.gz"
    fake.write_bytes(b"not a tarball at all")
    with pytest.raises(CifakeError, match="cannot be read") as raised:
        load_cifar10(fake, "train")
    assert "\n" not in str(raised.value)  # one line, not tarfile's line per compression tried


def test_member_that_is_not_a_cifar_batch(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "test_batch").write_bytes(b"\x80\x04garbage")
    with pytest.raises(CifakeError, match="test_batch is not a CIFAR-10 python batch"):
        load_cifar10(folder, "test")
    with pytest.raises(CifakeError, match="has no 'data_batch_1'"):
        load_cifar10(folder, "train")


def test_offline_without_local_copy_says_how_to_point_at_one():
    with pytest.raises(CifakeError, match=r"Cannot load CIFAR-10 from .uoft-cs/cifar10. .*offline.*--cifar10 PATH"):
        load_cifar10(None, "train")


class _RunsCode:
    """Pickles as a call to os.system: what a crafted archive member would hold."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        import os

        return (os.system, (self.command,))


@pytest.mark.parametrize("where", ["folder", "archive"])
def test_a_batch_that_would_run_code_is_refused_before_anything_runs(tmp_path, where):
    import io
    import pickle

    marker = tmp_path / "ran"
    payload = pickle.dumps({b"data": _RunsCode(f"touch {marker}"), b"labels": [0]}, protocol=2)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "test_batch").write_bytes(payload)
    source = folder
    if where == "archive":
        source = tmp_path / "cifar-10-python.tar.gz"
        with tarfile.open(source, "w:gz") as tar:
            info = tarfile.TarInfo("cifar-10-batches-py/test_batch")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    with pytest.raises(CifakeError, match=r"test_batch was refused unread: it asks for (posix|os)\.system"):
        load_cifar10(source, "test")
    assert not marker.exists()


def test_object_arrays_are_refused(tmp_path):
    import pickle

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batch = {b"data": np.array([[1] * 3072], dtype=object), b"labels": [0]}
    (folder / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(CifakeError, match="refused unread: it holds a numpy array of object"):
        load_cifar10(folder, "test")


def test_python2_batches_as_published_still_load(tmp_path):
    """cifar-10-python.tar.gz was pickled by Python 2 and numpy 1: byte strings, numpy.core names."""
    import struct

    def short(b):
        return b"U" + bytes([len(b)]) + b

    pixels = np.arange(2 * 3072, dtype=np.int64).astype(np.uint8)
    batch = (b"\x80\x02}(" + short(b"data")
             + b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + short(b"b") + b"\x87R"
             + b"(K\x01K\x02M\x00\x0c\x86cnumpy\ndtype\n" + short(b"u1") + b"K\x00K\x01\x87R(K\x03" + short(b"|")
             + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89T" + struct.pack("<i", len(pixels)) + pixels.tobytes()
             + b"tb" + short(b"labels") + b"](K\x03K\x07eu.")
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "test_batch").write_bytes(batch)
    split = load_cifar10(folder, "test")
    assert split.labels.tolist() == [3, 7]
    assert np.array_equal(split.images, pixels.reshape(2, 3, 32, 32).transpose(0, 2, 3, 1))


def test_a_member_declaring_gigabytes_is_refused_before_it_is_read(tmp_path):
    # A tar header may declare any size; nothing of the member is read when it is too big to be a batch.
    archive = tmp_path / "cifar-10-python.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/test_batch")
        info.size = 2 << 30
        tar.addfile(info)  # header only: the archive itself is a few KB
    assert archive.stat().st_size < 1 << 20
    with pytest.raises(CifakeError, match=r"test_batch is 2,048 MB, more than a CIFAR-10 python batch can be"):
        load_cifar10(archive, "test")
