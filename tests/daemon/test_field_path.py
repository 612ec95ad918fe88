import pytest

from daemon.field_path import FieldPath

SEGMENT = {"type": "track", "userId": "u-1", "properties": {"category": "red", "price": 9.5, "tags": None},
           "context": {"page": {"path": "/cart"}}, "items": [{"sku": "a"}, {"sku": "b"}],
           "user.id": "dotted", "a/b": {"m~n": 1}, "": "empty name"}


@pytest.mark.parametrize("text, steps", [
    ("category", ("category",)),
    ("properties.category", ("properties", "category")),
    ("payload.after.category", ("payload", "after", "category")),
    ("/properties/category", ("properties", "category")),
    ("/a~1b/m~0n", ("a/b", "m~n")),
    ("/~01", ("~1",)),               # not "/": ~1 is unescaped before ~0 (RFC 6901)
    ("/user.id", ("user.id",)),
    ("/", ("",)),
    ("/items/0/sku", ("items", "0", "sku")),
])
def test_both_forms_parse_into_the_same_steps(text, steps):
    path = FieldPath(text)
    assert path.steps == steps and str(path) == text
    assert path.name == (steps[0] if len(steps) == 1 else None)


@pytest.mark.parametrize("text, found", [
    ("userId", "u-1"),
    ("properties.category", "red"),
    ("/properties/category", "red"),
    ("context.page.path", "/cart"),
    ("/items/1/sku", "b"),
    ("items.0.sku", "a"),
    ("/a~1b/m~0n", 1),
    ("/user.id", "dotted"),          # a literal dot: the pointer form
    ("/", "empty name"),
    ("properties.price", 9.5),
    ("properties", SEGMENT["properties"]),
])
def test_a_path_finds_its_value(text, found):
    assert FieldPath(text).find(SEGMENT) == found


@pytest.mark.parametrize("text", [
    "category", "properties.colour", "user.id",  # the dotted form splits: 'user' has no 'id'
    "/items/2/sku", "/items/-/sku", "/items/01/sku", "/items/x", "userId.first", "properties.price.cents",
    "/a/b",
])
def test_a_path_that_leads_nowhere_finds_the_default(text):
    missing = object()
    assert FieldPath(text).find(SEGMENT, missing) is missing
    assert FieldPath(text).find(SEGMENT) is None


def test_a_json_null_is_found_and_told_apart_from_nothing():
    missing = object()
    assert FieldPath("properties.tags").find(SEGMENT, missing) is None
    assert FieldPath("properties.nope").find(SEGMENT, missing) is missing


@pytest.mark.parametrize("text, complaint", [
    ("", "must not be empty"),
    ("a..b", "empty name between dots"),
    (".a", "empty name between dots"),
    ("a.", "empty name between dots"),
    ("/a~2b", "'~' at position 2 must be followed by 0 or 1"),
    ("/a~", "'~' at position 2 must be followed by 0 or 1"),
])
def test_malformed_paths_are_refused_with_what_is_wrong(text, complaint):
    with pytest.raises(ValueError, match=complaint):
        FieldPath(text)
