"""The store of published snapshots: latest value per key, tombstones, pages in key order."""
from daemon.api.published import REBUILD_OVER, Published
from daemon.snapshots import Eviction, Publication, SnapshotBatch


def test_a_newer_value_replaces_the_older_and_a_tombstone_removes_the_key():
    published = Published()
    published.take([b"k", b"j"], [b"1", b"2"])
    published.take([b"k"], [b"3"])
    assert (published.get("k"), published.get("j"), len(published)) == (b"3", b"2", 2)
    published.take([b"k"], [None])
    assert published.get("k") is None and published.page("", None, 10) == ["j"]


def test_a_key_removed_and_added_again_in_one_take_is_listed_once():
    published = Published()
    published.take([b"a"], [b"1"])
    published.take([b"a", b"a", b"b", b"b"], [None, b"2", b"3", None])
    assert published.page("", None, 10) == ["a"] and published.get("a") == b"2"


def test_pages_walk_every_key_of_a_prefix_once_in_order_small_and_large_changes_alike():
    published = Published()
    many = [f"user/{i:05d}".encode() for i in range(REBUILD_OVER * 3)]  # past REBUILD_OVER: sorted anew
    published.take(many[::-1], [b"{}"] * len(many))
    published.take([b"page/1", b"user/00003"], [b"{}", None])               # a few: edited
    seen, after = [], None
    while page := published.page("user/", after, 100):
        seen += page
        after = page[-1]
    assert seen == [key.decode() for key in many if key != b"user/00003"]
    assert published.page("page/", None, 10) == ["page/1"]
    assert published.page("zzz", None, 10) == [] and published.page("", "user/", 1) == ["user/00000"]


async def test_as_a_sink_it_takes_the_encoded_publication():
    published = Published()
    publication = Publication(SnapshotBatch.empty(1.0, "t"), [Eviction("gone", "ttl", "t")]).encode()
    published.take([b"gone"], [b"{}"])
    await published.publish(publication)
    await published.aclose()
    assert published.get("gone") is None
