import metrichub_core


def test_all_names_the_public_namespace_exactly() -> None:
    public = {name for name in dir(metrichub_core) if not name.startswith("_")}
    # Submodules are reachable as attributes once imported; they are not exports.
    modules = {name for name in public if type(getattr(metrichub_core, name)).__name__ == "module"}
    assert sorted(metrichub_core.__all__, key=str.casefold) == metrichub_core.__all__
    assert set(metrichub_core.__all__) - {"__version__"} == public - modules
